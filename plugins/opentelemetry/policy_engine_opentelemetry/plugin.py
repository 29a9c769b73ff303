"""Entry point of the ``opentelemetry`` plugin (``[project.entry-points.policy_engine]``):
installed, it records every decision with the global meter provider.

The instruments are made when the plugin loads; a provider set after that
(``metrics.set_meter_provider``) still receives them, since the API's global
meter forwards to it."""

from __future__ import annotations

from policy_engine import hookimpl
from policy_engine.events import DecisionEvent
from policy_engine_opentelemetry.metrics import OpenTelemetryMetrics

METRICS = OpenTelemetryMetrics()


@hookimpl
def policy_engine_decision_made(event: DecisionEvent) -> None:
    METRICS.policy_engine_decision_made(event)
