"""Entry point of the ``opentelemetry`` plugin (``[project.entry-points.policy_engine]``):
installed, it records every decision with the global meter provider.

Loading the plugin costs nothing (every ``validate``, every new Lambda
container loads it): the OpenTelemetry API is imported and the instruments
made at the first decision. A provider set before or after that
(``metrics.set_meter_provider``) receives them, since the API's global meter
forwards to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from policy_engine import hookimpl
from policy_engine.once import Once

if TYPE_CHECKING:
    from policy_engine.events import DecisionEvent
    from policy_engine_opentelemetry.metrics import OpenTelemetryMetrics


def _metrics() -> OpenTelemetryMetrics:
    from policy_engine_opentelemetry.metrics import OpenTelemetryMetrics

    return OpenTelemetryMetrics()


METRICS_ONCE = Once(_metrics)


def __getattr__(name: str) -> OpenTelemetryMetrics:
    if name == "METRICS":  # the plugin's instruments, made by the first look
        return METRICS_ONCE.get()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def policy_engine_decision_made(event: DecisionEvent) -> None:
    METRICS_ONCE.get().policy_engine_decision_made(event)
