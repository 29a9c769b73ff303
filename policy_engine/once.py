"""Values made on first use, for what start-up should not pay for."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from policy_engine.hookspecs import hookimpl

if TYPE_CHECKING:
    from policy_engine.events import DecisionEvent

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


class DecisionPlugin(Protocol):
    def policy_engine_decision_made(self, event: DecisionEvent) -> None: ...


P = TypeVar("P", bound=DecisionPlugin)


class DeferredDecisionPlugin(Once[P]):
    """A ``policy_engine_decision_made`` plugin made at the first decision: an
    entry-point module exposes :meth:`policy_engine_decision_made` (bound) as
    its hook, and loading it imports nothing of what ``make`` needs."""

    @hookimpl
    def policy_engine_decision_made(self, event: DecisionEvent) -> None:
        self.get().policy_engine_decision_made(event)
