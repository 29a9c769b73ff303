"""Entry point of the ``opentelemetry`` plugin (``[project.entry-points.policy_engine]``):
installed, it records every decision with the global meter provider.

Loading the plugin costs nothing (every ``validate``, every new Lambda
container loads it): the OpenTelemetry API is imported and the instruments
made at the first decision. A provider set before or after that
(``metrics.set_meter_provider``) receives them, since the API's global meter
forwards to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from policy_engine.once import DeferredDecisionPlugin

if TYPE_CHECKING:
    from policy_engine_opentelemetry.metrics import OpenTelemetryMetrics


def _metrics() -> OpenTelemetryMetrics:
    from policy_engine_opentelemetry.metrics import OpenTelemetryMetrics

    return OpenTelemetryMetrics()


METRICS = DeferredDecisionPlugin(_metrics)
"""``METRICS.get()`` is the plugin's :class:`OpenTelemetryMetrics` (made by that call)."""
policy_engine_decision_made = METRICS.policy_engine_decision_made
