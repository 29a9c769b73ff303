"""The metrics, as a plugin of the ``policy_engine_decision_made`` hook."""

from __future__ import annotations

from importlib import metadata

from opentelemetry import metrics
from opentelemetry.metrics import Counter, MeterProvider

from policy_engine import hookimpl, signals
from policy_engine.events import DecisionEvent

METER_NAME = "policy_engine"


def _version() -> str:
    try:
        return metadata.version("policy-engine-opentelemetry")
    except metadata.PackageNotFoundError:  # run from a checkout, not installed
        return ""


class OpenTelemetryMetrics:
    """Records every decision with the meter ``policy_engine`` of
    ``meter_provider`` (default: the global one, which the SDK's
    ``metrics.set_meter_provider`` sets; until it is set, the API records
    nothing, at almost no cost)."""

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        meter = metrics.get_meter(METER_NAME, _version(), meter_provider)

        def counter(metric: signals.Metric) -> Counter:
            return meter.create_counter(metric.opentelemetry, metric.unit, metric.description)

        self.decisions = counter(signals.DECISIONS)
        self.duration = meter.create_histogram(
            signals.DETECTOR_DURATION.opentelemetry,
            signals.DETECTOR_DURATION.unit,
            signals.DETECTOR_DURATION.description,
            explicit_bucket_boundaries_advisory=signals.DURATION_BUCKETS,
        )
        self.calls = counter(signals.DETECTOR_CALLS)
        self.cache_hits = counter(signals.DETECTOR_CACHE_HITS)
        self.errors = counter(signals.DETECTOR_ERRORS)
        self.skips = counter(signals.DETECTOR_SKIPS)

    @hookimpl
    def policy_engine_decision_made(self, event: DecisionEvent) -> None:
        counted = signals.signals_of(event)
        self.decisions.add(1, dict(counted.decision))
        for labels, seconds in counted.durations:
            self.duration.record(seconds, dict(labels))
        for counter, increments in (
            (self.calls, counted.calls),
            (self.cache_hits, counted.cache_hits),
            (self.errors, counted.errors),
            (self.skips, counted.skips),
        ):
            for labels in increments:
                counter.add(1, dict(labels))
