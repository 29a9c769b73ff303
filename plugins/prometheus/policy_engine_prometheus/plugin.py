"""Entry point of the ``prometheus`` plugin (``[project.entry-points.policy_engine]``):
installed, it counts every decision into prometheus_client's global ``REGISTRY``.

Loading the plugin costs nothing (every ``validate``, every new Lambda
container loads it): prometheus_client is imported and the metrics are
registered at the first decision, once per process (the registry refuses a
second set of the same names)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from policy_engine import hookimpl
from policy_engine.once import Once

if TYPE_CHECKING:
    from policy_engine.events import DecisionEvent
    from policy_engine_prometheus.metrics import PrometheusMetrics


def _metrics() -> PrometheusMetrics:
    from policy_engine_prometheus.metrics import PrometheusMetrics

    return PrometheusMetrics()


METRICS_ONCE = Once(_metrics)


def __getattr__(name: str) -> PrometheusMetrics:
    if name == "METRICS":  # the plugin's metrics, made by the first look
        return METRICS_ONCE.get()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def policy_engine_decision_made(event: DecisionEvent) -> None:
    METRICS_ONCE.get().policy_engine_decision_made(event)
