"""OpenTelemetry metrics of every decision a policy-engine ``Moderator`` makes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policy_engine_opentelemetry.metrics import OpenTelemetryMetrics

__all__ = ["OpenTelemetryMetrics"]


def __getattr__(name: str) -> Any:
    # Loading the plugin (its .plugin module) must not import OpenTelemetry.
    if name == "OpenTelemetryMetrics":
        from policy_engine_opentelemetry.metrics import OpenTelemetryMetrics

        return OpenTelemetryMetrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
