"""Checking many images: expanding inputs, bounded concurrency, de-duplication.

Results come out as each image is decided (completion order), so a caller
can write them at once and an interrupted run keeps everything it finished.
At most ``concurrency`` images are being checked and twice that many read
ahead. The run's index of decided images, which sends each distinct image
once, keeps its recent decisions in memory and the rest in a temporary file
(:mod:`~policy_engine.decided_index`), so memory stays flat however many
inputs there are.
"""

from __future__ import annotations

import json
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from policy_engine.decided_index import DecidedIndex
from policy_engine.decision import Decision
from policy_engine.engine import Engine
from policy_engine.errors import ContextError, RunStopped
from policy_engine.image import DEFAULT_MAX_IMAGE_BYTES, Image
from policy_engine.local_files import describe_stat_error, read_bounded, walk_folder
from policy_engine.policy_set import Routing, SetDecision
from policy_engine.text import name_fields

Outcome = Decision | SetDecision
ExpandUri = Callable[[str], "Iterable[Image] | None"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One input's outcome: a decision, or why the input could not be read.

    ``duplicate`` says the decision was reused from an identical image of the
    same run (no detector was called again).
    """

    input: str
    sha256: str | None = None
    decision: Decision | None = None
    error: str | None = None
    duplicate: bool = False
    routed: SetDecision | None = None
    """A policy set's decision (context, route, set), whose ``decision`` this is."""

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {**name_fields(self.input), "sha256": self.sha256}
        if self.duplicate:
            record["duplicate"] = True
        if self.routed is not None:
            record.update(self.routed.to_dict())
        elif self.decision is not None:
            record.update(self.decision.to_dict())
        if self.error is not None:
            record["error"] = self.error
        return record


@dataclass(frozen=True, slots=True)
class InputItem:
    """An input to check: how to get its image, or why it cannot be had."""

    name: str
    load: Callable[[], Image] | None = None
    problem: str | None = None
    context: Mapping[str, Any] | None = None
    """What a policy set routes this input by (None: the run's context)."""


def _file_item(path: str, max_bytes: int) -> InputItem:
    def load() -> Image:
        return Image(path, read_bounded(path, max_bytes, what="image file"))

    return InputItem(path, load=load)


def expand_inputs(
    specs: Iterable[str],
    expand_uri: ExpandUri | None = None,
    *,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
) -> Iterator[InputItem]:
    """Files as given; folders recursively, every file in them whatever its name
    (depth first, sorted, symbolic links followed: see
    :func:`~policy_engine.local_files.walk_folder`); ``scheme://`` inputs
    through ``expand_uri`` (the plugins); anything else as a problem. Lazy:
    nothing is read here, and a file is read no further than
    ``max_image_bytes`` (plus one byte), regular files only."""
    for spec in specs:
        if not spec:
            yield InputItem(spec, problem="an empty name names no file")
            continue
        try:
            info: os.stat_result | None = os.stat(spec)
        except OSError as exc:  # any reason, one input's problem: never the run's
            info = None
            problem = describe_stat_error(spec, exc)
        if info is None and "://" in spec:
            yield from _expand_uri(spec, expand_uri)
        elif info is None:
            yield InputItem(spec, problem=problem)
        elif stat.S_ISDIR(info.st_mode):
            for entry in walk_folder(spec):
                if entry.problem is None:
                    yield _file_item(entry.path, max_image_bytes)
                else:
                    yield InputItem(entry.path, problem=entry.problem)
        else:
            yield _file_item(spec, max_image_bytes)  # read_bounded refuses what is not regular


def _given(image: Image) -> Callable[[], Image]:
    return lambda: image


def _expand_uri(spec: str, expand_uri: ExpandUri | None) -> Iterator[InputItem]:
    scheme = spec.split("://", 1)[0]
    try:
        images = expand_uri(spec) if expand_uri is not None else None
        if images is None:
            yield InputItem(spec, problem=f"no installed plugin reads {scheme}:// inputs")
            return
        for image in images:
            yield InputItem(image.name, load=_given(image))
    except Exception as exc:  # a listing that fails is one input's problem
        yield InputItem(spec, problem=f"cannot list {spec}: {exc}")


class _OncePerImage:
    """Decides each distinct image (by key) once per run; identical images wait
    for and share the first one's decision.

    Only the images being decided have a future here; a finished one's
    decision goes to a :class:`~policy_engine.decided_index.DecidedIndex`,
    which keeps memory flat however long the run. A set's decision is kept
    as its policy's decision and a reference to its routing (the few routings
    are made once and shared, and stay in memory)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._pending: dict[str, Future[Outcome]] = {}
        self._decided: DecidedIndex[Decision | tuple[Decision, int]] = DecidedIndex()
        self._routings: dict[int, Routing] = {}

    def _kept(self, outcome: Outcome) -> Decision | tuple[Decision, int]:
        if isinstance(outcome, Decision):
            return outcome
        self._routings.setdefault(id(outcome.routing), outcome.routing)
        return outcome.decision, id(outcome.routing)

    def _found(self, key: str) -> Outcome | None:
        kept = self._decided.get(key)
        if isinstance(kept, tuple):
            decision, routing = kept
            return SetDecision(decision, self._routings[routing])
        return kept

    def close(self) -> None:
        with self._lock:
            self._decided.close()

    def decide(
        self, image: Image, context: Mapping[str, Any] | None = None
    ) -> tuple[Outcome, bool]:
        # a set decides an image once per context (the same image on two surfaces is
        # two decisions; a policy ignores the context)
        key = image.key
        if self._engine.policy_set is not None:
            key += "\0" + json.dumps(sorted((context or {}).items()), default=str)
        with self._lock:
            pending = self._pending.get(key)
            decided = self._found(key) if pending is None else None
            if decided is not None:
                return decided, True
            if pending is None:
                future: Future[Outcome] = Future()
                self._pending[key] = future
        if pending is not None:
            return pending.result(), True
        try:
            engine = self._engine
            decision: Outcome = (
                engine.check(image)
                if engine.policy_set is None
                else engine.check_in(image, context)
            )
        except BaseException as exc:
            with self._lock:
                del self._pending[key]  # a later copy may try again
            future.set_exception(exc)
            raise
        with self._lock:
            self._decided.put(key, self._kept(decision))
            del self._pending[key]
        future.set_result(decision)
        return decision, False


@dataclass
class BatchStats:
    """What a run did, for its summary line (filled in as results come out)."""

    decisions: dict[str, int] = field(default_factory=lambda: {"allow": 0, "review": 0, "block": 0})
    unreadable: int = 0
    with_detector_errors: int = 0
    duplicates: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, result: CheckResult) -> None:
        if result.decision is None:
            self.unreadable += 1
            return
        self.decisions[result.decision.verdict.value] += 1
        self.with_detector_errors += bool(result.decision.failures)
        self.duplicates += result.duplicate

    @property
    def images(self) -> int:
        return sum(self.decisions.values()) + self.unreadable

    def elapsed(self) -> float:
        return time.monotonic() - self.started


CHECK_THREAD_PREFIX = "policy-engine-check"
"""The names of :func:`check_many`'s worker threads start so."""

_STOP_POLL = 0.1
"""Seconds between looks at a stop while nothing else happens."""


def check_many(
    engine: Engine,
    items: Iterable[InputItem],
    *,
    concurrency: int = 8,
    ordered: bool = False,
    stop: threading.Event | None = None,
    context: Mapping[str, Any] | None = None,
    skip: Callable[[str, str | None], bool] | None = None,
) -> Generator[CheckResult, None, None]:
    """Decide every input, ``concurrency`` at a time, yielding each result as it is made,
    or with ``ordered`` in input order (each result still as soon as those before it are).

    An input that cannot be read yields a result with ``error`` and the run
    goes on; a detector failure is part of the decision (the policy's
    ``on_error``). Inputs are read on a thread of their own, so a slow source
    (a pipe that pauses) never holds back results already made.

    Setting ``stop`` ends the run gently: no more inputs are read, an image
    not yet started is dropped (not sent, not yielded), one waiting for a rate
    slot too (when the engine's rate limiter watches the same ``stop``), and
    what is in flight (already paid for) finishes and is yielded. Closing the
    iterator early (or an exception such as Ctrl-C's) abandons the run at
    once: nothing more starts, but a call already waiting for a rate slot
    still goes out unless ``stop`` is set first, as ``policy-engine check``
    does.

    A policy set routes each input by its :attr:`InputItem.context` (default:
    ``context``); an input whose context names no value for a dimension
    without a default, or an unknown value, yields a result with ``error``
    (no detector is called for it), never an allow.

    ``skip(name, sha256)`` true drops an input without sending it or yielding
    anything (``--resume``: its record exists); it is asked once the input is
    read (``sha256`` None for an input that cannot be).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    once = _OncePerImage(engine)
    stopping = stop if stop is not None else threading.Event()
    closing = threading.Event()  # the consumer went away
    window = threading.Semaphore(2 * concurrency)  # read ahead: submitted, not yet yielded
    # Futures in input order (ordered) or as they finish; then the feeder's end.
    events: queue.SimpleQueue[Future[CheckResult | None] | _InputsEnded] = queue.SimpleQueue()
    submitted = [0]  # how many futures the feeder made; read when stopping

    def dropped() -> bool:
        return stopping.is_set() or closing.is_set()

    def check_one(item: InputItem) -> CheckResult | None:
        if dropped():
            return None  # dropped before it started
        unread: str | None = None
        if item.problem is not None or item.load is None:
            unread = item.problem or "nothing to read"
        else:
            try:
                image = item.load()
            except OSError as exc:
                unread = f"cannot read: {exc.strerror or exc}"
            except Exception as exc:  # a plugin's loader: one input's problem, never the run's
                unread = f"cannot read: {type(exc).__name__}: {exc}"
        if unread is not None:
            skipped = skip is not None and skip(item.name, None)
            return None if skipped else CheckResult(item.name, error=unread)
        if dropped() or (skip is not None and skip(item.name, image.sha256)):
            return None  # stopped while it was being read, or done before: not sent
        given = item.context if item.context is not None else context
        if engine.policy_set is not None:
            try:
                engine.policy_set.resolve_context(dict(given or {}))
            except ContextError as exc:
                return CheckResult(item.name, image.sha256, error=f"context: {exc}")
        try:
            outcome, duplicate = once.decide(image, given)
        except RunStopped:
            return None  # stopped while waiting for its rate slot: never sent
        except Exception as exc:  # a bug must cost one image, never the run
            return CheckResult(item.name, image.sha256, error=f"{type(exc).__name__}: {exc}")
        if isinstance(outcome, SetDecision):
            return CheckResult(
                item.name, image.sha256, outcome.decision, duplicate=duplicate, routed=outcome
            )
        return CheckResult(item.name, image.sha256, outcome, duplicate=duplicate)

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=CHECK_THREAD_PREFIX)

    def feed() -> None:
        error: BaseException | None = None
        try:
            for item in items:
                while not window.acquire(timeout=_STOP_POLL):
                    if dropped():
                        return
                if dropped():
                    return
                submitted[0] += 1  # before the future exists: never fewer than there are
                try:
                    future = pool.submit(check_one, item)
                except BaseException:
                    submitted[0] -= 1  # none was made (the pool shut down)
                    raise
                if ordered:
                    events.put(future)
                else:
                    future.add_done_callback(events.put)
        except BaseException as exc:  # a failing input source ends the run, as it would inline
            error = exc
        finally:
            events.put(_InputsEnded(error))

    threading.Thread(target=feed, name="policy-engine-inputs", daemon=True).start()
    yielded = 0
    ended: _InputsEnded | None = None
    try:
        while True:
            if yielded == submitted[0] and (ended is not None or stopping.is_set()):
                if ended is not None and ended.error is not None:
                    raise ended.error
                return
            try:
                event = events.get(timeout=_STOP_POLL)  # wakes to see a stop
            except queue.Empty:
                continue
            if isinstance(event, _InputsEnded):
                ended = event
                continue
            result = event.result()  # ordered: waits for this one, in flight or dropped
            yielded += 1
            window.release()
            if result is not None:
                yield result
    finally:
        closing.set()
        finished = ended is not None and yielded == submitted[0]
        pool.shutdown(wait=finished, cancel_futures=True)
        if finished:  # else a thread may still be deciding: the index goes with the run
            once.close()


@dataclass(frozen=True, slots=True)
class _InputsEnded:
    """The feeder read its last input (or failed with ``error``)."""

    error: BaseException | None = None
