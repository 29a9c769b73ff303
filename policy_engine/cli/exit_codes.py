"""The CLI's exit codes (documented in the README)."""

OK = 0
"""Everything ran; no decision reached ``--fail-on``."""
FAIL_ON = 1
"""A decision reached the ``--fail-on`` verdict; ``test`` had failures; ``diff``
found a change (``--fail-on-change``) or a band NEW decides less severely than
OLD (``--fail-on lenient``); ``migrate`` left names that need a look by hand."""
USAGE = 2
"""Bad usage, a policy that does not load, a malformed labels file, a broken plugin."""
INCOMPLETE = 3
"""``check`` ran, but some inputs could not be read (each has an error record)
or a detector failed on some images (each decision is the policy's
``on_error`` verdict, the error in its record): not every image was checked."""
INTERRUPTED = 130
"""Interrupted (Ctrl-C); the records written so far are complete."""
OUTPUT_CLOSED = 141
"""The output closed early (piped into ``head``, say): what was not written is
lost, so not every result reached the reader. 141 is what a shell reports for
a program a closed pipe stopped (128 + SIGPIPE), so ``set -o pipefail`` sees it."""
