"""``policy-engine check``: run the policy's detectors over images, JSON Lines out."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import FrameType
from typing import Any, BinaryIO, TextIO

from policy_engine.batch import BatchStats, CheckResult, InputItem, check_many, expand_inputs
from policy_engine.cli import exit_codes
from policy_engine.cli.common import (
    CommandError,
    add_context_argument,
    context_or_fail,
    installed_plugins,
    load_policy_or_set_or_fail,
    reaches,
)
from policy_engine.cli.render import decision_text, route_lines
from policy_engine.engine import DEFAULT_DETECTOR_TIMEOUT, Engine
from policy_engine.errors import DetectorUnavailableError, PolicyEngineError, ResumeError
from policy_engine.image import Image
from policy_engine.model import Policy, Verdict
from policy_engine.ratelimit import RateLimiter
from policy_engine.recordings import RecordingStore
from policy_engine.resume import ResumePoint, read_previous
from policy_engine.text import json_dumps, printable


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= threading.TIMEOUT_MAX:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(
            f"must be a positive number of seconds, at most {threading.TIMEOUT_MAX:g}; got {text}"
        )
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Decide each input: image files; folders recursively (.jpg/.jpeg/.png); "
        "URIs a plugin lists (s3://bucket/prefix/ with the Rekognition plugin); '-' reads "
        "one input per line from stdin. Writes one JSON Lines record per image the moment "
        "it is decided (completion order); progress and a summary go to stderr."
    )
    parser.add_argument(
        "--policy", required=True, metavar="FILE", help="the policy file, or a policy set"
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="INPUT",
        help="an image file, a folder (its images, recursively), a URI a plugin lists "
        "(s3://bucket/prefix/), or - for a list of inputs on stdin",
    )
    add_context_argument(parser)
    parser.add_argument(
        "--inputs-jsonl",
        action="store_true",
        help="with a policy set: read the inputs from stdin as JSON Lines, "
        '{"input": "...", "context": {"surface": "chat"}} one a line (a line\'s '
        "context adds to and overrides --context); a line that is not such an object, or "
        "whose context does not resolve, gives that input an error record (exit 3)",
    )
    parser.add_argument(
        "-0",
        "--null",
        action="store_true",
        help="with '-': names on stdin are separated by NUL bytes (find -print0), not lines",
    )
    parser.add_argument(
        "--replay",
        metavar="DIR",
        help="instead of the policy's detectors, replay the recorded responses in DIR "
        "(files named <sha256-of-image>.json) with the stub detector: offline, no API calls",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=8,
        metavar="N",
        help="images checked at once (default 8)",
    )
    parser.add_argument(
        "--rate",
        type=_positive_float,
        metavar="TPS",
        help="at most TPS detector calls per second, shared by all threads, spaced "
        "evenly with a 2%% margin so that no second sees more than TPS (set it to your "
        "account's Rekognition quota)",
    )
    parser.add_argument(
        "--record",
        metavar="DIR",
        help="store every detector response in DIR, under the image's SHA-256 "
        "(the store --cache and the stub detector read)",
    )
    parser.add_argument(
        "--cache",
        metavar="DIR",
        help="answer from responses recorded in DIR for the same image, detector and "
        "settings before calling a detector",
    )
    parser.add_argument(
        "--cost-per-call",
        type=_non_negative_float,
        metavar="AMOUNT",
        help="the price of one detector call in your region and tier (prices differ "
        "and change): the summary then estimates what the run cost",
    )
    parser.add_argument(
        "--detector-timeout",
        type=_seconds,
        default=DEFAULT_DETECTOR_TIMEOUT,
        metavar="SECONDS",
        help="how long one detector call may take before it fails with code 'timeout' "
        f"and the policy's on_error decides (default {DEFAULT_DETECTOR_TIMEOUT:g})",
    )
    parser.add_argument(
        "--format",
        choices=tuple(RENDERERS),
        default="jsonl",
        help="jsonl: one decision record per line (default); text: a summary per image",
    )
    parser.add_argument(
        "--ordered",
        action="store_true",
        default=None,
        help="write results in input order, each as soon as those before it are done "
        "(the default with --format text; jsonl writes in completion order)",
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="write the records to FILE instead of stdout (replacing it, unless --resume)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="with --output: continue an interrupted run, skipping every input FILE has a "
        "record of (same name, same SHA-256), cutting off a torn last line, and appending; "
        "with --record, answers recorded there are not asked again. Refused (exit 2) when "
        "FILE holds decisions of another policy",
    )
    parser.add_argument(
        "--fail-on",
        choices=("review", "block"),
        help="exit 1 when any decision is this verdict or more severe",
    )
    parser.set_defaults(run=run)


def _specs(paths: Iterable[str], stdin: BinaryIO, *, null: bool = False) -> Iterator[str]:
    """The inputs, with ``-`` replaced by stdin's names: one a line (its line
    ending removed, nothing else: a name may start or end with spaces), or
    with ``null`` separated by NUL bytes (``find -print0``), for names that
    hold a newline. Read as bytes and decoded as the file system does (a
    byte that is not UTF-8 is kept, by ``surrogateescape``), so any file name
    can be given, exactly."""
    for path in paths:
        if path != "-":
            yield path
        elif null:
            yield from _nul_separated(stdin)
        else:
            for line in stdin:
                name = line.removesuffix(b"\n").removesuffix(b"\r")
                if name:
                    yield os.fsdecode(name)


def _jsonl_items(
    stream: BinaryIO,
    expand_uri: Callable[[str], Iterable[Image] | None],
    max_image_bytes: int,
    run_context: Mapping[str, str],
) -> Iterator[InputItem]:
    """Each line's input (expanded as a command-line INPUT) with the line's
    context over the run's. A malformed line is that line's error record,
    never an input checked in some other context."""
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        where = f"<stdin line {number}>"
        try:
            entry = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            yield InputItem(where, problem=f"not a JSON object: {exc}")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("input"), str):
            yield InputItem(where, problem='expected {"input": "...", "context": {...}}')
            continue
        given = entry.get("context", {})
        if not isinstance(given, dict) or not all(
            isinstance(value, str) for value in given.values()
        ):
            yield InputItem(entry["input"], problem="context: expected an object of string values")
            continue
        context = {**run_context, **given}
        for item in expand_inputs([entry["input"]], expand_uri, max_image_bytes=max_image_bytes):
            yield dataclasses.replace(item, context=context)


def _nul_separated(stream: BinaryIO) -> Iterator[str]:
    pending = b""
    while chunk := stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536):
        *names, pending = (pending + chunk).split(b"\0")
        yield from (os.fsdecode(name) for name in names if name)
    if pending:
        yield os.fsdecode(pending)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    manager, registry = installed_plugins()
    policy = load_policy_or_set_or_fail(args.policy, registry, stderr, show_warnings=True)
    run_context: dict[str, str] | None = None
    if args.inputs_jsonl and not isinstance(policy, Policy):
        # each line completes the run's context, so it is resolved per input; an
        # unknown value given for the whole run is still exit 2, naming it
        context_or_fail(policy, args.context, args.policy, partial=True)
        run_context = dict(args.context)
    elif context_or_fail(policy, args.context, args.policy) is not None:  # exit 2 naming it
        run_context = dict(args.context)
    if args.inputs_jsonl and args.paths:
        raise CommandError("policy-engine: --inputs-jsonl reads the inputs from stdin: give none")
    if not args.inputs_jsonl and not args.paths:
        raise CommandError("policy-engine: give at least one INPUT (or --inputs-jsonl)")
    if args.resume and not args.output:
        raise CommandError("policy-engine: --resume continues the file named by --output: give it")
    if args.resume and args.format != "jsonl":
        raise CommandError("policy-engine: --resume reads JSON Lines: use --format jsonl")
    stop = threading.Event()  # set by the first Ctrl-C
    overrides = None
    if args.replay is not None:
        if not os.path.isdir(args.replay):
            raise CommandError(f"policy-engine: --replay {args.replay}: no such folder")
        overrides = {"stub": {"recordings": os.path.abspath(args.replay)}}
    cache = RecordingStore(args.cache) if args.cache else None
    record = RecordingStore(args.record) if args.record else None
    if args.resume and cache is None and record is not None:
        cache = record  # what the interrupted run paid for is answered from its store
    try:
        engine = Engine(
            policy,
            registry,
            detectors=overrides,
            cache=cache,
            record=record,
            rate_limit=RateLimiter(args.rate, stop=stop) if args.rate else None,
            concurrency=args.concurrency,
            detector_timeout=args.detector_timeout,
        )
        engine.preflight()  # no credentials or region: one error, before any image
    except DetectorUnavailableError as exc:
        raise CommandError(f"policy-engine: {exc}; no image was checked") from exc
    except PolicyEngineError as exc:
        raise CommandError(f"policy-engine: {exc}") from exc
    # the stores, checked before any image: a paid answer must have where to go
    if record is not None:
        try:
            record.check_writable()
        except OSError as exc:
            raise CommandError(
                f"policy-engine: --record {args.record}: cannot write there: {exc.strerror or exc}"
            ) from exc
    if args.cache and not os.path.isdir(args.cache):
        raise CommandError(f"policy-engine: --cache {args.cache}: no such folder")
    resumed = _resume_point(args.output, engine.digest) if args.resume else None

    def expand_uri(spec: str) -> Iterable[Image] | None:
        found: Iterable[Image] | None = manager.hook.policy_engine_expand_input(spec=spec)
        return found

    if args.inputs_jsonl:
        items: Iterable[InputItem] = _jsonl_items(
            sys.stdin.buffer, expand_uri, engine.max_image_bytes, run_context or {}
        )
    else:
        items = expand_inputs(
            _specs(args.paths, sys.stdin.buffer, null=args.null),
            expand_uri,
            max_image_bytes=engine.max_image_bytes,
        )
    stats = BatchStats()
    progress = stderr.isatty()
    progress_line = ProgressLine(stderr)
    ordered = args.ordered if args.ordered is not None else args.format == "text"
    results = check_many(
        engine,
        items,
        concurrency=args.concurrency,
        ordered=ordered,
        stop=stop,
        context=run_context,
        skip=resumed.done if resumed is not None else None,
    )
    output_failed: OSError | None = None
    output = _open_output(args.output, append=args.resume) if args.output else stdout
    try:
        with _CtrlC(stop, stderr) as ctrl_c:
            for result in results:
                with ctrl_c.held():  # a record is written and counted, or neither
                    try:
                        _write(result, args.format, output)
                    except OSError as exc:  # the reader went away, the disk filled:
                        output_failed = exc  # send nothing more
                        break
                    stats.add(result)
                if progress:
                    progress_line.show(_progress(stats, engine))
    except KeyboardInterrupt:  # the second Ctrl-C, or the first when run off the main thread
        results.close()
        stop.set()
    finally:
        if output is not stdout:
            with contextlib.suppress(OSError):
                output.close()
    if output_failed is not None:
        stop.set()
        results.close()
    with contextlib.suppress(OSError):  # stderr may be the closed pipe too
        _summary(
            stats,
            engine,
            stderr,
            progress,
            interrupted=stop.is_set() and output_failed is None,
            output_failed=output_failed,
            cost_per_call=args.cost_per_call,
        )
        if resumed is not None:
            _resume_summary(resumed, args.output, stderr)
    if isinstance(output_failed, BrokenPipeError):
        return exit_codes.OUTPUT_CLOSED
    if output_failed is not None:
        return exit_codes.INCOMPLETE
    if stop.is_set():
        return exit_codes.INTERRUPTED
    if stats.unreadable or stats.with_detector_errors or engine.counter.unrecorded:
        return exit_codes.INCOMPLETE
    counts = stats.decisions
    worst = "block" if counts["block"] else "review" if counts["review"] else "allow"
    return exit_codes.FAIL_ON if reaches(Verdict(worst), args.fail_on) else exit_codes.OK


def _resume_point(path: str, policy_digest: str) -> ResumePoint:
    try:
        return read_previous(path, policy_digest)
    except ResumeError as exc:
        raise CommandError(f"policy-engine: --resume: {exc}") from exc
    except OSError as exc:
        raise CommandError(
            f"policy-engine: --resume: cannot read {path}: {exc.strerror or exc}"
        ) from exc


def _open_output(path: str, *, append: bool) -> TextIO:
    try:
        return open(path, "a" if append else "w", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise CommandError(
            f"policy-engine: --output {path}: cannot write there: {exc.strerror or exc}"
        ) from exc


def _resume_summary(resumed: ResumePoint, path: str, stderr: TextIO) -> None:
    torn = (
        f"; a torn last line ({resumed.cut_bytes} bytes) was cut off and its input checked again"
        if resumed.cut_bytes
        else ""
    )
    print(
        f"resumed {path}: {resumed.records} record(s) there, {resumed.skipped} input(s) "
        f"skipped as already decided{torn}",
        file=stderr,
    )


_STOPPING = "\nstopping: writing the images already sent; Ctrl-C again to quit now\n"


class _CtrlC:
    """While a run lasts: the first Ctrl-C sets ``stop`` (the calls in flight,
    already paid for, finish and are written); a second one interrupts, but
    never between writing a record and counting it. Signals reach only the
    main thread; elsewhere Ctrl-C interrupts at once, as by default, and an
    ignored SIGINT stays ignored."""

    def __init__(self, stop: threading.Event, stderr: TextIO) -> None:
        self._stop = stop
        self._stderr = stderr
        self._holding = False
        self._deferred = False
        self._previous: Any = None
        # Only where Ctrl-C would interrupt anyway: signals reach the main thread
        # alone, and a run started with SIGINT ignored (a background job) keeps it so.
        self._installed = (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        )

    def __enter__(self) -> _CtrlC:
        if self._installed:
            self._previous = signal.signal(signal.SIGINT, self._on_interrupt)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)

    def _on_interrupt(self, signum: int, frame: FrameType | None) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._tell(_STOPPING)
        elif self._holding and not self._deferred:
            self._deferred = True  # a third quits even then (a write stuck on a full pipe)
        else:
            raise KeyboardInterrupt

    def _tell(self, notice: str) -> None:
        """Now, not after the next record (which may be a slow call away): straight
        to the file descriptor, since the handler may run inside a write to the
        stream itself."""
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            os.write(self._stderr.fileno(), notice.encode())

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._deferred:
            raise KeyboardInterrupt


def _text(result: CheckResult) -> str:
    if result.routed is not None:
        routed = "\n".join(f"  {line}" for line in route_lines(result.routed))
        return decision_text(result.routed.decision, printable(result.input)) + f"\n{routed}\n"
    if result.decision is not None:
        return decision_text(result.decision, printable(result.input)) + "\n"
    return f"{printable(result.input)}: ERROR  {result.error}\n"


RENDERERS: Mapping[str, Callable[[CheckResult], str]] = {
    "jsonl": lambda result: json_dumps(result.to_dict()) + "\n",
    "text": _text,
}
"""One image's output, written the moment it is decided."""


def _write(result: CheckResult, output_format: str, stdout: TextIO) -> None:
    stdout.write(RENDERERS[output_format](result))
    stdout.flush()


class ProgressLine:
    """A status line rewritten in place: each text after a carriage return,
    padded with spaces over what the longer text before it left on the line
    (spaces, not the ANSI erase-line code, so any terminal, and a log that
    keeps the raw bytes, shows no stale characters)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._width = 0

    def show(self, text: str) -> None:
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)


def _progress(stats: BatchStats, engine: Engine) -> str:
    elapsed = stats.elapsed()
    rate = stats.images / elapsed if elapsed > 0 else 0.0
    return f"checked {stats.images} image(s), {rate:.1f}/s, {engine.counter.calls} call(s)"


def _summary(
    stats: BatchStats,
    engine: Engine,
    stderr: TextIO,
    progress: bool,
    *,
    interrupted: bool,
    output_failed: OSError | None = None,
    cost_per_call: float | None,
) -> None:
    if progress:
        stderr.write("\n")
    parts = [f"{stats.decisions[v]} {v}" for v in ("allow", "review", "block")]
    if stats.unreadable:
        parts.append(f"{stats.unreadable} unreadable")
    if stats.with_detector_errors:
        parts.append(f"{stats.with_detector_errors} with detector errors")
    state = "interrupted after" if interrupted else "checked"
    if isinstance(output_failed, BrokenPipeError):
        state = "the output closed: stopped after writing"
    elif output_failed is not None:
        reason = output_failed.strerror or output_failed
        state = f"the output could not be written ({reason}): stopped after writing"
    elapsed = stats.elapsed()
    print(
        f"{state} {stats.images} image(s) in {elapsed:.1f}s: " + ", ".join(parts),
        file=stderr,
    )
    counter = engine.counter
    saved = counter.cached + stats.duplicates + counter.skipped
    print(
        f"detector calls: {counter.calls} made, {saved} saved "
        f"({counter.cached} from the cache, {stats.duplicates} duplicate image(s), "
        f"{counter.skipped} skipped by the cascade)",
        file=stderr,
    )
    if engine.counter.unrecorded:
        print(
            f"not recorded: {engine.counter.unrecorded} answer(s) the --record store could not "
            "keep (see the warnings above); their decisions stand",
            file=stderr,
        )
    if cost_per_call is not None:
        calls, skipped = engine.counter.calls, engine.counter.skipped
        print(
            f"estimated cost: {calls} call(s) x {cost_per_call:g} = {calls * cost_per_call:g}"
            f"; the cascade saved {skipped} call(s) = {skipped * cost_per_call:g}",
            file=stderr,
        )
