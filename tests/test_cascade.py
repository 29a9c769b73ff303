"""The lossless cascade (policy_engine/cascade.py and the engine's calling order):
skipping a detector never changes a decision, for a policy, a shadow pair and a
policy set; and it does skip where it can."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from test_properties import (
    NAMES,
    SETTINGS,
    any_name,
    build_taxonomy,
    load,
    numbers,
    policy_data,
    taxonomies,
)

from policy_engine import (
    CompiledPolicy,
    DetectContext,
    Detector,
    DetectorError,
    DetectorRegistry,
    DetectorResult,
    Engine,
    Image,
    Label,
    Taxonomy,
    load_policy,
    parse_policy,
)
from policy_engine.cascade import (
    ALREADY_BLOCK,
    EVERY_ROUTE_BLOCKS,
    NEVER_MATTERS,
    most_severe_answer,
)
from policy_engine.decision import Decision
from policy_engine.loader import check_policy_text
from policy_engine.model import Verdict
from policy_engine.plugins import RegisteredDetector
from policy_engine.policy_set import SetDecision, load_policy_set
from policy_engine.review.strictness import universe
from policy_engine.review.table import MAX_CONFIDENCE, table_row

DETECTORS = ("s1", "s2", "s3")  # rules name s1 and s2 in source:, never s3
IMAGE = Image("x.jpg", b"x")


class Scripted(Detector):
    """Answers what the test scripted (labels, content types) or fails; counts calls."""

    settings_schema: ClassVar[Mapping[str, Any]] = {"type": "object"}

    def __init__(
        self,
        name: str,
        *,
        labels: tuple[Label, ...] = (),
        fails: bool = False,
        remote: bool = True,
        content_types: tuple[str, ...] = (),
        taxonomy: Taxonomy | None = None,
        other_sources: bool = False,
    ) -> None:
        self.name = name  # type: ignore[misc]
        self.remote = remote  # type: ignore[misc]
        self.reports_other_sources = other_sources  # type: ignore[misc]
        self._labels = labels
        self._fails = fails
        self._content_types = content_types
        self._taxonomy = taxonomy
        self.calls = 0

    def taxonomy(self, model_version: str | None) -> Taxonomy | None:
        return self._taxonomy

    def taxonomies(self) -> tuple[Taxonomy, ...]:
        return () if self._taxonomy is None else (self._taxonomy,)

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        self.calls += 1
        if self._fails:
            raise DetectorError(f"{self.name} is down")
        metadata = (
            {"content_types": [{"name": n, "confidence": 90.0} for n in self._content_types]}
            if self._content_types
            else {}
        )
        return DetectorResult(self.name, self._labels, metadata)


def registry_of(*detectors: Detector) -> DetectorRegistry:
    return DetectorRegistry([RegisteredDetector(d, "test") for d in detectors])


content_type_names = st.sampled_from(["Animated", "Drawn"])


@st.composite
def scripted_detectors(draw: st.DrawFn) -> tuple[Scripted, ...]:
    """One scripted detector per name: labels (some of another source where it says
    so), a failure, remote or local, content types. No taxonomy: the engine would
    refuse a generated rule's name that it lacks (the bound's own test has one)."""
    found = []
    for name in DETECTORS:
        other_sources = draw(st.booleans()) and name == "s3"
        sources = st.sampled_from(DETECTORS) if other_sources else st.just(name)
        labels = draw(
            st.lists(
                st.builds(
                    Label,
                    name=any_name([*NAMES, "Unknown"]),
                    confidence=numbers,
                    source=sources,
                    parent=st.one_of(st.just(""), any_name([*NAMES, "Custom"])),
                ),
                max_size=3,
            )
        )
        found.append(
            Scripted(
                name,
                labels=tuple(labels),
                fails=draw(st.integers(0, 4)) == 0,
                remote=draw(st.booleans()),
                content_types=tuple(draw(st.lists(content_type_names, max_size=1))),
                other_sources=other_sources,
            )
        )
    return tuple(found)


costs = st.dictionaries(st.sampled_from(DETECTORS), st.sampled_from([0, 1, 2.5, 10]))


def with_cascade(data: dict[str, Any], given_costs: dict[str, float], skip: bool) -> dict[str, Any]:
    cascade: dict[str, Any] = {"skip": skip}
    if given_costs:
        cascade["costs"] = given_costs
    return {**data, "detectors": {name: {} for name in DETECTORS}, "cascade": cascade}


def assert_same_decision(skipping: Decision, everything: Decision) -> None:
    """The verdict is the same, and every reason the skipping run gives is one the
    full run gives (a skipped detector's labels and errors are absent by design)."""
    assert skipping.verdict is everything.verdict
    assert set(skipping.reasons()) <= set(everything.reasons())
    assert all(label in everything.labels for label in skipping.labels)
    assert set(skipping.failures) <= set(everything.failures)


# -- the bound ---------------------------------------------------------------------


@settings(SETTINGS, max_examples=100)
@given(policy_data(), taxonomies(), st.sampled_from(DETECTORS))
def test_the_bound_holds_every_label_of_the_strictness_universe(
    data: dict[str, Any], tax: dict[str, str], source: str
) -> None:
    """No label the strictness analysis knows (taxonomy, labels:, rule names,
    unknown labels under each category and at the top) is decided more severely
    than the bound says, at confidence 100."""
    policy = load({**data, "detectors": {name: {} for name in DETECTORS}})
    detector = Scripted(source, taxonomy=build_taxonomy(tax) if source == "s1" else None)
    registry = registry_of(detector)
    compiled = CompiledPolicy(policy, registry.taxonomy_for)
    most = most_severe_answer(compiled, source)
    assert policy.on_error.severity <= most.severity
    for item in universe(compiled, compiled, registry):
        if item.source != source:
            continue
        row = table_row(compiled, source, item.taxonomy, item.name, item.parent)
        verdict = row.verdict_at(MAX_CONFIDENCE) or Verdict.ALLOW
        assert verdict.severity <= most.severity, (item, row)


def test_a_known_name_under_another_parent_is_bounded_too() -> None:
    """The strictness universe reports a taxonomy label under its taxonomy parent
    only; the bound also covers the same name reported under another parent
    (a bound over the universe would have skipped s1 as never mattering)."""
    rules = (
        "rules:\n"
        "  - {id: carve, match: {name: Knife, parent: Weapons}, action: allow}\n"
        "  - {id: knife, match: {name: Knife}, action: block}\n"
    )
    from policy_builders import TAXONOMY

    detector = Scripted("s1", taxonomy=TAXONOMY)
    registry = registry_of(detector)
    policy = parse_policy(
        f"version: 1\nname: p\non_error: allow\ndetectors: {{s1: {{}}}}\n{rules}", registry
    )
    compiled = CompiledPolicy(policy, registry.taxonomy_for)
    misplaced = Label("Knife", 99.0, "s1", parent="Explicit")
    assert compiled.evaluate([misplaced]).verdict is Verdict.BLOCK
    assert most_severe_answer(compiled, "s1") is Verdict.BLOCK
    # why the bound is not the universe's: there, every label of s1 allows
    in_universe = {
        table_row(compiled, "s1", item.taxonomy, item.name, item.parent).verdict_at(100)
        for item in universe(compiled, compiled, registry)
        if item.source == "s1"
    }
    assert in_universe == {Verdict.ALLOW}


# -- a single policy ----------------------------------------------------------------


@settings(SETTINGS, max_examples=150)
@given(policy_data(), st.data())
def test_skipping_never_changes_a_decision(data: dict[str, Any], draw: st.DataObject) -> None:
    detectors = draw.draw(scripted_detectors())
    given_costs = draw.draw(costs)
    registry = registry_of(*detectors)
    skipping = Engine(load(with_cascade(data, given_costs, True)), registry).check(IMAGE)
    calls = {d.name: d.calls for d in detectors}
    everything = Engine(load(with_cascade(data, given_costs, False)), registry).check(IMAGE)
    assert not everything.skipped
    assert_same_decision(skipping, everything)
    for skipped in skipping.skipped:
        assert calls[skipped.source] == 0
    assert sum(calls.values()) + len(skipping.skipped) == len(DETECTORS)


# -- a shadow pair -------------------------------------------------------------------


@settings(SETTINGS, max_examples=100)
@given(policy_data(), policy_data(), st.data())
def test_with_a_shadow_neither_decision_changes(
    data: dict[str, Any], candidate: dict[str, Any], draw: st.DataObject
) -> None:
    detectors = draw.draw(scripted_detectors())
    given_costs = draw.draw(costs)
    registry = registry_of(*detectors)
    shadow = CompiledPolicy(
        load({**candidate, "detectors": {name: {} for name in DETECTORS}}), registry.taxonomy_for
    )

    engine = Engine(load(with_cascade(data, given_costs, True)), registry)

    def decide(skip: bool) -> tuple[Decision, Decision]:
        found = engine.detection(IMAGE, shadow=shadow, skip=skip)
        results, failures = list(found.results), list(found.failures)
        active = engine.decide(results, failures)
        return active, shadow.evaluate_results(results, failures)

    (active, candidate_decision), (full_active, full_candidate) = decide(True), decide(False)
    assert_same_decision(active, full_active)
    assert_same_decision(candidate_decision, full_candidate)


# -- a policy set ---------------------------------------------------------------------


@st.composite
def routed_sets(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    """A set over three policies: routes by surface and content type, then a catch-all."""
    policies = []
    for index in range(3):
        data = draw(policy_data())
        declared = draw(st.lists(st.sampled_from(DETECTORS), unique=True, min_size=1))
        policies.append({**data, "name": f"p{index}", "detectors": {d: {} for d in declared}})
    routes = [
        {"when": {"surface": "feed", "content_type": ["Animated"]}, "policy": "p0.yaml"},
        {"when": {"surface": draw(st.sampled_from(["feed", "chat"]))}, "policy": "p1.yaml"},
        {"policy": "p2.yaml"},
    ]
    if draw(st.booleans()):
        routes[1]["when"]["content_type"] = ["Drawn"]
    document = {
        "version": 1,
        "kind": "policy-set",
        "name": "s",
        "context": {"surface": {"values": ["feed", "chat"]}},
        "routes": routes,
    }
    return yaml.safe_dump(document), policies


@settings(SETTINGS, max_examples=80)  # each example writes and loads four files
@given(routed_sets(), st.sampled_from(["feed", "chat"]), st.data())
def test_with_a_set_neither_routing_nor_decision_changes(
    routed: tuple[str, list[dict[str, Any]]], surface: str, draw: st.DataObject
) -> None:
    set_text, policies = routed
    for policy in policies:
        load(policy)  # rejects the example where the generator made a labels: cycle
    detectors = draw.draw(scripted_detectors())
    registry = registry_of(*detectors)
    skip = draw.draw(st.booleans())  # some routed policy turns skipping off
    with tempfile.TemporaryDirectory() as folder:
        for index, policy in enumerate(policies):
            cascade = {"skip": skip or index != 1}
            text = yaml.safe_dump({**policy, "cascade": cascade})
            (Path(folder) / f"{policy['name']}.yaml").write_text(text)
        (Path(folder) / "set.yaml").write_text(set_text)
        engine = Engine(load_policy_set(Path(folder) / "set.yaml", registry=registry), registry)
    context = {"surface": surface}
    decided = {True: engine.check_in(IMAGE, context)}
    found = engine.detection(IMAGE, context=context, skip=False)
    decided[False] = engine.decide_in(list(found.results), list(found.failures), context)
    assert isinstance(decided[True], SetDecision) and isinstance(decided[False], SetDecision)
    if not skip:
        assert not decided[True].decision.skipped
    skipping_decision, everything = decided[True], decided[False]
    assert skipping_decision.verdict is everything.verdict
    if skipping_decision.route.index == everything.route.index:
        assert set(skipping_decision.decision.reasons()) <= set(everything.decision.reasons())
    else:  # a skipped detector's content types went unread: only where every route blocks
        assert skipping_decision.decision.skipped
        assert all(s.reason == EVERY_ROUTE_BLOCKS for s in skipping_decision.decision.skipped)


# -- targeted --------------------------------------------------------------------------

POLICY = """\
version: 1
name: cascade
on_error: {on_error}
detectors: {{cheap: {{}}, paid: {{}}}}
rules:
  - {{id: known, match: {{name: Known Image}}, action: block}}
  - {{id: violence, match: {{parent: Violence}}, review_at: 50, block_at: 90}}
"""


def engine_for(*detectors: Detector, on_error: str = "review", extra: str = "") -> Engine:
    registry = registry_of(*detectors)
    return Engine(parse_policy(POLICY.format(on_error=on_error) + extra, registry), registry)


def test_a_block_from_a_local_detector_skips_the_paid_one() -> None:
    cheap = Scripted("cheap", labels=(Label("Known Image", 100.0, "cheap"),), remote=False)
    paid = Scripted("paid", labels=(Label("Violence", 70.0, "paid"),))
    engine = engine_for(paid, cheap)
    decision = engine.check(IMAGE)
    assert decision.verdict is Verdict.BLOCK and (cheap.calls, paid.calls) == (1, 0)
    assert decision.to_dict()["skipped"] == [{"source": "paid", "reason": ALREADY_BLOCK}]
    assert engine.counter.skipped == 1 and engine.counter.calls == 0  # a local call is no call


def test_a_record_with_skipped_detectors_is_valid_against_the_decision_schema() -> None:
    from jsonschema import Draft202012Validator

    from policy_engine.schema import packaged_schema

    cheap = Scripted("cheap", labels=(Label("Known Image", 100.0, "cheap"),), remote=False)
    record = engine_for(cheap, Scripted("paid")).check(IMAGE).to_dict()
    validator = Draft202012Validator(packaged_schema("decision.schema.json"))
    assert list(validator.iter_errors(record)) == [] and record["skipped"]
    record["skipped"] = [{"source": "paid"}]
    assert list(validator.iter_errors(record))  # a reason is required


def test_switched_off_every_detector_is_called() -> None:
    cheap = Scripted("cheap", labels=(Label("Known Image", 100.0, "cheap"),), remote=False)
    paid = Scripted("paid", labels=(Label("Violence", 70.0, "paid"),))
    engine = engine_for(cheap, paid, extra="cascade: {skip: false}\n")
    decision = engine.check(IMAGE)
    assert decision.verdict is Verdict.BLOCK and (cheap.calls, paid.calls) == (1, 1)
    assert "skipped" not in decision.to_dict() and engine.counter.skipped == 0
    assert [r.rule for r in decision.reasons()] == ["known", "violence"]


def test_a_cheap_failure_under_on_error_block_skips_the_rest() -> None:
    cheap = Scripted("cheap", fails=True, remote=False)
    paid = Scripted("paid")
    decision = engine_for(cheap, paid, on_error="block").check(IMAGE)
    assert decision.verdict is Verdict.BLOCK and paid.calls == 0
    assert [s.source for s in decision.skipped] == ["paid"]


def test_a_cheap_failure_under_on_error_review_still_calls_a_detector_that_can_block() -> None:
    cheap = Scripted("cheap", fails=True, remote=False)
    paid = Scripted("paid", labels=(Label("Violence", 95.0, "paid"),))
    decision = engine_for(cheap, paid, on_error="review").check(IMAGE)
    assert paid.calls == 1 and decision.verdict is Verdict.BLOCK and not decision.skipped


def test_review_skips_a_detector_that_can_only_review() -> None:
    cheap = Scripted("cheap", labels=(Label("Violence", 60.0, "cheap"),), remote=False)
    paid = Scripted("paid", labels=(Label("Violence", 60.0, "paid"),))
    registry = registry_of(cheap, paid)
    text = (
        "version: 1\nname: p\ndetectors: {cheap: {}, paid: {}}\ndefault: review\n"
        "rules:\n  - {id: v, match: {parent: Violence, source: cheap}, review_at: 50}\n"
    )
    decision = Engine(parse_policy(text, registry), registry).check(IMAGE)
    assert decision.verdict is Verdict.REVIEW and paid.calls == 0
    assert decision.to_dict()["skipped"] == [{"source": "paid", "reason": "cannot raise review"}]


def test_a_detector_whose_answer_never_matters_is_skipped() -> None:
    cheap = Scripted("cheap", remote=False)
    paid = Scripted("paid", labels=(Label("Violence", 99.0, "paid"),))
    registry = registry_of(cheap, paid)
    text = (
        "version: 1\nname: p\non_error: allow\ndetectors: {cheap: {}, paid: {}}\n"
        "rules:\n  - {id: v, match: {parent: Violence, source: cheap}, block_at: 90}\n"
    )
    decision = Engine(parse_policy(text, registry), registry).check(IMAGE)
    assert paid.calls == 0 and decision.skipped[0].reason == NEVER_MATTERS


def test_a_detector_reporting_other_sources_is_bounded_by_their_rules() -> None:
    """The stub replays a Rekognition response with its labels' sources: a rule
    for rekognition's labels can decide the stub's answer."""
    local = Scripted("local", labels=(Label("Thing", 80.0, "local"),), remote=False)
    replayer = Scripted("replayer", labels=(Label("Violence", 95.0, "paid"),), other_sources=True)
    registry = registry_of(local, replayer)
    text = (
        "version: 1\nname: p\ndefault: review\ndetectors: {local: {}, replayer: {}}\n"
        "rules:\n  - {id: v, match: {parent: Violence, source: paid}, block_at: 90}\n"
    )
    decision = Engine(parse_policy(text, registry), registry).check(IMAGE)
    assert replayer.calls == 1 and decision.verdict is Verdict.BLOCK and not decision.skipped


def test_costs_order_the_calls_and_the_record_keeps_the_usual_order() -> None:
    order: list[str] = []

    class Ordered(Scripted):
        def detect(self, image: Image, context: DetectContext) -> DetectorResult:
            order.append(self.name)
            return super().detect(image, context)

    a = Ordered("a", labels=(Label("Violence", 60.0, "a"),))
    b = Ordered("b", labels=(Label("Violence", 70.0, "b"),))
    registry = registry_of(a, b)
    text = (
        "version: 1\nname: p\ndetectors: {a: {}, b: {}}\ncascade: {costs: {a: 5}}\n"
        "rules:\n  - {id: v, match: {parent: Violence}, review_at: 50, block_at: 90}\n"
    )
    decision = Engine(parse_policy(text, registry), registry).check(IMAGE)
    assert order == ["b", "a"]  # a costs 5, b the default 1
    assert [label.source for label in decision.labels] == ["a", "b"]


def test_a_label_of_another_source_is_an_invalid_result() -> None:
    liar = Scripted("cheap", labels=(Label("Violence", 99.0, "paid"),), remote=False)
    paid = Scripted("paid")
    decision = engine_for(liar, paid).check(IMAGE)
    assert [f.source for f in decision.failures] == ["cheap"]
    assert "source 'paid'" in decision.failures[0].error


def test_a_replay_calls_every_stand_in() -> None:
    cheap = Scripted("cheap", labels=(Label("Known Image", 100.0, "cheap"),), remote=False)
    paid = Scripted("paid")
    registry = registry_of(cheap, paid)
    policy = parse_policy(POLICY.format(on_error="review"), registry)
    engine = Engine(policy, registry, detectors={"cheap": {}, "paid": {}})
    engine.check(IMAGE)
    assert paid.calls == 1


def shadow_check(tmp_path: Path, candidate: str) -> tuple[Decision, Scripted]:
    """One image checked under POLICY with ``candidate`` as its shadow: the
    decision, and the paid detector (to count its calls)."""
    from policy_engine.moderator import Moderator

    cheap = Scripted("cheap", labels=(Label("Known Image", 100.0, "cheap"),), remote=False)
    paid = Scripted("paid", labels=(Label("Violence", 95.0, "paid"),))
    registry = registry_of(cheap, paid)
    active, shadow = tmp_path / "active.yaml", tmp_path / "candidate.yaml"
    active.write_text(POLICY.format(on_error="review"))
    shadow.write_text(candidate)
    with Moderator(active, registry=registry, shadow=shadow) as moderator:
        return moderator.check(IMAGE), paid


def test_with_a_shadow_a_detector_the_candidate_needs_is_called(tmp_path: Path) -> None:
    serving = POLICY.format(on_error="review")
    lenient = serving.replace("action: block", "action: allow")
    lenient = lenient.replace("name: cascade", "name: lenient")

    decision, paid = shadow_check(tmp_path, lenient)
    # the candidate allows Known Image: only paid's Violence can decide it
    assert paid.calls == 1 and decision.verdict is Verdict.BLOCK and not decision.skipped

    decision, paid = shadow_check(tmp_path, serving.replace("name: cascade", "name: same"))
    assert paid.calls == 0 and [s.source for s in decision.skipped] == ["paid"]


def test_a_shadow_candidate_that_turns_skipping_off_gets_every_call(tmp_path: Path) -> None:
    # the candidate asks for full records (an audit): the serving policy's
    # cascade must not leave the candidate's records short of a detector
    audit = POLICY.format(on_error="review").replace("name: cascade", "name: audit")

    decision, paid = shadow_check(tmp_path, audit + "cascade: {skip: false}\n")

    assert paid.calls == 1 and decision.verdict is Verdict.BLOCK and not decision.skipped


BASE = """\
version: 1
name: base
detectors: {a: {}, b: {}}
cascade: {skip: false, costs: {a: 2, b: 1}}
rules: []
"""


def test_extends_merges_costs_by_detector_and_replaces_skip(tmp_path: Path) -> None:
    a, b = Scripted("a"), Scripted("b")
    registry = registry_of(a, b)
    (tmp_path / "base.yaml").write_text(BASE)
    child = tmp_path / "child.yaml"
    child.write_text(
        "version: 1\nname: child\nextends: base.yaml\ncascade: {costs: {b: 3}}\nrules: []\n"
    )
    policy = load_policy(child, registry=registry)
    assert policy.cascade.skip is False and dict(policy.cascade.costs) == {"a": 2.0, "b": 3.0}
    child.write_text(
        "version: 1\nname: child\nextends: base.yaml\ncascade: {skip: true}\nrules: []\n"
    )
    policy = load_policy(child, registry=registry)
    assert policy.cascade.skip is True and dict(policy.cascade.costs) == {"a": 2.0, "b": 1.0}
    written_out = tmp_path / "whole.yaml"
    written_out.write_text(
        BASE.replace("name: base", "name: child").replace("skip: false", "skip: true")
    )
    assert load_policy(written_out, registry=registry).digest == policy.digest


def test_the_digest_covers_cascade_only_where_it_is_not_the_default() -> None:
    text = "version: 1\nname: p\nrules: []\n"
    plain = parse_policy(text)
    assert parse_policy(text + "cascade: {skip: true}\n").digest == plain.digest
    assert parse_policy(text + "cascade: {}\n").digest == plain.digest
    assert parse_policy(text + "cascade: {skip: false}\n").digest != plain.digest


def test_a_cost_for_a_detector_the_policy_does_not_run_is_an_error() -> None:
    head = "version: 1\nname: p\ndetectors: {a: {}}\nrules: []\n"
    unknown = check_policy_text(head + "cascade: {costs: {b: 1}}\n", "p.yaml").errors
    assert [(d.code, d.line, d.column) for d in unknown] == [("cascade-unknown-detector", 5, 19)]
    negative = check_policy_text(head + "cascade: {costs: {a: -1}}\n", "p.yaml").errors
    assert [d.code for d in negative] == ["out-of-range"]


def test_a_check_record_with_a_skipped_detector_is_never_re_decided_as_if_it_said_nothing() -> None:
    """``evaluate`` and ``diff --corpus`` re-decide a check record under another
    policy: a detector the cascade skipped gave no answer, which must not read as
    "no labels" (an allow where a full run's record blocks). It counts as one
    that failed (its answer is unknown), so the other policy's ``on_error``
    decides it; under the policy that made the record, the decision is the same."""
    import json

    from policy_engine.cli.corpus_items import parse_entry

    cheap = Scripted("cheap", labels=(Label("Known Image", 100.0, "cheap"),), remote=False)
    paid = Scripted("paid", labels=(Label("Violence", 95.0, "paid"),))
    registry = registry_of(cheap, paid)
    made_by = parse_policy(POLICY.format(on_error="review"), registry)
    other = CompiledPolicy(
        parse_policy(
            POLICY.format(on_error="review").replace("action: block", "action: allow"), registry
        ),
        registry.taxonomy_for,
    )

    def re_decided(skip: bool) -> tuple[Verdict, Verdict]:
        text = POLICY.format(on_error="review") + ("" if skip else "cascade: {skip: false}\n")
        record = Engine(parse_policy(text, registry), registry).check(IMAGE).to_dict()
        assert bool(record.get("skipped")) is skip
        item = parse_entry(False, ("records.jsonl:1", json.dumps(record)), registry)
        assert item is not None
        same = CompiledPolicy(made_by, registry.taxonomy_for).evaluate(item.labels, item.failures)
        return same.verdict, other.evaluate(item.labels, item.failures).verdict

    assert re_decided(False) == (Verdict.BLOCK, Verdict.BLOCK)  # paid's Violence blocks
    skipping = re_decided(True)
    assert skipping[0] is Verdict.BLOCK
    assert skipping[1] is not Verdict.ALLOW  # unknown: the other policy's on_error (review)


def test_a_set_record_leaves_out_a_detector_skipped_as_never_mattering() -> None:
    """A set's record carries its routed policy's own detectors only: one skipped
    as never mattering may not be the routed policy's, so it does not count."""
    import json

    from policy_engine.cli.corpus_items import parse_entry

    registry = registry_of(Scripted("cheap"), Scripted("paid"))
    skipped = [{"source": "paid", "reason": NEVER_MATTERS}, {"source": "cheap", "reason": "x"}]
    record = {"decision": "allow", "labels": [], "errors": [], "skipped": skipped}
    for of_a_set, sources in ((False, ["paid", "cheap"]), (True, ["cheap"])):
        line = json.dumps({**record, "route": {"index": 0}} if of_a_set else record)
        item = parse_entry(False, ("r.jsonl:1", line), registry)
        assert item is not None and [f.source for f in item.failures] == sources
