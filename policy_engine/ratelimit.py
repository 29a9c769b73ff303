"""A client-side rate limit shared by every thread of a run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from policy_engine.errors import RunStopped

DEFAULT_MARGIN = 0.02
"""How much wider than ``1 / rate`` calls are spaced by default (see :class:`RateLimiter`)."""


class RateLimiter:
    """Spaces calls at most ``rate`` per second, evenly, across all threads.

    Evenly spaced rather than bursty, and ``margin`` wider than ``1 / rate``:
    calls exactly ``1 / rate`` apart put ``rate + 1`` of them in one closed
    second (a fencepost), and network jitter moves arrivals by milliseconds.
    A service that counts transactions in a sliding one-second window (as
    Rekognition's quotas do) then never sees more than ``rate``, and a
    throttle, which slows an adaptive-retry client for a while, is avoided.
    ``clock`` and ``sleep`` are inputs so tests need not wait. A ``stop``
    event ends every wait at once (a batch run that is being stopped).
    """

    def __init__(
        self,
        rate: float,
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        stop: threading.Event | None = None,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be a positive number of calls per second, got {rate!r}")
        if not 0 <= margin < 1:
            raise ValueError(f"margin must be from 0 to below 1, got {margin!r}")
        self.interval = (1.0 + margin) / rate
        self._clock = clock
        self._sleep = sleep
        self._next = -float("inf")
        self._lock = threading.Lock()
        self._stop = stop

    def acquire(self) -> float:
        """Wait for this call's slot; return the seconds waited. Raises
        :class:`~policy_engine.errors.RunStopped` when ``stop`` is set, before
        or while waiting: the call must not go out."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        wait = slot - now
        if self._stop is None:
            if wait > 0:
                self._sleep(wait)
        elif self._stop.wait(max(wait, 0.0)):
            raise RunStopped("the run was stopped before this call's rate slot came")
        return wait

    def defer_next(self) -> None:
        """Space the next slot a full interval from now: for a call that went
        out later than its slot (a first call that built its client first),
        so that the next one does not follow it at once."""
        with self._lock:
            self._next = max(self._next, self._clock() + self.interval)
