"""Micro-batching: calls that arrive together share one model run.

The engine calls a detector once per image, from as many threads as the run
checks images at once (``check --concurrency``). A model on the CPU scores a
batch in less time than the same images one by one, so each call here queues
its input and waits; one waiting caller at a time leads: it waits up to
``max_wait`` seconds for the queue to hold ``max_batch`` inputs, runs the
model once on up to that many, hands every caller its own result (or the
run's exception), and goes on leading until its own input is done. No thread
of its own, so nothing is left running between calls or at exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class _Pending(Generic[In, Out]):
    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: In) -> None:
        self.item = item
        self.done = False
        self.result: Out | None = None
        self.error: BaseException | None = None


class MicroBatcher(Generic[In, Out]):
    """Calls ``run`` on batches of at most ``max_batch`` items gathered from
    concurrent :meth:`submit` calls; ``run`` returns one result per item, in order."""

    def __init__(
        self, run: Callable[[Sequence[In]], Sequence[Out]], *, max_batch: int, max_wait: float
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait < 0:
            raise ValueError(f"max_wait must not be negative, got {max_wait}")
        self._run = run
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._queue: list[_Pending[In, Out]] = []
        self._leading = False
        self._cond = threading.Condition()

    def submit(self, item: In) -> Out:
        """``item``'s result, from a run that may include other callers' items;
        raises what the run raised."""
        pending: _Pending[In, Out] = _Pending(item)
        with self._cond:
            self._queue.append(pending)
            self._cond.notify_all()  # a leader waiting to fill its batch counts again
            while not pending.done and self._leading:
                self._cond.wait()
            if not pending.done:
                self._leading = True
        if not pending.done:
            self._lead(pending)
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[return-value]

    def _lead(self, own: _Pending[In, Out]) -> None:
        try:
            while not own.done:
                batch = self._take()
                self._run_batch(batch)
        finally:
            with self._cond:
                self._leading = False
                self._cond.notify_all()

    def _take(self) -> list[_Pending[In, Out]]:
        with self._cond:
            deadline = time.monotonic() + self.max_wait
            while len(self._queue) < self.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            return batch

    def _run_batch(self, batch: list[_Pending[In, Out]]) -> None:
        try:
            results = self._run([pending.item for pending in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a run of {len(batch)} item(s) returned {len(results)}")
        except BaseException as exc:  # every caller of the batch gets it, none waits forever
            with self._cond:
                for pending in batch:
                    pending.error, pending.done = exc, True
                self._cond.notify_all()
            if not isinstance(exc, Exception):
                raise
            return
        with self._cond:
            for pending, result in zip(batch, results, strict=True):
                pending.result, pending.done = result, True
            self._cond.notify_all()
