"""Entry point of the ``prometheus`` plugin (``[project.entry-points.policy_engine]``):
installed, it counts every decision into prometheus_client's global ``REGISTRY``.

The metrics are registered when the plugin loads, once per process (the
registry refuses a second set of the same names), so a scrape lists them
before the first decision."""

from __future__ import annotations

from policy_engine import hookimpl
from policy_engine.events import DecisionEvent
from policy_engine_prometheus.metrics import PrometheusMetrics

METRICS = PrometheusMetrics()


@hookimpl
def policy_engine_decision_made(event: DecisionEvent) -> None:
    METRICS.policy_engine_decision_made(event)
