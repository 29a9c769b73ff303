"""Values made on first use (policy_engine.once): once per process, even when
threads race, and a deferred plugin made by its first decision, not its loading."""

from __future__ import annotations

import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from policy_engine.once import DeferredDecisionPlugin, Once
from policy_engine.plugins import make_plugin_manager, register_plugin


def test_racing_threads_get_the_one_value_made_once():
    made: list[object] = []

    def make() -> object:
        time.sleep(0.01)  # long enough for every thread to arrive while it is being made
        made.append(object())
        return made[-1]

    once = Once(make)
    start = threading.Barrier(8)

    def get(_: int) -> object:
        start.wait()
        return once.get()

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(get, range(8)))

    assert len(made) == 1
    assert got == made * 8


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def policy_engine_decision_made(self, event: Any) -> None:
        self.events.append(event)


def test_a_deferred_plugin_is_made_by_its_first_decision_not_by_loading():
    made: list[Recorder] = []

    def make() -> Recorder:
        made.append(Recorder())
        return made[-1]

    deferred = DeferredDecisionPlugin(make)
    module = types.SimpleNamespace(policy_engine_decision_made=deferred.policy_engine_decision_made)
    manager = make_plugin_manager(load_entry_points=False)
    assert register_plugin(manager, module, "deferred")
    assert made == []  # registered, nothing made

    manager.hook.policy_engine_decision_made(event="first")
    manager.hook.policy_engine_decision_made(event="second")

    (recorder,) = made
    assert recorder.events == ["first", "second"]
    assert deferred.get() is recorder
