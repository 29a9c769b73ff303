"""Work on a long stream of items across the machine's cores, results in input order.

:func:`ordered_map` cuts the items into chunks and hands them to a process pool
sized to the cores; at most a few chunks per worker are in flight (a sliding
window, so neither the items nor the results pile up in memory), and results
come back in the order the items went in, whatever order the workers finish
in. Short streams are worked on in this process: a pool costs a fork and a
start-up per worker, which a few thousand items do not repay.

Each worker runs ``initializer(*initargs)`` once, in a process forked from this
one, so the arguments are not pickled (a compiled policy holds what pickle
refuses). Where ``fork`` does not exist, everything runs in this process.

:func:`ordered_chunks` is the form the commands use: what every chunk is
worked with (compiled policies, the registry) is handed over once per worker,
and the work is a module-level function of it and a chunk.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from itertools import chain, islice
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
State = TypeVar("State")

MIN_ITEMS_VARIABLE = "POLICY_ENGINE_POOL_MIN_ITEMS"
"""Environment variable: the number of items from which a pool is used (tests set 1)."""
DEFAULT_MIN_ITEMS = 1000
"""Below this, one process is faster (measured with bench/bench_corpus_diff.py)."""
CHUNK_ITEMS = 250
CHUNKS_PER_WORKER = 4


class WorkerDied(Exception):
    """A worker process ended (killed, out of memory) while working on one of the
    items from ``first`` to ``last`` (the chunks then in flight: the pool does not
    say which one)."""

    def __init__(self, first: Any, last: Any) -> None:
        super().__init__("a worker process ended unexpectedly")
        self.first = first
        self.last = last


def min_items() -> int:
    value = os.environ.get(MIN_ITEMS_VARIABLE, "")
    return int(value) if value.isdigit() else DEFAULT_MIN_ITEMS


def worker_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def ordered_map(
    work: Callable[[list[Item]], Result],
    items: Iterable[Item],
    *,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...] = (),
) -> Iterator[tuple[list[Item], Result]]:
    """``(chunk, work(chunk))`` for consecutive chunks of ``items``, in order.

    ``work`` is called in a worker after ``initializer(*initargs)`` ran there
    (or in this process, for short streams). Raises :class:`WorkerDied` when a
    worker process ends mid-chunk, and whatever ``work`` raises."""
    stream = iter(items)
    threshold = min_items()
    head = list(islice(stream, threshold))
    workers = worker_count()
    pooled = len(head) == threshold and workers > 1 and _can_fork()
    chunks = _chunks(chain(head, stream) if pooled else iter(head))
    if not pooled:
        initializer(*initargs)
        for chunk in chunks:
            yield chunk, work(chunk)
        return
    yield from _pooled(work, chunks, workers, initializer, initargs)


def ordered_chunks(
    work: Callable[[State, list[Item]], Result], state: State, items: Iterable[Item]
) -> Iterator[tuple[list[Item], Result]]:
    """``(chunk, work(state, chunk))`` for consecutive chunks of ``items``, in order.

    ``state`` reaches each worker once, by fork (not pickled); ``work`` is pickled
    by name, so it is a module-level function. Raises as :func:`ordered_map`.
    One stream at a time in a process: a short stream's state is this process'
    until it ends."""
    return ordered_map(partial(_with_state, work), items, initializer=_set_state, initargs=(state,))


_state: Any = None
"""What :func:`ordered_chunks` hands its work: set once in each worker (and here)."""


def _set_state(state: Any) -> None:
    global _state
    _state = state


def _with_state(work: Callable[[Any, list[Item]], Result], chunk: list[Item]) -> Result:
    return work(_state, chunk)


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _chunks(items: Iterator[Item]) -> Iterator[list[Item]]:
    while chunk := list(islice(items, CHUNK_ITEMS)):
        yield chunk


def _pooled(
    work: Callable[[list[Item]], Result],
    chunks: Iterator[list[Item]],
    workers: int,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
) -> Iterator[tuple[list[Item], Result]]:
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
        initargs=(initializer, initargs),
    )
    window: deque[tuple[list[Item], Future[Result]]] = deque()
    try:
        for index, chunk in enumerate(islice(chunks, workers * CHUNKS_PER_WORKER)):
            try:
                if index == 0:
                    window.append((chunk, _first_submit(executor, work, chunk)))
                else:
                    window.append((chunk, executor.submit(work, chunk)))
            except BrokenProcessPool:
                # a worker died on a chunk already sent, before the window was full
                raise WorkerDied((window[0][0] if window else chunk)[0], chunk[-1]) from None
        while window:
            chunk, future = window[0]
            try:
                result = future.result()
                following = next(chunks, None)
                if following is not None:
                    window.append((following, executor.submit(work, following)))
            except BrokenProcessPool:
                raise WorkerDied(chunk[0], window[-1][0][-1]) from None
            window.popleft()
            yield chunk, result
    finally:
        # on an error or Ctrl-C: chunks not started are dropped, running ones are short
        executor.shutdown(wait=True, cancel_futures=True)


def _first_submit(
    executor: ProcessPoolExecutor, work: Callable[[list[Item]], Result], chunk: list[Item]
) -> Future[Result]:
    # the workers are forked now: with SIGINT blocked until each ignores it, a
    # Ctrl-C reaches this process alone, never a half-started worker
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return executor.submit(work, chunk)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _start_worker(initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    # Ctrl-C is the parent's to handle: it stops the pool (a worker's
    # KeyboardInterrupt would print a traceback and break the pool instead)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    initializer(*initargs)
