"""Every decision recorded with an OpenTelemetry meter, read back through the
SDK's in-memory reader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from policy_engine import Moderator
from policy_engine.events import DecisionEvent
from policy_engine.signals import DURATION_BUCKETS
from policy_engine_opentelemetry import OpenTelemetryMetrics


def recorded(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Each metric's data points, by name."""
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: list(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def test_decisions_and_detector_calls_are_recorded_with_bounded_attributes(
    replaying: Callable[[object], Moderator], images: Path
) -> None:
    reader = InMemoryMetricReader()
    moderator = replaying(OpenTelemetryMetrics(MeterProvider(metric_readers=[reader])))
    for image in ("explicit.png", "knife-fight.jpg", "beach.png", "unrecorded.png"):
        moderator.check(images / image, context={"upload_id": "u-secret"})

    found = recorded(reader)
    decisions = {p.attributes["verdict"]: p.value for p in found["policy_engine.decisions"]}
    assert decisions == {"block": 2, "allow": 1, "review": 1}
    point = found["policy_engine.decisions"][0]
    assert dict(point.attributes) == {
        "verdict": point.attributes["verdict"],
        "policy": "general-ugc",
        "policy_digest": moderator.policy_digest,
        "route": "",
    }
    (duration,) = found["policy_engine.detector.duration"]
    assert (dict(duration.attributes), duration.count) == ({"detector": "stub"}, 4)
    assert tuple(duration.explicit_bounds) == DURATION_BUCKETS
    assert duration.sum > 0
    (calls,) = found["policy_engine.detector.calls"]
    assert (dict(calls.attributes), calls.value) == ({"detector": "stub"}, 4)
    (errors,) = found["policy_engine.detector.errors"]
    assert dict(errors.attributes) == {"detector": "stub", "error_code": "no-recording"}
    assert errors.value == 1
    assert "policy_engine.detector.cache_hits" not in found


def test_cache_hits_are_counted_and_not_timed_as_calls(cache_hit_event: DecisionEvent) -> None:
    reader = InMemoryMetricReader()
    metrics = OpenTelemetryMetrics(MeterProvider(metric_readers=[reader]))
    metrics.policy_engine_decision_made(cache_hit_event)

    found = recorded(reader)
    (hits,) = found["policy_engine.detector.cache_hits"]
    assert (dict(hits.attributes), hits.value) == ({"detector": "rekognition-moderation"}, 1)
    assert "policy_engine.detector.calls" not in found
    assert "policy_engine.detector.duration" not in found


def test_a_skipped_call_is_counted_as_a_skip_and_not_as_a_call(skip_event: DecisionEvent) -> None:
    reader = InMemoryMetricReader()
    OpenTelemetryMetrics(MeterProvider(metric_readers=[reader])).policy_engine_decision_made(
        skip_event
    )

    found = recorded(reader)
    (skips,) = found["policy_engine.detector.skips"]
    assert (dict(skips.attributes), skips.value) == ({"detector": "rekognition-moderation"}, 1)
    assert "policy_engine.detector.calls" not in found
