"""Entry point of the ``prometheus`` plugin (``[project.entry-points.policy_engine]``):
installed, it counts every decision into prometheus_client's global ``REGISTRY``.

Loading the plugin costs nothing (every ``validate``, every new Lambda
container loads it): prometheus_client is imported and the metrics are
registered at the first decision, once per process (the registry refuses a
second set of the same names)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from policy_engine.once import DeferredDecisionPlugin

if TYPE_CHECKING:
    from policy_engine_prometheus.metrics import PrometheusMetrics


def _metrics() -> PrometheusMetrics:
    from policy_engine_prometheus.metrics import PrometheusMetrics

    return PrometheusMetrics()


METRICS = DeferredDecisionPlugin(_metrics)
"""``METRICS.get()`` is the plugin's :class:`PrometheusMetrics` (made by that call)."""
policy_engine_decision_made = METRICS.policy_engine_decision_made
