"""A client-side rate limit shared by every thread of a run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Spaces calls at most ``rate`` per second, evenly, across all threads.

    Evenly spaced rather than bursty: a service that counts transactions in a
    sliding one-second window (as Rekognition's quotas do) then never sees
    more than ``rate`` in any second. ``clock`` and ``sleep`` are inputs so
    tests need not wait.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be a positive number of calls per second, got {rate!r}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = -float("inf")
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for this call's slot; return the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait
