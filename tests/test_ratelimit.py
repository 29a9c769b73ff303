"""The shared client-side rate limit."""

from __future__ import annotations

import itertools
import threading

import pytest

from policy_engine.errors import RunStopped
from policy_engine.ratelimit import RateLimiter


class FakeClock:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.lock = threading.Lock()

    def time(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        # sleeping does not move the shared clock: each caller waits its own slot


def test_calls_are_spaced_evenly_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, margin=0, clock=clock.time, sleep=clock.sleep)
    waits = [limiter.acquire() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_time_passing_frees_slots_without_banking_a_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, margin=0, clock=clock.time, sleep=clock.sleep)
    assert limiter.acquire() == 0.0
    clock.now += 10  # idle for ten seconds
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(0.5)  # no burst of 20 saved up


def test_threads_get_distinct_slots_at_least_one_interval_apart() -> None:
    clock = FakeClock()
    limiter = RateLimiter(50, margin=0, clock=clock.time, sleep=clock.sleep)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            wait = limiter.acquire()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    slots = sorted(waits)
    assert len(slots) == 200
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) == pytest.approx(0.02)
    assert slots[-1] == pytest.approx(199 * 0.02)  # 200 calls at 50/s take 3.98 s


@pytest.mark.parametrize("rate", [0, -1, float("nan")])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(rate)


def test_the_default_margin_keeps_every_closed_second_at_or_under_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(50, clock=clock.time, sleep=clock.sleep)
    starts = [clock.now + limiter.acquire() for _ in range(200)]
    for first in starts:
        in_window = [t for t in starts if first <= t <= first + 1.0]
        assert len(in_window) <= 50
    assert starts[-1] - starts[0] == pytest.approx(199 * 1.02 / 50)  # 49 calls/s


@pytest.mark.parametrize("margin", [-0.1, 1.0])
def test_margin_must_be_a_fraction(margin: float) -> None:
    with pytest.raises(ValueError, match="margin"):
        RateLimiter(10, margin=margin)


def test_a_stop_ends_a_wait_for_a_slot_and_no_later_call_goes_out() -> None:
    stop = threading.Event()
    limiter = RateLimiter(0.1, stop=stop)  # a slot every ten seconds
    assert limiter.acquire() == 0.0
    threading.Timer(0.05, stop.set).start()
    with pytest.raises(RunStopped):
        limiter.acquire()  # would have waited ten seconds
    with pytest.raises(RunStopped):
        limiter.acquire()


def test_a_call_that_left_late_pushes_the_next_slot_from_when_it_left() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, margin=0, clock=clock.time, sleep=clock.sleep)
    assert limiter.acquire() == 0.0
    clock.now += 2.0  # the first call built its client for two seconds, then went out
    limiter.defer_next()
    assert limiter.acquire() == pytest.approx(0.1)  # not at once: one interval after it left
    limiter.defer_next()  # never pulls a later slot earlier
    assert limiter.acquire() == pytest.approx(0.2)
