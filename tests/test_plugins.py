"""Loading plugins from entry points: restriction, and broken plugins named."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import pytest

from policy_engine import hookimpl
from policy_engine.errors import PluginError
from policy_engine.plugins import DetectorRegistry, make_plugin_manager


class FakeEntryPoint:
    def __init__(self, name: str, module: Any) -> None:
        self.name = name
        self.value = f"fake_{name}.plugin"
        self._module = module

    def load(self) -> Any:
        if isinstance(self._module, Exception):
            raise self._module
        return self._module


def installed(monkeypatch: pytest.MonkeyPatch, *entry_points: FakeEntryPoint) -> None:
    def entry_points_of(group: str) -> list[FakeEntryPoint]:
        assert group == "policy_engine"
        return list(entry_points)

    monkeypatch.setattr("policy_engine.plugins.metadata.entry_points", entry_points_of)


def plugin_module(**hooks: Callable[..., Any]) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{name: hookimpl(f) for name, f in hooks.items()})


def test_a_misspelt_hook_is_an_error_naming_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    def policy_engine_register_detector(register: Any) -> None:  # missing the s
        pass

    installed(
        monkeypatch,
        FakeEntryPoint(
            "typo", plugin_module(policy_engine_register_detector=policy_engine_register_detector)
        ),
    )
    with pytest.raises(PluginError, match="typo"):
        make_plugin_manager(environ={})


def test_a_hook_with_a_wrong_argument_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def policy_engine_register_detectors(regster: Any) -> None:
        pass

    installed(
        monkeypatch,
        FakeEntryPoint(
            "wrongarg",
            plugin_module(policy_engine_register_detectors=policy_engine_register_detectors),
        ),
    )
    with pytest.raises(PluginError, match="wrongarg"):
        make_plugin_manager(environ={})


def test_a_plugin_that_fails_to_import_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, FakeEntryPoint("broken", ImportError("no module named boto9")))
    with pytest.raises(PluginError, match=r"'broken'.*boto9"):
        make_plugin_manager(environ={})


def test_the_environment_restricts_which_plugins_load(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []

    def module_for(name: str) -> types.SimpleNamespace:
        def policy_engine_register_detectors(register: Any) -> None:
            loaded.append(name)

        return plugin_module(policy_engine_register_detectors=policy_engine_register_detectors)

    installed(
        monkeypatch, FakeEntryPoint("a", module_for("a")), FakeEntryPoint("b", module_for("b"))
    )
    DetectorRegistry.from_plugin_manager(
        make_plugin_manager(environ={"POLICY_ENGINE_PLUGINS": "b"})
    )
    assert loaded == ["b"]
    loaded.clear()
    DetectorRegistry.from_plugin_manager(make_plugin_manager(environ={"POLICY_ENGINE_PLUGINS": ""}))
    assert loaded == []
