"""What a decision counts as in metrics (policy_engine.signals): one label set
per decision and per detector call, from a real Moderator's events."""

from __future__ import annotations

from pathlib import Path

from test_cascade import POLICY, Scripted, registry_of
from test_moderator import Recorder, SlowDetector, moderator_for, registry_with
from test_moderator_sets import write_sets

from policy_engine import Label, Moderator
from policy_engine.plugins import make_plugin_manager
from policy_engine.signals import METRICS, signals_of


def test_a_policys_decisions_and_calls_are_counted_under_bounded_labels(tmp_path: Path) -> None:
    recorder = Recorder()
    store = tmp_path / "rec"
    moderator = moderator_for(
        tmp_path, detector=SlowDetector(), plugins=[recorder], cache=store, record=store
    )
    for upload in (b"fight", b"fight", b"explode", b""):
        moderator.check(upload, context={"upload_id": "u-1"}, name="secret-name.png")

    called, cached, failed, empty = (signals_of(e) for e in recorder.events)
    digest = moderator.policy_digest
    assert called.decision == (
        ("verdict", "block"),
        ("policy", "lenient"),
        ("policy_digest", digest),
        ("route", ""),
    )
    by_detector = (("detector", "counting"),)
    assert [labels for labels, _ in called.durations] == [by_detector]
    assert called.durations[0][1] >= SlowDetector.pause
    assert (called.calls, called.cache_hits, called.errors) == ((by_detector,), (), ())
    assert (cached.durations, cached.calls, cached.cache_hits) == ((), (), (by_detector,))
    assert failed.errors == ((("detector", "counting"), ("error_code", "unavailable")),)
    assert failed.calls == (by_detector,)
    assert (empty.calls, empty.errors) == ((), ((*by_detector, ("error_code", "empty-image")),))
    # nothing of the image or the caller's context becomes a label value
    for signals in (called, cached, failed, empty):
        values = {v for _, v in signals.decision} | {v for s in signals.errors for _, v in s}
        assert not values & {"secret-name.png", "u-1"}


def test_a_set_counts_under_its_own_name_and_digest_and_the_route_index(tmp_path: Path) -> None:
    one, _ = write_sets(tmp_path)
    recorder = Recorder()
    moderator = Moderator.from_policy_file(
        one,
        registry=registry_with(SlowDetector()),
        plugin_manager=make_plugin_manager(load_entry_points=False),
        plugins=[recorder],
    )
    moderator.check(b"x", context={"surface": "feed"})
    moderator.check(b"x", context={"surface": "chat", "audience": "teen"})

    feed, chat = (dict(signals_of(e).decision) for e in recorder.events)
    assert feed == {
        "verdict": "review",
        "policy": "one",
        "policy_digest": moderator.policy_digest,
        "route": "0",
    }
    assert chat == {**feed, "verdict": "block", "route": "1"}


def test_every_metric_has_a_prometheus_and_an_opentelemetry_name_and_bounded_labels() -> None:
    allowed = {"verdict", "policy", "policy_digest", "route", "detector", "error_code"}
    for metric in METRICS:
        assert metric.prometheus.startswith("policy_engine_")
        assert metric.opentelemetry.startswith("policy_engine.")
        assert set(metric.labels) <= allowed
    assert len({m.prometheus for m in METRICS}) == len(METRICS)


def test_the_readme_names_every_metric_for_both_exporters() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Metrics") : readme.index("## Scaling out")]
    for metric in METRICS:
        suffix = "_total" if metric.kind == "counter" else ""  # prometheus_client names it so
        assert f"`{metric.prometheus}{suffix}`" in section
        assert f"`{metric.opentelemetry}`" in section
        assert all(f"`{label}`" in section for label in metric.labels)


def test_a_call_the_cascade_skipped_counts_as_a_skip_not_a_call(tmp_path: Path) -> None:
    cheap = Scripted("cheap", labels=(Label("Known Image", 100.0, "cheap"),), remote=False)
    paid = Scripted("paid", labels=(Label("Violence", 95.0, "paid"),))
    recorder = Recorder()
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(on_error="review"), encoding="utf-8")
    with Moderator(
        policy,
        registry=registry_of(cheap, paid),
        plugin_manager=make_plugin_manager(load_entry_points=False),
        plugins=[recorder],
    ) as moderator:
        moderator.check(b"known")

    (counted,) = (signals_of(event) for event in recorder.events)
    assert counted.skips == ((("detector", "paid"),),)
    assert counted.calls == ((("detector", "cheap"),),)
