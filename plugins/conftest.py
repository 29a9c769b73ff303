"""Fixtures the metrics plugins' tests share (prometheus, opentelemetry): a
Moderator that replays the repository's example recordings (the stub
detector: no network) with the plugin under test, a real event to vary, and
the plugin its pyproject declares, loaded as an entry point."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest

from policy_engine import DetectorRegistry, Moderator, hookimpl
from policy_engine.decision import SkippedDetector
from policy_engine.events import DecisionEvent, DetectorCall
from policy_engine.plugins import ENTRY_POINT_GROUP, make_plugin_manager

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def images() -> Path:
    return ROOT / "examples" / "images"


@pytest.fixture
def replaying() -> Callable[[object], Moderator]:
    def make(plugin: object) -> Moderator:
        return Moderator.from_policy_file(
            ROOT / "policies" / "general-ugc.yaml",
            registry=DetectorRegistry.installed(),
            plugin_manager=make_plugin_manager(load_entry_points=False),
            detectors={"stub": {"recordings": str(ROOT / "examples" / "recordings")}},
            plugins=[plugin],
        )

    return make


@pytest.fixture
def cache_hit_event(replaying: Callable[[object], Moderator], images: Path) -> DecisionEvent:
    """A real decision's event, its one detector answered from the cache."""
    events: list[DecisionEvent] = []

    class Keep:
        @hookimpl
        def policy_engine_decision_made(self, event: DecisionEvent) -> None:
            events.append(event)

    replaying(Keep()).check(images / "beach.png")
    hit = DetectorCall("rekognition-moderation", 0.001, cached=True)
    return dataclasses.replace(events[0], detector_calls=(hit,))


@pytest.fixture
def skip_event(cache_hit_event: DecisionEvent) -> DecisionEvent:
    """A real decision's event whose one remote detector the cascade skipped."""
    skipped = (SkippedDetector("rekognition-moderation", "decision already block"),)
    decision = dataclasses.replace(cache_hit_event.decision, skipped=skipped)
    return dataclasses.replace(cache_hit_event, decision=decision, detector_calls=())


@pytest.fixture
def declared_plugin(request: pytest.FixtureRequest) -> tuple[str, ModuleType]:
    """The one ``policy_engine`` entry point of the test's distribution, loaded."""
    pyproject = request.path.parent.parent / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["entry-points"]
    ((name, target),) = declared[ENTRY_POINT_GROUP].items()
    module: ModuleType = metadata.EntryPoint(name, target, ENTRY_POINT_GROUP).load()
    return name, module
