"""Prometheus metrics of every decision a policy-engine ``Moderator`` makes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policy_engine_prometheus.metrics import PrometheusMetrics

__all__ = ["PrometheusMetrics"]


def __getattr__(name: str) -> Any:
    # Loading the plugin (its .plugin module) must not import prometheus_client.
    if name == "PrometheusMetrics":
        from policy_engine_prometheus.metrics import PrometheusMetrics

        return PrometheusMetrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
