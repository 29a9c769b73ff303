"""Installed, the plugin counts into prometheus_client's global REGISTRY through
the ``policy_engine`` entry-point group."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from prometheus_client import REGISTRY

from policy_engine import Moderator


def test_the_entry_point_counts_into_the_global_registry(
    replaying: Callable[[object], Moderator],
    images: Path,
    declared_plugin: tuple[str, ModuleType],
) -> None:
    name, plugin = declared_plugin
    assert name == "prometheus"

    moderator = replaying(plugin)
    labels = {"verdict": "block", "policy": "general-ugc", "route": ""}
    labels["policy_digest"] = moderator.policy_digest
    before = REGISTRY.get_sample_value("policy_engine_decisions_total", labels) or 0.0
    moderator.check(images / "explicit.png")
    moderator.check(images / "knife-fight.jpg")
    assert REGISTRY.get_sample_value("policy_engine_decisions_total", labels) == before + 2
    assert plugin.METRICS.get().registry is REGISTRY
