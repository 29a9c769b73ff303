"""``policy_engine.review.diff``: the exact difference of two policies, and on a corpus.

The properties reuse the random policies and taxonomies of tests/test_properties.py.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from policy_engine import Detector, DetectorRegistry, Label, Taxonomy, TaxonomyEntry, parse_policy
from policy_engine.compiler import CompiledPolicy, compile_policy
from policy_engine.decision import DetectorFailure
from policy_engine.model import Verdict
from policy_engine.plugins import RegisteredDetector
from policy_engine.review.diff import (
    ChangedRange,
    CorpusItem,
    changed_ranges,
    corpus_diff,
    diff_policies,
)
from policy_engine.review.table import Band, TableRow, decision_table


def _load_properties() -> ModuleType:
    """tests/test_properties.py, for its strategies (the suite uses importlib mode)."""
    name = "_policy_engine_test_properties"
    if name not in sys.modules:
        path = Path(__file__).parent.parent / "test_properties.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


props = _load_properties()
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class FixedTaxonomy(Detector):
    """A detector that only has a taxonomy (or none)."""

    name: ClassVar[str] = ""

    def __init__(self, name: str, taxonomy: Taxonomy | None) -> None:
        self.name = name  # type: ignore[misc]
        self._taxonomy = taxonomy

    def taxonomies(self) -> tuple[Taxonomy, ...]:
        return () if self._taxonomy is None else (self._taxonomy,)

    def taxonomy(self, model_version: str | None) -> Taxonomy | None:
        return self._taxonomy


def registry_with(taxonomy: Taxonomy | None, other: Taxonomy | None = None) -> DetectorRegistry:
    return DetectorRegistry(
        [
            RegisteredDetector(FixedTaxonomy("s1", taxonomy), "p1"),
            RegisteredDetector(FixedTaxonomy("s2", other), "p2"),
        ]
    )


TOY = Taxonomy(
    "toy/v1",
    (
        TaxonomyEntry("Violence"),
        TaxonomyEntry("Weapon Violence", "Violence"),
        TaxonomyEntry("Weapons", "Violence"),
    ),
)
TOY_REGISTRY = registry_with(TOY)

BASE = """\
version: 1
name: toy
min_confidence: 50
default: {review_at: 80}
detectors: {s1: {}}
rules:
  - id: violence
    match: {parent: Violence}
    review_at: 60
    block_at: 90
  - id: weapons
    match: {name: Weapons}
    action: allow
"""


def compiled(text: str, registry: DetectorRegistry = TOY_REGISTRY) -> CompiledPolicy:
    return compile_policy(parse_policy(text, registry=registry), registry)


def described(text_old: str, text_new: str) -> dict[str, str]:
    report = diff_policies(compiled(text_old), compiled(text_new), TOY_REGISTRY)
    return {row.label: row.describe() for row in report.changed}


# -- ranges -------------------------------------------------------------------------------


def test_changed_ranges_merges_both_cut_lists() -> None:
    old = (
        Band(50, 60, Verdict.ALLOW),
        Band(60, 90, Verdict.REVIEW),
        Band(90, 100, Verdict.BLOCK, True),
    )
    new = (
        Band(50, 60, Verdict.ALLOW),
        Band(60, 80, Verdict.REVIEW),
        Band(80, 100, Verdict.BLOCK, True),
    )
    assert changed_ranges(old, new) == (ChangedRange(80, 90, False, Verdict.REVIEW, Verdict.BLOCK),)
    assert changed_ranges(old, old) == ()
    # a changed floor: below the higher floor the label is dropped
    higher = (Band(70, 90, Verdict.REVIEW), Band(90, 100, Verdict.BLOCK, True))
    assert [r.describe() for r in changed_ranges(old, higher)] == [
        "[50, 60) allow -> dropped",
        "[60, 70) review -> dropped",
    ]
    # the single point 100
    point = (Band(50, 100, Verdict.ALLOW), Band(100, 100, Verdict.BLOCK, True))
    assert [r.describe() for r in changed_ranges(old, point)] == [
        "[60, 90) review -> allow",
        "[90, 100) block -> allow",
    ]


# -- the table diff -------------------------------------------------------------------------


def test_a_policy_diffed_with_itself_is_empty() -> None:
    report = diff_policies(compiled(BASE), compiled("# reformatted\n" + BASE), TOY_REGISTRY)
    assert report.rows == () and report.default is None
    assert not report.decisions_change


def test_a_changed_threshold_shows_exactly_the_changed_band() -> None:
    changed = described(BASE, BASE.replace("block_at: 90", "block_at: 80"))
    assert changed == {
        "Violence": "Violence: [80, 90) review -> block (rule violence)",
        "Weapon Violence": "Weapon Violence: [80, 90) review -> block (rule violence)",
        # a label the service adds under Violence later changes the same way
        "<any label under Violence>": (
            "<any label under Violence>: [80, 90) review -> block (rule violence)"
        ),
    }


def test_a_renamed_rule_changes_no_decision() -> None:
    report = diff_policies(
        compiled(BASE), compiled(BASE.replace("id: weapons", "id: arms")), TOY_REGISTRY
    )
    assert not report.decisions_change and report.changed == ()
    assert [(r.label, r.rule_text()) for r in report.rule_only] == [
        ("Weapons", "rule weapons -> arms")
    ]


def test_a_changed_default_and_on_error() -> None:
    new = BASE.replace("default: {review_at: 80}", "default: block\non_error: block")
    report = diff_policies(compiled(BASE), compiled(new), TOY_REGISTRY)
    assert report.changed == ()
    assert report.default is not None
    assert [r.describe() for r in report.default.ranges] == [
        "[50, 80) allow -> block",
        "[80, 100] review -> block",
    ]
    assert report.on_error_changed and report.decisions_change


def test_labels_added_by_the_new_policy() -> None:
    # Knife is placed under Weapons, so {parent: Violence} now decides it
    new = BASE + "labels:\n  - {name: Knife, parent: Weapons}\n"
    report = diff_policies(compiled(BASE), compiled(new), TOY_REGISTRY)
    # Weapons is now a category too: a label reported under it joins Violence
    assert [(r.label, r.listed, r.old_rule, r.new_rule) for r in report.rows] == [
        ("<any label under Weapons>", "new", "default", "violence"),
        ("Knife", "new", "default", "violence"),
    ]
    for row in report.rows:
        assert [r.describe() for r in row.ranges] == [
            "[60, 80) allow -> review",
            "[90, 100] review -> block",
        ]


# -- a corpus -------------------------------------------------------------------------------


def test_corpus_matrix() -> None:
    old = compiled(BASE)
    new = compiled(BASE.replace("block_at: 90", "block_at: 80").replace("on_error: review", ""))

    def item(name: str, *labels: tuple[str, float], failed: bool = False) -> CorpusItem:
        found = tuple(
            Label(n, c, "s1", parent="Violence" if n != "Violence" else "") for n, c in labels
        )
        failures = (DetectorFailure("s1", "down"),) if failed else ()
        return CorpusItem(name, found, failures)

    items = [
        item("a", ("Weapon Violence", 85)),  # review -> block
        item("b", ("Weapon Violence", 95)),  # block -> block
        item("c", ("Weapons", 99)),  # allow -> allow
        item("d", ("Weapon Violence", 70)),  # review -> review
        item("e", ("Violence", 81), ("Weapons", 99)),  # review -> block
        item("f", failed=True),  # on_error review both
    ]
    result = corpus_diff(old, new, items)
    assert result.total == 6 and result.changed == 2
    assert result.matrix == ((1, 0, 0), (0, 2, 2), (0, 0, 1))
    assert [c.item for c in result.changes] == ["a", "e"]
    assert [(o.value, n.value, k) for o, n, k in result.transitions()] == [("review", "block", 2)]
    data = result.to_dict()
    assert data["matrix"]["review"]["block"] == 2
    assert data["changes"][0]["old"]["reasons"][0]["rule"] == "violence"


# -- properties -----------------------------------------------------------------------------


def _registry(tax: dict[str, str]) -> tuple[DetectorRegistry, Taxonomy]:
    taxonomy = props.build_taxonomy(tax)
    return registry_with(taxonomy), taxonomy


def _label(row: TableRow, confidence: float, taxonomy: Taxonomy) -> Label:
    """The label as a detector reports it: with its taxonomy parent (a row that
    stands for labels nobody knows yet: under its category)."""
    parent = ""
    if row.synthetic:
        parent = row.parent
    elif row.source == "s1":
        parent_key = taxonomy.parent_key(taxonomy.canonical_key(row.label))
        parent = (taxonomy.display_name(parent_key) or "") if parent_key else ""
    return Label(row.label, confidence, row.source, parent=parent)


def _verdict(compiled_policy: CompiledPolicy, label: Label) -> Verdict | None:
    outcomes = compiled_policy.evaluate([label]).outcomes()
    return outcomes[0].verdict if outcomes else None


def _load(data: dict[str, Any], registry: DetectorRegistry) -> CompiledPolicy:
    policy = props.load(data)
    return compile_policy(policy, registry)


@SETTINGS
@given(props.policy_data(), props.taxonomies())
def test_diff_of_a_policy_with_itself_is_empty(data: dict[str, Any], tax: dict[str, str]) -> None:
    registry, _ = _registry(tax)
    first = _load(data, registry)
    second = compile_policy(parse_policy(yaml.safe_dump(data)), registry)
    report = diff_policies(first, second, registry)
    assert report.rows == () and report.default is None and not report.decisions_change


@SETTINGS
@given(props.policy_data(), props.taxonomies(), st.data())
def test_the_table_predicts_evaluate(
    data: dict[str, Any], tax: dict[str, str], draw: st.DataObject
) -> None:
    registry, taxonomy = _registry(tax)
    policy = _load(data, registry)
    table = decision_table(policy, registry)
    assume(table.rows)
    for _ in range(5):
        row = draw.draw(st.sampled_from(table.rows))
        confidence = draw.draw(props.numbers)
        assert row.verdict_at(confidence) == _verdict(policy, _label(row, confidence, taxonomy))


@SETTINGS
@given(props.policy_data(), props.taxonomies(), st.data())
def test_a_changed_threshold_diffs_exactly(
    data: dict[str, Any], tax: dict[str, str], draw: st.DataObject
) -> None:
    registry, taxonomy = _registry(tax)
    old = _load(data, registry)
    table = decision_table(old, registry)
    rules = {rule["id"]: rule for rule in data["rules"]}
    deciding = sorted(
        {row.rule for row in table.rows if row.rule in rules and "action" not in rules[row.rule]}
    )
    assume(deciding)
    rule_id = draw.draw(st.sampled_from(deciding))
    rule = rules[rule_id]
    key = draw.draw(st.sampled_from(sorted(k for k in ("review_at", "block_at") if k in rule)))
    low = rule.get("review_at", -1) if key == "block_at" else -1
    high = rule.get("block_at", 101) if key == "review_at" else 101
    floor = old.policy.min_confidence
    value = draw.draw(
        st.floats(
            min_value=max(low, 0),
            max_value=min(high, 100),
            exclude_min=low >= 0,
            exclude_max=high <= 100,
        )
    )
    assume(value != rule[key] and low < value < high and max(value, rule[key]) > floor)
    new_data = {**data, "rules": [{**r, key: value} if r is rule else r for r in data["rules"]]}
    new = _load(new_data, registry)
    report = diff_policies(old, new, registry)
    assert report.changed, "a threshold above the floor of a deciding rule changes a band"
    for change in report.changed:
        row = next(r for r in table.rows if r.label == change.label and r.source == change.source)
        for changed_range in change.ranges:
            c = (changed_range.low + changed_range.high) / 2
            if not changed_range.contains(c):  # rounded up to an open end: take the low end
                c = changed_range.low
            assert changed_range.contains(c)
            label = _label(row, c, taxonomy)
            assert _verdict(old, label) is changed_range.old
            assert _verdict(new, label) is changed_range.new
