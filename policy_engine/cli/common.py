"""What several commands share: loading the registry and a policy, reporting errors."""

from __future__ import annotations

from typing import TextIO

import pluggy

from policy_engine.errors import PluginError
from policy_engine.loader import check_policy_file
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


def load_policy_or_fail(
    path: str, registry: DetectorRegistry, stderr: TextIO, *, show_warnings: bool = False
) -> Policy:
    """The policy at ``path``, or a CommandError after its errors on ``stderr``;
    with ``show_warnings``, the linter's warnings about it go to ``stderr`` too."""
    result = check_policy_file(path, registry=registry)
    if result.policy is None:
        for diagnostic in result.errors or result.diagnostics:
            print(diagnostic.render(), file=stderr)
        raise CommandError(f"policy-engine: {path}: the policy does not load")
    if show_warnings:
        for diagnostic in result.warnings:
            print(diagnostic.render(), file=stderr)
    return result.policy
