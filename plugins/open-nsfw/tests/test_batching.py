"""MicroBatcher: concurrent calls share runs, each caller gets its own result,
a failed run fails exactly its callers, and nothing waits forever."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from policy_engine_open_nsfw.batching import MicroBatcher


class Recorder:
    """A run that squares its items and remembers each batch it was given."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, items: Sequence[int]) -> list[int]:
        with self._lock:
            self.batches.append(list(items))
        time.sleep(self.delay)
        return [item * item for item in items]


def submit_all(batcher: MicroBatcher[int, int], items: list[int]) -> list[int]:
    start = threading.Barrier(len(items))

    def one(item: int) -> int:
        start.wait()
        return batcher.submit(item)

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(one, items))


def test_concurrent_callers_share_runs_and_each_gets_its_own_result() -> None:
    run = Recorder(delay=0.01)
    batcher = MicroBatcher(run, max_batch=4, max_wait=1.0)
    items = list(range(16))

    assert submit_all(batcher, items) == [item * item for item in items]
    assert sorted(i for batch in run.batches for i in batch) == items  # each item run once
    assert max(len(b) for b in run.batches) == 4  # batched, within the bound
    assert all(len(batch) <= 4 for batch in run.batches)


def test_a_batch_of_one_runs_at_once_without_waiting() -> None:
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=1, max_wait=30.0)
    started = time.monotonic()

    assert [batcher.submit(3), batcher.submit(4)] == [9, 16]
    assert time.monotonic() - started < 5.0
    assert run.batches == [[3], [4]]


def test_a_lone_caller_waits_no_longer_than_max_wait() -> None:
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=8, max_wait=0.05)
    started = time.monotonic()

    assert batcher.submit(5) == 25
    assert 0.04 <= time.monotonic() - started < 5.0
    assert run.batches == [[5]]


def test_a_failed_run_fails_each_of_its_callers_and_the_next_calls_still_run() -> None:
    calls = []

    def failing_once(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            raise ValueError("model exploded")
        return [-item for item in items]

    batcher = MicroBatcher(failing_once, max_batch=3, max_wait=1.0)
    start = threading.Barrier(3)

    def one(item: int) -> str:
        start.wait()
        try:
            return str(batcher.submit(item))
        except ValueError as exc:
            return str(exc)

    with ThreadPoolExecutor(3) as pool:
        outcomes = list(pool.map(one, [1, 2, 3]))

    assert outcomes == ["model exploded"] * 3
    assert batcher.submit(7) == -7


def test_a_run_returning_the_wrong_count_fails_its_callers() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: [], max_batch=2, max_wait=0.0)

    with pytest.raises(RuntimeError, match="a run of 1 item"):
        batcher.submit(1)


@pytest.mark.parametrize(("max_batch", "max_wait"), [(0, 0.0), (1, -0.1)])
def test_bounds_are_checked(max_batch: int, max_wait: float) -> None:
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_batch=max_batch, max_wait=max_wait)
