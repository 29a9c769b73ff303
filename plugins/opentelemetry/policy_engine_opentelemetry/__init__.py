"""OpenTelemetry metrics of every decision a policy-engine ``Moderator`` makes."""

from __future__ import annotations

from policy_engine_opentelemetry.metrics import OpenTelemetryMetrics

__all__ = ["OpenTelemetryMetrics"]
