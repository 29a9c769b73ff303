"""Pausing the cyclic garbage collector while a big, acyclic structure is built.

Building a policy's node graph and values makes some 200,000 objects that all
stay alive; each collection walks every one of them again, which made up two
thirds of loading a 1 MiB policy. Reference counting still frees everything
as usual, and a cycle made meanwhile (a recursive alias) is collected later.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the collector for the block; the last of concurrent blocks to end
    restores the state the first found (so threads never leave it disabled)."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
