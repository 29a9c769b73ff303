"""Installed, the plugin records with the global meter provider through the
``policy_engine`` entry-point group, even one set after the plugin loaded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from policy_engine import Moderator


def test_the_entry_point_records_with_the_global_meter_provider(
    replaying: Callable[[object], Moderator],
    images: Path,
    declared_plugin: tuple[str, ModuleType],
) -> None:
    name, plugin = declared_plugin
    assert name == "opentelemetry"
    moderator = replaying(plugin)

    reader = InMemoryMetricReader()  # the application sets its provider after start-up
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    moderator.check(images / "explicit.png")

    data = reader.get_metrics_data()
    assert data is not None
    (point,) = [
        p
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "policy_engine.decisions"
        for p in metric.data.data_points
    ]
    assert (point.attributes["verdict"], point.value) == ("block", 1)
