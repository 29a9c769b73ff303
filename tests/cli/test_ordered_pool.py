"""``ordered_pool.ordered_chunks``: state handed to real worker processes by fork,
results in the items' order whatever order the workers finish in."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from policy_engine.cli import ordered_pool


@dataclass(frozen=True)
class Unpicklable:
    """Stands for a compiled policy: pickle refuses the lock it holds."""

    lock: threading.Lock
    factor: int


def _scaled(state: Unpicklable, chunk: list[int]) -> tuple[int, list[int]]:
    if chunk[0] % 3 == 0:
        time.sleep(0.02)  # this chunk finishes after the next one
    return os.getpid(), [state.factor * item for item in chunk]


@pytest.fixture
def pooled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ordered_pool.MIN_ITEMS_VARIABLE, "1")
    monkeypatch.setattr(ordered_pool, "CHUNK_ITEMS", 5)


def test_state_reaches_the_workers_unpickled_and_results_keep_the_order(
    pooled: None,
) -> None:
    state = Unpicklable(threading.Lock(), 3)
    chunks = list(ordered_pool.ordered_chunks(_scaled, state, range(200)))
    assert [chunk for chunk, _ in chunks] == [list(range(n, n + 5)) for n in range(0, 200, 5)]
    assert [value for _, (_, values) in chunks for value in values] == [3 * n for n in range(200)]
    # worked in other processes (how many of the two got chunks is the scheduler's
    # choice on a busy machine; the Ctrl-C tests see both workers start)
    assert os.getpid() not in {pid for _, (pid, _) in chunks}


def test_a_short_stream_stays_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ordered_pool.MIN_ITEMS_VARIABLE, "1000")
    state = Unpicklable(threading.Lock(), 2)
    chunks = list(ordered_pool.ordered_chunks(_scaled, state, range(999)))
    assert {pid for _, (pid, _) in chunks} == {os.getpid()}
    assert [value for _, (_, values) in chunks for value in values] == [2 * n for n in range(999)]


def _dies_on_the_first_chunk(marker: str, chunk: list[int]) -> list[int]:
    if chunk[0] == 0:
        Path(marker).touch()
        os._exit(1)  # as the OOM killer ends a worker
    return chunk


def test_a_worker_dying_before_the_window_is_full_is_worker_died(
    pooled: None, tmp_path: Path
) -> None:
    # the pool breaks while chunks are still being handed out: the next
    # submission fails, which must be the same located error as a result that fails
    marker = tmp_path / "died"

    def items() -> Iterator[int]:
        yield from range(5)
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # the pool sees its worker gone
        yield from range(5, 50)

    with pytest.raises(ordered_pool.WorkerDied) as died:
        list(ordered_pool.ordered_chunks(_dies_on_the_first_chunk, str(marker), items()))

    assert (died.value.first, died.value.last) == (0, 9)
