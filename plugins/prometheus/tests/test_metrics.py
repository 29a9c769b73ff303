"""Every decision counted into a Prometheus registry, read back by a real scrape."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from policy_engine import Moderator
from policy_engine.events import DecisionEvent
from policy_engine_prometheus import PrometheusMetrics


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(registry: CollectorRegistry) -> str:
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode("utf-8"))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_decisions_and_detector_calls_are_scraped_over_http(
    replaying: Callable[[object], Moderator], images: Path
) -> None:
    registry = CollectorRegistry()
    moderator = replaying(PrometheusMetrics(registry))
    for image in ("explicit.png", "knife-fight.jpg", "beach.png", "unrecorded.png"):
        moderator.check(images / image, context={"upload_id": "u-secret"})

    found = samples(scrape(registry))
    policy = {("policy", "general-ugc"), ("policy_digest", moderator.policy_digest), ("route", "")}
    decisions = {
        verdict: found["policy_engine_decisions_total", frozenset({("verdict", verdict), *policy})]
        for verdict in ("allow", "review", "block")
    }
    assert decisions == {"allow": 1, "review": 1, "block": 2}
    stub = frozenset({("detector", "stub")})
    assert found[("policy_engine_detector_calls_total", stub)] == 4
    assert found[("policy_engine_detector_duration_seconds_count", stub)] == 4
    assert found[("policy_engine_detector_duration_seconds_sum", stub)] > 0
    errors = frozenset({("detector", "stub"), ("error_code", "no-recording")})
    assert found[("policy_engine_detector_errors_total", errors)] == 1
    label_values = {value for _, labels in found for _, value in labels}
    assert not label_values & {"u-secret", "unrecorded.png", str(images / "unrecorded.png")}


def test_cache_hits_are_counted_and_not_timed_as_calls(cache_hit_event: DecisionEvent) -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    metrics.policy_engine_decision_made(cache_hit_event)

    found = samples(generate_latest(registry).decode("utf-8"))
    detector = frozenset({("detector", "rekognition-moderation")})
    assert found[("policy_engine_detector_cache_hits_total", detector)] == 1
    assert ("policy_engine_detector_calls_total", detector) not in found
    assert ("policy_engine_detector_duration_seconds_count", detector) not in found


def test_a_skipped_call_is_counted_as_a_skip_and_not_as_a_call(skip_event: DecisionEvent) -> None:
    registry = CollectorRegistry()
    PrometheusMetrics(registry).policy_engine_decision_made(skip_event)

    found = samples(generate_latest(registry).decode("utf-8"))
    detector = frozenset({("detector", "rekognition-moderation")})
    assert found[("policy_engine_detector_skips_total", detector)] == 1
    assert ("policy_engine_detector_calls_total", detector) not in found
