"""A value made on first use, for what start-up should not pay for."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Once(Generic[T]):
    """The value ``make()`` returns, made at the first :meth:`get` and only
    then, once per process even when threads race to it (a value that
    registers itself somewhere, such as metrics, must not be made twice)."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._made: list[T] = []
        self._lock = threading.Lock()

    def get(self) -> T:
        if not self._made:
            with self._lock:
                if not self._made:
                    self._made.append(self._make())
        return self._made[0]
