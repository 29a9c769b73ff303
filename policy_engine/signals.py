"""What a decision counts as in metrics: the vocabulary the metrics plugins share.

The Prometheus and OpenTelemetry plugins both read a
:class:`~policy_engine.events.DecisionEvent` through :func:`signals_of` and
name what they export from :data:`METRICS`, so the two agree on what is
counted and under which labels. Labels are bounded by design: a verdict, a
policy's name and digest, a route's index, a detector's name and an error's
stable code; never an image's name, key or the caller's context.
"""

from __future__ import annotations

from dataclasses import dataclass

from policy_engine.events import DecisionEvent


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric, named for each exporter: ``prometheus`` (without the
    ``_total`` a counter gets) and ``opentelemetry``; ``kind`` is ``counter``
    or ``histogram``; ``unit`` is UCUM ("s", "1") as OpenTelemetry wants it."""

    prometheus: str
    opentelemetry: str
    description: str
    labels: tuple[str, ...]
    kind: str = "counter"
    unit: str = "1"


DECISIONS = Metric(
    "policy_engine_decisions",
    "policy_engine.decisions",
    "Decisions made, by verdict, serving policy (or set), its digest and the route taken",
    ("verdict", "policy", "policy_digest", "route"),
)
DETECTOR_DURATION = Metric(
    "policy_engine_detector_duration_seconds",
    "policy_engine.detector.duration",
    "Seconds each detector call took (calls that went out; cached answers excluded)",
    ("detector",),
    kind="histogram",
    unit="s",
)
DETECTOR_CALLS = Metric(
    "policy_engine_detector_calls",
    "policy_engine.detector.calls",
    "Detector calls made (for a remote detector: requests its service bills)",
    ("detector",),
)
DETECTOR_CACHE_HITS = Metric(
    "policy_engine_detector_cache_hits",
    "policy_engine.detector.cache_hits",
    "Detector answers taken from the cache (recordings) instead of a call",
    ("detector",),
)
DETECTOR_ERRORS = Metric(
    "policy_engine_detector_errors",
    "policy_engine.detector.errors",
    "Detector failures (decided under the policy's on_error), by stable error code",
    ("detector", "error_code"),
)
DETECTOR_SKIPS = Metric(
    "policy_engine_detector_skips",
    "policy_engine.detector.skips",
    "Detector calls the lossless cascade skipped: no answer could have changed the decision",
    ("detector",),
)
METRICS = (
    DECISIONS,
    DETECTOR_DURATION,
    DETECTOR_CALLS,
    DETECTOR_CACHE_HITS,
    DETECTOR_ERRORS,
    DETECTOR_SKIPS,
)

DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
"""Histogram bucket bounds, in seconds: from a local detector or a warm
connection to a call at the default detector time limit (120 s)."""

Labels = tuple[tuple[str, str], ...]
"""Label names and values, in the order the metric lists its labels."""


@dataclass(frozen=True, slots=True)
class DecisionSignals:
    """What one decision adds to each metric: a label set per increment (or
    per observation, for ``durations``)."""

    decision: Labels
    durations: tuple[tuple[Labels, float], ...]
    calls: tuple[Labels, ...]
    cache_hits: tuple[Labels, ...]
    errors: tuple[Labels, ...]
    skips: tuple[Labels, ...]


def signals_of(event: DecisionEvent) -> DecisionSignals:
    """What ``event`` counts as. For a policy set, ``policy`` and
    ``policy_digest`` are the set's (what ``Moderator.policy_digest`` shows) and
    ``route`` the index of the route that decided; for a single policy,
    ``route`` is empty."""
    decision = event.decision
    if event.policy_set is not None:
        policy, digest = event.policy_set["name"], event.policy_set["digest"]
    else:
        policy, digest = decision.policy_name, decision.policy_digest
    route = str(event.route["index"]) if event.route is not None else ""
    calls = event.detector_calls
    return DecisionSignals(
        decision=(
            ("verdict", decision.verdict.value),
            ("policy", policy),
            ("policy_digest", digest),
            ("route", route),
        ),
        durations=tuple(((("detector", c.detector),), c.seconds) for c in calls if c.called),
        calls=tuple((("detector", c.detector),) for c in calls if c.called),
        cache_hits=tuple((("detector", c.detector),) for c in calls if c.cached),
        errors=tuple(
            (("detector", c.detector), ("error_code", c.error_code))
            for c in calls
            if c.error_code is not None
        ),
        skips=tuple((("detector", skipped.source),) for skipped in decision.skipped),
    )
