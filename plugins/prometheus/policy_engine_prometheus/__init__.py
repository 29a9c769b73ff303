"""Prometheus metrics of every decision a policy-engine ``Moderator`` makes."""

from __future__ import annotations

from policy_engine_prometheus.metrics import PrometheusMetrics

__all__ = ["PrometheusMetrics"]
