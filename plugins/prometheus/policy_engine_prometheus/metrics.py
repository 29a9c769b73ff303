"""The metrics, as a plugin of the ``policy_engine_decision_made`` hook."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from policy_engine import hookimpl, signals
from policy_engine.events import DecisionEvent


def _counter(metric: signals.Metric, registry: CollectorRegistry) -> Counter:
    return Counter(metric.prometheus, metric.description, metric.labels, registry=registry)


def _values(labels: signals.Labels) -> list[str]:
    return [value for _, value in labels]


class PrometheusMetrics:
    """Counts every decision into ``registry`` (default: prometheus_client's
    global ``REGISTRY``, which ``start_http_server`` and ``make_wsgi_app``
    serve). Its metrics are registered when it is made: make one per registry."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.decisions = _counter(signals.DECISIONS, registry)
        self.duration = Histogram(
            signals.DETECTOR_DURATION.prometheus,
            signals.DETECTOR_DURATION.description,
            signals.DETECTOR_DURATION.labels,
            registry=registry,
            buckets=signals.DURATION_BUCKETS,
        )
        self.calls = _counter(signals.DETECTOR_CALLS, registry)
        self.cache_hits = _counter(signals.DETECTOR_CACHE_HITS, registry)
        self.errors = _counter(signals.DETECTOR_ERRORS, registry)
        self.skips = _counter(signals.DETECTOR_SKIPS, registry)

    @hookimpl
    def policy_engine_decision_made(self, event: DecisionEvent) -> None:
        counted = signals.signals_of(event)
        self.decisions.labels(*_values(counted.decision)).inc()
        for labels, seconds in counted.durations:
            self.duration.labels(*_values(labels)).observe(seconds)
        for counter, increments in (
            (self.calls, counted.calls),
            (self.cache_hits, counted.cache_hits),
            (self.errors, counted.errors),
            (self.skips, counted.skips),
        ):
            for labels in increments:
                counter.labels(*_values(labels)).inc()
