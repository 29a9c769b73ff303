"""Invariants over the exact decision table (policy_engine.review.invariants).

Properties on random policies (the generators of tests/test_properties.py): the
decision table predicts exactly what ``evaluate`` returns; the checker reports a
planted counterexample, and every counterexample it reports really breaks the
promise when evaluated; when it says a promise holds, evaluating every band edge
finds no violation. Then examples on the reference policies.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from policy_engine import Detector, DetectorRegistry, Label, Taxonomy
from policy_engine.compiler import CompiledPolicy, compile_policy
from policy_engine.loader import load_policy, parse_policy
from policy_engine.model import VERDICT_BY_SEVERITY, Verdict
from policy_engine.names import name_key
from policy_engine.plugins import RegisteredDetector
from policy_engine.review.invariants import (
    MAX_COUNTEREXAMPLES,
    Invariant,
    InvariantChecker,
    Requirement,
)
from policy_engine.review.table import DecisionTable, TableRow, decision_table, synthetic_name

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def _properties_module() -> ModuleType:
    """tests/test_properties.py, for its strategies (the suite runs with
    --import-mode=importlib, so test modules are not importable by name)."""
    path = Path(__file__).parent.parent / "test_properties.py"
    spec = importlib.util.spec_from_file_location("_policy_properties_strategies", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


P = _properties_module()
SETTINGS = P.SETTINGS
VERDICTS = list(VERDICT_BY_SEVERITY)


class _TaxonomyDetector(Detector):
    """A detector that only has a taxonomy (or none)."""

    def __init__(self, name: str, taxonomy: Taxonomy | None) -> None:
        self.name = name  # type: ignore[misc]
        self._taxonomy = taxonomy

    def taxonomies(self) -> tuple[Taxonomy, ...]:
        return (self._taxonomy,) if self._taxonomy is not None else ()

    def taxonomy(self, model_version: str | None) -> Taxonomy | None:
        return self._taxonomy


def setup(
    data: dict[str, Any], parents: dict[str, str]
) -> tuple[CompiledPolicy, DetectorRegistry, DecisionTable]:
    """The generated policy (with both sources configured, so the table covers both),
    a registry where s1 has the generated taxonomy and s2 none, and the table."""
    policy = P.load({**data, "detectors": {"s1": {}, "s2": {}}})
    registry = DetectorRegistry(
        [
            RegisteredDetector(_TaxonomyDetector("s1", P.build_taxonomy(parents)), "p1"),
            RegisteredDetector(_TaxonomyDetector("s2", None), "p2"),
        ]
    )
    compiled = compile_policy(policy, registry)
    return compiled, registry, decision_table(compiled, registry)


def canonical(registry: DetectorRegistry, source: str) -> Any:
    taxonomy = registry.taxonomy_for(source, None)
    return taxonomy.canonical_key if taxonomy is not None else name_key


def row_of(table: DecisionTable, registry: DetectorRegistry, label: Label) -> TableRow | None:
    """The label's row, when the label is reported as the table reports it: by
    (source, name), and with the row's parent (or, for a row with none, none)."""
    key = canonical(registry, label.source)
    for row in table.rows:
        if row.source != label.source or row.ancestors[0] != key(label.name):
            continue
        if label.parent.strip():
            same = bool(row.parent) and key(label.parent) == key(row.parent)
        else:
            same = row.parent == ""
        return row if same else None
    return None


def reported(row: TableRow) -> st.SearchStrategy[Label]:
    """``row``'s label as a detector reports it, spelt in any way, at any confidence."""
    return st.builds(
        Label,
        name=P.spelt(row.label),
        confidence=P.numbers,
        source=st.just(row.source),
        parent=P.spelt(row.parent) if row.parent else st.just(""),
    )


def confidences(data: dict[str, Any], start: float) -> list[float]:
    """Every confidence where a verdict can change, from ``start`` up: band edges
    of every rule and the default, the floor, start and 100."""
    edges = {start, 100.0, float(data.get("min_confidence", 50))}
    bodies = [*data["rules"], data.get("default") if isinstance(data.get("default"), dict) else {}]
    for body in bodies:
        for key in ("review_at", "block_at"):
            if key in body:
                edges.add(float(body[key]))
    return sorted(c for c in edges if start <= c <= 100)


# -- the table predicts evaluation --------------------------------------------------


@SETTINGS
@given(P.policy_data(), P.taxonomies(), st.data())
def test_the_decision_table_predicts_evaluate_exactly(
    data: dict[str, Any], parents: dict[str, str], draw: st.DataObject
) -> None:
    compiled, registry, table = setup(data, parents)
    from_rows = st.sampled_from(table.rows).flatmap(reported) if table.rows else st.nothing()
    labels = draw.draw(st.lists(from_rows | P.label_strategy(), max_size=8))
    decision = compiled.evaluate(labels)
    outcomes = iter(decision.outcomes())
    floor = compiled.policy.min_confidence
    for label in labels:
        outcome = next(outcomes) if label.confidence >= floor else None
        row = row_of(table, registry, label)
        if row is None:
            continue
        if outcome is None:
            assert row.verdict_at(label.confidence) is None
        else:
            assert (row.verdict_at(label.confidence), row.rule) == (outcome.verdict, outcome.rule)


# -- the checker ----------------------------------------------------------------------


def violating(verdict: Verdict) -> list[Requirement]:
    """Requirements that ``verdict`` breaks."""
    found = [Requirement("never", frozenset({verdict}))]
    found += [Requirement("always", frozenset({v})) for v in VERDICTS if v is not verdict]
    found += [
        Requirement("min_verdict", frozenset({v}))
        for v in VERDICTS
        if v.severity > verdict.severity
    ]
    found += [
        Requirement("max_verdict", frozenset({v}))
        for v in VERDICTS
        if v.severity < verdict.severity
    ]
    return found


def assert_really_broken(
    compiled: CompiledPolicy, invariant: Invariant, start: float, result: Any
) -> None:
    assert not result.passed
    assert result.counterexamples
    for counterexample in result.counterexamples:
        assert counterexample.confidence >= start
        got = compiled.evaluate([counterexample.as_label()]).verdict
        assert got is counterexample.verdict, counterexample
        assert not all(r.holds(got) for r in invariant.requirements), counterexample


@SETTINGS
@given(P.policy_data(), P.taxonomies(), st.data())
def test_the_checker_reports_a_planted_counterexample(
    data: dict[str, Any], parents: dict[str, str], draw: st.DataObject
) -> None:
    compiled, registry, table = setup(data, parents)
    assume(table.rows)
    row = draw.draw(st.sampled_from(table.rows))
    band = draw.draw(st.sampled_from(row.bands))
    start = draw.draw(st.just(band.low) | st.floats(min_value=0, max_value=band.low))
    requirement = draw.draw(st.sampled_from(violating(band.verdict)))
    if draw.draw(st.booleans()):
        invariant = Invariant(
            label=row.label, source=row.source, at_least=start, requirements=(requirement,)
        )
    else:
        category = draw.draw(st.sampled_from(row.ancestors))
        invariant = Invariant(category=category, at_least=start, requirements=(requirement,))

    result = InvariantChecker(compiled, registry).check(invariant)

    assert_really_broken(compiled, invariant, start, result)
    if result.total <= MAX_COUNTEREXAMPLES:
        reported_rows = {(c.source, c.label) for c in result.counterexamples}
        assert (row.source, row.label) in reported_rows


@SETTINGS
@given(P.policy_data(), P.taxonomies(), st.data())
def test_a_promise_the_checker_accepts_holds_at_every_band_edge(
    data: dict[str, Any], parents: dict[str, str], draw: st.DataObject
) -> None:
    compiled, registry, table = setup(data, parents)
    names = [*P.NAMES, *(row.label for row in table.rows)]
    kind = draw.draw(st.sampled_from(["label", "category"]))
    wanted = draw.draw(st.sampled_from(names))
    source = draw.draw(st.sampled_from([None, *P.SOURCES]))
    start = draw.draw(st.sampled_from(P.NUMBERS))
    requirement = Requirement(
        draw.draw(st.sampled_from(["never", "always", "min_verdict", "max_verdict"])),
        frozenset({draw.draw(st.sampled_from(VERDICTS))}),
    )
    invariant = Invariant(
        **{kind: wanted}, source=source, at_least=start, requirements=(requirement,)
    )

    result = InvariantChecker(compiled, registry).check(invariant)

    if not result.passed:
        if result.counterexamples:
            assert_really_broken(compiled, invariant, start, result)
        return
    # It holds: check every label it is about at every confidence where a verdict changes.
    labels: list[Label] = []
    for row in table.rows:
        key = canonical(registry, row.source)
        if source is not None and row.source != source:
            continue
        if kind == "label" and row.ancestors[0] == key(wanted):
            labels.append(Label(row.label, 100, row.source, parent=row.parent))
        if kind == "category" and key(wanted) in row.ancestors:
            labels.append(Label(row.label, 100, row.source, parent=row.parent))
            labels.append(Label(synthetic_name(wanted), 100, row.source, parent=wanted))
    assert labels  # a promise about nothing is reported, never accepted
    for label in labels:
        for confidence in confidences(data, start):
            at = Label(label.name, confidence, label.source, parent=label.parent)
            got = compiled.evaluate([at]).verdict
            assert requirement.holds(got), (at, got)


@SETTINGS
@given(P.policy_data(), P.taxonomies(), P.labels_lists.filter(bool))
def test_label_set_invariants_bound_the_exact_decision(
    data: dict[str, Any], parents: dict[str, str], labels: list[Label]
) -> None:
    compiled, registry, _ = setup(data, parents)
    decision = compiled.evaluate(labels).verdict
    checker = InvariantChecker(compiled, registry)
    labels_t = tuple(labels)

    exact = Invariant(labels=labels_t, min_decision=decision, max_decision=decision)
    assert checker.check(exact).passed
    if decision is not Verdict.BLOCK:
        higher = VERDICT_BY_SEVERITY[decision.severity + 1]
        result = checker.check(Invariant(labels=labels_t, min_decision=higher))
        assert not result.passed
        assert f"the decision is {decision.value}" in result.message
    if decision is not Verdict.ALLOW:
        lower = VERDICT_BY_SEVERITY[decision.severity - 1]
        assert not checker.check(Invariant(labels=labels_t, max_decision=lower)).passed


# -- examples ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> DetectorRegistry:
    return DetectorRegistry.installed()


def checker_for(policy: str, registry: DetectorRegistry) -> InvariantChecker:
    compiled = compile_policy(load_policy(POLICIES / policy, registry=registry), registry)
    return InvariantChecker(compiled, registry)


def never(verdict: str) -> tuple[Requirement, ...]:
    return (Requirement("never", frozenset({Verdict(verdict)})),)


def test_a_label_nobody_knows_yet_under_a_category_is_checked(registry: DetectorRegistry) -> None:
    text = """\
version: 1
name: p
rules:
  - {id: nudity, match: {name: Explicit Nudity}, block_at: 80}
  - {id: sex, match: {parent: Explicit Sexual Activity}, block_at: 80}
  - {id: toys, match: {name: Sex Toys}, block_at: 80}
  - {id: top, match: {name: Explicit}, block_at: 80}
  - {id: nude, match: {parent: Explicit Nudity}, block_at: 80}
"""
    compiled = compile_policy(parse_policy(text), registry)
    checker = InvariantChecker(compiled, registry)
    invariant = Invariant(category="explicit", at_least=80, requirements=never("allow"))

    result = checker.check(invariant)

    assert not result.passed
    (counterexample,) = result.counterexamples
    assert counterexample.synthetic
    assert counterexample.parent == "Explicit"  # as the taxonomy spells it
    assert counterexample.rule == "default"
    assert counterexample.confidence == 80
    assert counterexample.taxonomy == "rekognition-moderation/v7"
    assert "no taxonomy knows yet" in counterexample.describe()
    assert "under Explicit" in counterexample.describe()
    assert compiled.evaluate([counterexample.as_label()]).verdict is Verdict.ALLOW


def test_a_confidence_below_the_floor_is_dropped_and_counts_as_allow(
    registry: DetectorRegistry,
) -> None:
    checker = checker_for("young-audience.yaml", registry)
    invariant = Invariant(
        category="Hate Symbols",
        at_least=20,
        requirements=(Requirement("always", frozenset({Verdict.BLOCK})),),
    )

    result = checker.check(invariant)

    assert not result.passed
    first = result.counterexamples[0]
    assert first.dropped and first.confidence == 20 and first.verdict is Verdict.ALLOW
    assert "dropped below min_confidence" in first.describe()


def test_taxonomies_all_checks_older_models_too(registry: DetectorRegistry) -> None:
    checker = checker_for("general-ugc.yaml", registry)
    invariant = Invariant(
        label="Weapon Violence",
        at_least=90,
        requirements=(Requirement("always", frozenset({Verdict.BLOCK})),),
    )

    assert checker.check(invariant).passed
    result = checker.check(invariant, all_taxonomies=True)

    assert not result.passed
    (counterexample,) = result.counterexamples
    assert counterexample.taxonomy == "rekognition-moderation/v6"
    assert (counterexample.verdict, counterexample.rule) == (Verdict.REVIEW, "default")
    assert counterexample.confidence == 90
    # per invariant, taxonomies: current overrides the file's all
    current = Invariant(
        label="Weapon Violence",
        at_least=90,
        requirements=(Requirement("always", frozenset({Verdict.BLOCK})),),
        taxonomies_all=False,
    )
    assert checker.check(current, all_taxonomies=True).passed


def test_an_invariant_about_an_unknown_name_fails_instead_of_holding_for_nothing(
    registry: DetectorRegistry,
) -> None:
    checker = checker_for("general-ugc.yaml", registry)

    result = checker.check(Invariant(category="Explicitt", requirements=never("allow")))

    assert not result.passed
    assert "'Explicitt'" in result.message and "misspelling" in result.message


def test_source_limits_the_labels_checked(registry: DetectorRegistry) -> None:
    checker = checker_for("marketplace.yaml", registry)
    always_block = (Requirement("always", frozenset({Verdict.BLOCK})),)

    scoped = Invariant(
        category="Prohibited Items",
        source="rekognition-custom-labels",
        at_least=85,
        requirements=always_block,
    )
    wrong = Invariant(
        category="Prohibited Items", source="rekognition-moderation", requirements=always_block
    )

    assert checker.check(scoped).passed
    assert "no taxonomy" in checker.check(wrong).message


def test_label_set_invariant_under_every_taxonomy(registry: DetectorRegistry) -> None:
    checker = checker_for("general-ugc.yaml", registry)
    labels = (Label("Weapon Violence", 95, "rekognition-moderation", parent="Violence"),)
    invariant = Invariant(labels=labels, min_decision=Verdict.BLOCK)

    # reported under Violence, model 7 still places Weapon Violence by the reported
    # parent: no rule names Violence as a parent, so the default reviews it
    result = checker.check(invariant, all_taxonomies=True)

    assert not result.passed
    assert "rekognition-moderation/v6" in result.message
    assert "rekognition-moderation/v7" in result.message


def test_describe_writes_the_invariant_out() -> None:
    invariant = Invariant.from_data(
        {"category": "Explicit", "at_least": 80, "never": ["allow", "review"]}
    )
    assert invariant.describe() == "category Explicit at 80+: never allow or review"
    named = Invariant.from_data({"name": "my promise", "label": "X", "always": "block"})
    assert named.describe() == "my promise"
    assert named.requirements == (Requirement("always", frozenset({Verdict.BLOCK})),)
