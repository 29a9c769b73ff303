"""``policy_engine.review.strictness``: is policy A at least as strict as B (POLICY_SPEC 11)?

The properties reuse the random policies and taxonomies of tests/test_properties.py
and check the band-by-band answer against brute force: every label of the
universe decided by ``CompiledPolicy.evaluate`` at a fine grid of confidences
(every threshold and floor, a hair either side, 0 and 100).
"""

from __future__ import annotations

import copy
import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine import DetectorRegistry, Label, parse_policy
from policy_engine.compiler import CompiledPolicy, compile_policy
from policy_engine.decision import DetectorFailure
from policy_engine.model import Verdict
from policy_engine.review.strictness import (
    DROPPED_BY,
    IGNORED_BY,
    OTHER_DETECTOR,
    Relation,
    Strictness,
    UniverseLabel,
    compare_policies,
    failure_verdict,
    sees,
    universe,
    visible,
)


def _load_diff_tests() -> ModuleType:
    """tests/review/test_diff.py, for its toy registry, policy and strategies."""
    name = "_policy_engine_test_diff"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("test_diff.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


diff_tests = _load_diff_tests()
props = diff_tests.props
BASE: str = diff_tests.BASE
TOY_REGISTRY: DetectorRegistry = diff_tests.TOY_REGISTRY
registry_with = diff_tests.registry_with

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def compiled(text: str, registry: DetectorRegistry = TOY_REGISTRY) -> CompiledPolicy:
    return compile_policy(parse_policy(text, registry=registry), registry)


def compare(a: str, b: str) -> Strictness:
    return compare_policies(compiled(a), compiled(b), TOY_REGISTRY)


# -- examples ----------------------------------------------------------------------------


def test_a_policy_is_exactly_as_strict_as_itself() -> None:
    result = compare(BASE, "# reformatted\n" + BASE)
    assert result.relation is Relation.EQUAL
    assert result.a_at_least_as_strict and result.b_at_least_as_strict


def test_a_lower_block_threshold_is_stricter_with_the_exact_band() -> None:
    result = compare(BASE.replace("block_at: 90", "block_at: 80"), BASE)
    assert result.relation is Relation.STRICTER
    assert not result.a_less_severe
    described = {c.label: c.describe("new", "old") for c in result.a_more_severe}
    assert described["Weapon Violence"] == (
        "Weapon Violence (s1, toy/v1, parent Violence) [80, 90): "
        "new block (rule violence), old review (rule violence)"
    )
    # a label nobody knows yet under Violence, and a name only a rule mentions
    assert "<any label under Violence>" in described
    # the reverse direction: the old policy is more lenient
    assert compare(BASE, BASE.replace("block_at: 90", "block_at: 80")).relation is (
        Relation.MORE_LENIENT
    )


def test_mixed_changes_give_counterexamples_both_ways() -> None:
    new = BASE.replace("block_at: 90", "block_at: 80").replace("review_at: 60", "review_at: 70")
    result = compare(BASE, new)
    assert result.relation is Relation.MIXED
    assert not result.a_at_least_as_strict and not result.b_at_least_as_strict
    violence = [c for c in (*result.a_more_severe, *result.a_less_severe) if c.label == "Violence"]
    assert [
        (c.describe_range(), c.verdict_a.value, c.verdict_b.value, c.rule_a, c.rule_b)
        for c in violence
    ] == [
        ("[60, 70)", "review", "allow", "violence", "violence"),
        ("[80, 90)", "review", "block", "violence", "violence"),
    ]
    assert result.to_dict()["relation"] == "mixed"


def test_a_higher_floor_is_more_lenient_where_labels_are_dropped() -> None:
    result = compare(BASE.replace("min_confidence: 50", "min_confidence: 65"), BASE)
    assert result.relation is Relation.MORE_LENIENT
    violence = [c for c in result.a_less_severe if c.label == "Violence"]
    assert [(c.describe_range(), c.rule_a, c.rule_b) for c in violence] == [
        ("[60, 65)", DROPPED_BY, "violence")
    ]


def test_a_threshold_equal_to_the_floor_is_inclusive() -> None:
    # block_at 50 with min_confidence 50: at exactly 50 the label blocks
    a = BASE.replace("review_at: 60\n    block_at: 90", "block_at: 50")
    b = a.replace("block_at: 50", "block_at: 50.5")
    result = compare(a, b)
    assert result.relation is Relation.STRICTER
    bands = {c.describe_range() for c in result.a_more_severe if c.label == "Violence"}
    assert bands == {"[50, 50.5)"}


def test_undeclared_detectors_are_ignored_and_their_failures_allow() -> None:
    only_s1 = BASE
    every_detector = BASE.replace("detectors: {s1: {}}\n", "")
    result = compare(only_s1, every_detector)
    # the policy with no detectors: sees s2's labels and any detector's failure
    assert result.relation is Relation.MORE_LENIENT
    sources = {c.source for c in result.a_less_severe}
    assert sources == {"s2", OTHER_DETECTOR}
    failure = next(c for c in result.a_less_severe if c.failure)
    assert failure.describe() == (
        f"failure of detector {OTHER_DETECTOR}: A allow ({IGNORED_BY}), B review (on_error)"
    )


def test_on_error_of_a_declared_detector_counts() -> None:
    result = compare(BASE + "on_error: allow\n", BASE)
    assert result.relation is Relation.MORE_LENIENT
    assert [c.describe() for c in result.a_less_severe] == [
        "failure of detector s1: A allow (on_error), B review (on_error)"
    ]


def test_a_name_only_a_rule_mentions_is_in_the_universe() -> None:
    # "Knife" is in no taxonomy: a custom-labels model may report it, alone or under a category
    a = BASE + (
        "  - id: knife\n"
        "    match: {name: Knife}  # policy-engine: ignore[unknown-name]\n"
        "    block_at: 70\n"
    )
    result = compare(a, BASE)
    knives = {(c.parent, c.describe_range()) for c in result.a_more_severe if c.label == "Knife"}
    # alone, B's default reviews from 80; under Violence, B's rule blocks from 90
    assert knives == {("", "[70, 80)"), ("", "[80, 100]"), ("Violence", "[70, 90)")}
    # and an unknown label at the top, from every detector
    names = {(item.source, item.name) for item in universe(compiled(a), compiled(BASE), None)}
    assert (OTHER_DETECTOR, "<any other label>") in names


def test_a_name_one_policy_mentions_under_a_category_only_the_other_knows() -> None:
    # A allows Knife by name; B blocks everything reported under Blades, a category
    # no taxonomy knows. A detector reporting Knife under Blades: A allows, B blocks.
    head = "version: 1\nname: p\ndetectors: {s1: {}}\nrules:\n"
    unknown = "  # policy-engine: ignore[unknown-name]\n"
    a = head + "  - {id: knife, match: {name: Knife}, action: allow}" + unknown
    b = head + "  - {id: blades, match: {parent: Blades}, block_at: 0}" + unknown
    result = compare(a, b)
    assert not result.a_at_least_as_strict
    assert ("Knife", "Blades") in {(c.label, c.parent) for c in result.a_less_severe}


# -- brute force -------------------------------------------------------------------------


Decide = Callable[[CompiledPolicy, Label], Verdict]


def evaluate_one(policy: CompiledPolicy, label: Label) -> Verdict:
    """The verdict ``evaluate`` gives an image with this one label, as the policy sees it."""
    labels, _ = visible(policy, [label])
    return policy.evaluate(labels).verdict


def grid(*policies: CompiledPolicy) -> list[float]:
    """0, 100, every threshold and floor, a hair either side, and steps of 12.5."""
    points = {0.0, 100.0, *(x * 12.5 for x in range(9))}
    for policy in policies:
        bodies = [rule.body for rule in policy.policy.rules] + [policy.policy.default]
        found = [policy.policy.min_confidence]
        for body in bodies:
            found += [x for x in body.fires_at if math.isfinite(x)]
        for x in found:
            points.update((x, math.nextafter(x, -math.inf), math.nextafter(x, math.inf)))
    return sorted(p for p in points if 0 <= p <= 100)


def brute_force(
    a: CompiledPolicy,
    b: CompiledPolicy,
    registry: DetectorRegistry | None,
    decide_a: Decide = evaluate_one,
) -> tuple[bool, bool]:
    """(somewhere A more severe, somewhere A less severe), label by label and point by point."""
    more = less = False
    points = grid(a, b)
    items: list[UniverseLabel] = list(universe(a, b, registry))
    for item in items:
        for confidence in points:
            label = Label(item.name, confidence, item.source, parent=item.parent)
            severity_a = decide_a(a, label).severity
            severity_b = evaluate_one(b, label).severity
            more |= severity_a > severity_b
            less |= severity_a < severity_b
    for source in {*a.policy.detectors, *b.policy.detectors, OTHER_DETECTOR}:
        failure = [DetectorFailure(source, "down")]
        under_a = a.evaluate([], visible(a, [], failure)[1]).verdict.severity
        under_b = b.evaluate([], visible(b, [], failure)[1]).verdict.severity
        more |= under_a > under_b
        less |= under_a < under_b
    return more, less


@st.composite
def policy_pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """B at random; A at random or B with one change (so that every relation occurs)."""
    b = draw(props.policy_data())
    if draw(st.booleans()):
        b["detectors"] = {s: {} for s in draw(st.sets(st.sampled_from(props.SOURCES)))}
        if not b["detectors"]:
            del b["detectors"]
    if draw(st.integers(0, 3)) == 0:
        return draw(props.policy_data()), b
    a = copy.deepcopy(b)
    change = draw(st.sampled_from(["rule", "floor", "default", "on_error", "detectors", "none"]))
    if change == "rule" and a["rules"]:
        index = draw(st.integers(0, len(a["rules"]) - 1))
        rule = a["rules"][index]
        a["rules"][index] = {"id": rule["id"], "match": rule["match"], **draw(props.bodies())}
    elif change == "floor":
        a["min_confidence"] = draw(st.sampled_from([0, 30, 50, 60.5, 100]))
    elif change == "default":
        a["default"] = draw(props.bodies())
    elif change == "on_error":
        a["on_error"] = draw(st.sampled_from(["allow", "review", "block"]))
    elif change == "detectors":
        a["detectors"] = {s: {} for s in draw(st.sets(st.sampled_from(props.SOURCES), min_size=1))}
    return a, b


def load_pair(
    data: tuple[dict[str, Any], dict[str, Any]], parents: dict[str, str]
) -> tuple[CompiledPolicy, CompiledPolicy, DetectorRegistry]:
    registry = registry_with(props.build_taxonomy(parents))
    a, b = (props.load(yaml.safe_load(yaml.safe_dump(d))) for d in data)
    return compile_policy(a, registry), compile_policy(b, registry), registry


@SETTINGS
@given(policy_pairs(), props.taxonomies())
def test_strictness_agrees_with_brute_force(
    data: tuple[dict[str, Any], dict[str, Any]], parents: dict[str, str]
) -> None:
    a, b, registry = load_pair(data, parents)
    result = compare_policies(a, b, registry)
    more, less = brute_force(a, b, registry)
    assert (bool(result.a_more_severe), bool(result.a_less_severe)) == (more, less)
    # and every counterexample is true where its band starts (and at 100 when closed)
    for example in (*result.a_more_severe, *result.a_less_severe):
        if example.failure:
            assert failure_verdict(a, example.source)[0] is example.verdict_a
            continue
        points = [example.low] + ([example.high] if example.closed else [])
        for confidence in points:
            label = Label(example.label, confidence, example.source, parent=example.parent)
            assert evaluate_one(a, label) is example.verdict_a, example
            assert evaluate_one(b, label) is example.verdict_b, example


labels_from_universe = st.lists(st.tuples(st.integers(0, 10_000), props.numbers), max_size=6).map(
    tuple
)


@SETTINGS
@given(
    policy_pairs(),
    props.taxonomies(),
    labels_from_universe,
    st.lists(st.sampled_from([*props.SOURCES, "s9"]), max_size=2),
)
def test_at_least_as_strict_decides_every_image_at_least_as_severely(
    data: tuple[dict[str, Any], dict[str, Any]],
    parents: dict[str, str],
    picks: tuple[tuple[int, float], ...],
    failing: list[str],
) -> None:
    a, b, registry = load_pair(data, parents)
    if not compare_policies(a, b, registry).a_at_least_as_strict:
        return
    items = list(universe(a, b, registry))
    chosen = [(items[i % len(items)], confidence) for i, confidence in picks]
    labels = [Label(x.name, confidence, x.source, parent=x.parent) for x, confidence in chosen]
    failures = [DetectorFailure(source, "down") for source in failing]
    under_a = a.evaluate(*visible(a, labels, failures)).verdict
    under_b = b.evaluate(*visible(b, labels, failures)).verdict
    assert under_a.severity >= under_b.severity


def test_brute_force_catches_an_off_by_one_on_inclusive_thresholds() -> None:
    """A planted bug: thresholds compared with ``>`` instead of ``>=``. The grid holds
    every threshold, so the brute force sees the two policies differ exactly there."""
    policy = compiled(BASE)

    def exclusive(p: CompiledPolicy, label: Label) -> Verdict:
        labels, _ = visible(p, [label])
        nudged = [
            Label(x.name, math.nextafter(x.confidence, -math.inf), x.source, parent=x.parent)
            if x.confidence > 0
            else x
            for x in labels
        ]
        kept = [x for x in nudged if x.confidence >= p.policy.min_confidence]
        return p.evaluate(kept).verdict

    assert compare_policies(policy, policy, TOY_REGISTRY).relation is Relation.EQUAL
    assert brute_force(policy, policy, TOY_REGISTRY) == (False, False)
    assert brute_force(policy, policy, TOY_REGISTRY, decide_a=exclusive) == (False, True)


def test_sees_and_visible() -> None:
    policy = compiled(BASE)
    assert sees(policy, "s1") and not sees(policy, "s2")
    labels, failures = visible(
        policy,
        [Label("Violence", 99, "s1"), Label("Violence", 99, "s2")],
        [DetectorFailure("s2", "down")],
    )
    assert [x.source for x in labels] == ["s1"] and failures == ()
