"""What several commands share: loading the registry and a policy, reporting errors."""

from __future__ import annotations

from typing import TextIO

import pluggy

from policy_engine.errors import PluginError, PolicyLoadError
from policy_engine.loader import load_policy
from policy_engine.model import Policy
from policy_engine.plugins import DetectorRegistry, make_plugin_manager


class CommandError(Exception):
    """A failure the command reports on stderr and exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def installed_registry() -> DetectorRegistry:
    return installed_plugins()[1]


def installed_plugins() -> tuple[pluggy.PluginManager, DetectorRegistry]:
    """The plugin manager and its detectors, or a CommandError naming a broken plugin."""
    try:
        manager = make_plugin_manager()
        return manager, DetectorRegistry.from_plugin_manager(manager)
    except PluginError as exc:
        raise CommandError(f"policy-engine: {exc}") from exc


def load_policy_or_fail(path: str, registry: DetectorRegistry, stderr: TextIO) -> Policy:
    try:
        return load_policy(path, registry=registry)
    except PolicyLoadError as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic.render(), file=stderr)
        raise CommandError(f"policy-engine: {path}: the policy does not load") from exc
