"""Commands that plugins add to ``policy-engine`` (the
``policy_engine_register_commands`` hook). Looked up only when the command
line names no core command, or for the top-level ``--help``: a core
command's start never loads a plugin for this."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import pluggy

from policy_engine.errors import PluginError
from policy_engine.plugins import WRAPPED, call_each, make_plugin_manager, registration_failed

Configure = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True, slots=True)
class PluginCommand:
    """One command a plugin registered: its ``--help`` line and how to declare it."""

    name: str
    summary: str
    configure: Configure
    plugin: str


def plugin_commands(
    core: Collection[str], manager: pluggy.PluginManager | None = None
) -> dict[str, PluginCommand]:
    """Every command the plugins of ``manager`` (the installed ones by default)
    register, by name. A name in ``core`` or registered twice is a
    :class:`PluginError` naming both owners."""
    manager = make_plugin_manager() if manager is None else manager
    found: dict[str, PluginCommand] = {}

    def arguments(plugin: str | None) -> dict[str, Any]:
        owner = plugin if plugin is not WRAPPED else "a hook wrapper"

        def register(name: str, summary: str, configure: Configure) -> None:
            if not isinstance(name, str) or not name or name.startswith("-"):
                raise PluginError(f"plugin {owner!r} registered a command named {name!r}")
            if name in core:
                raise PluginError(
                    f"plugin {owner!r} registered command {name!r}, "
                    f"which is a core command of policy-engine"
                )
            existing = found.get(name)
            if existing is not None:
                first, second = sorted((existing.plugin, str(owner)))
                raise PluginError(
                    f"command {name!r} is registered by two plugins: {first!r} and {second!r}"
                )
            found[name] = PluginCommand(name, str(summary), configure, str(owner))

        return {"register": register}

    call_each(
        manager.hook.policy_engine_register_commands, arguments, registration_failed("its commands")
    )
    return found
