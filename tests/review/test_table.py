"""The decision table and its renderings (``policy-engine table``), on a small policy
whose bands are worked out by hand."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from policy_engine import Detector, DetectorRegistry, Taxonomy, TaxonomyEntry, parse_policy
from policy_engine.cli.table_cmd import table_markdown, table_text
from policy_engine.compiler import compile_policy
from policy_engine.model import Verdict
from policy_engine.plugins import RegisteredDetector
from policy_engine.review.table import Band, DecisionTable, bands_for, decision_table

V1 = Taxonomy(
    "toy/v1",
    (
        TaxonomyEntry("Violence"),
        TaxonomyEntry("Weapon Violence", "Violence"),
        TaxonomyEntry("Weapons", "Violence"),
        TaxonomyEntry("Old Only"),
    ),
)
V2 = Taxonomy(
    "toy/v2",
    (
        TaxonomyEntry("Violence"),
        TaxonomyEntry("Weapon Violence", "Violence"),
        TaxonomyEntry("Weapons", "Violence"),
    ),
)


class ToyDetector(Detector):
    name: ClassVar[str] = "toy"

    def taxonomies(self) -> tuple[Taxonomy, ...]:
        return (V1, V2)

    def taxonomy(self, model_version: str | None) -> Taxonomy | None:
        return V1 if model_version == "1" else V2


def toy_registry() -> DetectorRegistry:
    return DetectorRegistry([RegisteredDetector(ToyDetector(), "toy-plugin")])


POLICY = """\
version: 1
name: toy
min_confidence: 50
default: {review_at: 80}
rules:
  - id: violence
    match: {parent: Violence}
    review_at: 60
    block_at: 90
  - id: weapons
    match: {name: Weapons}
    action: allow
"""


def table_of(text: str = POLICY, **kwargs: Any) -> DecisionTable:
    registry = toy_registry()
    return decision_table(compile_policy(parse_policy(text), registry), registry, **kwargs)


def bands(data: Mapping[str, Any]) -> list[str]:
    return [f"{b['from']}-{b['to']}{']' if b['to_included'] else ')'} {b['verdict']}" for b in data]


def test_bands_by_hand() -> None:
    table = table_of()
    by_name = {row.label: row for row in table.rows}
    assert set(by_name) == {"Violence", "Weapon Violence", "Weapons", "<any label under Violence>"}
    # a label the service adds under Violence later: decided by the category rule
    assert by_name["<any label under Violence>"].synthetic
    assert by_name["<any label under Violence>"].rule == "violence"
    assert by_name["Weapon Violence"].describe() == (
        "Weapon Violence: [50, 60) allow, [60, 90) review, [90, 100] block - rule violence"
    )
    assert by_name["Violence"].rule == "violence"
    assert by_name["Weapons"].describe() == "Weapons: [50, 100] allow - rule weapons"
    assert [b.describe() for b in table.default_bands] == ["[50, 80)", "[80, 100]"]
    row = by_name["Weapon Violence"]
    assert row.verdict_at(49.99) is None  # dropped
    assert row.verdict_at(59.99) is Verdict.ALLOW
    assert row.verdict_at(60) is Verdict.REVIEW
    assert row.verdict_at(90) is Verdict.BLOCK
    assert row.verdict_at(100) is Verdict.BLOCK


def test_text_groups_by_detector_and_taxonomy_and_says_what_is_dropped() -> None:
    text = table_text(table_of())
    lines = text.splitlines()
    assert "Labels below min_confidence 50 are dropped" in text
    assert "toy, taxonomy toy/v2:" in lines
    # hierarchy order: the category, then its children indented
    start = lines.index("toy, taxonomy toy/v2:")
    assert lines[start + 1] == (
        "  Violence: [50, 60) allow, [60, 90) review, [90, 100] block - rule violence"
    )
    assert lines[start + 2].startswith("    Weapon Violence: [50, 60) allow")
    assert lines[start + 3] == "    Weapons: [50, 100] allow - rule weapons"
    assert lines[start + 4].startswith("    <any label under Violence>: [50, 60) allow")
    assert lines[-1] == "default (any other label): [50, 80) allow, [80, 100] review - rule default"
    assert "toy/v1" not in text  # only the current taxonomy


def test_markdown_is_a_table_per_group() -> None:
    text = table_markdown(table_of())
    assert "| Label | Parent | allow | review | block | Rule |" in text
    assert "| Weapon Violence | Violence | [50, 60) | [60, 90) | [90, 100] | `violence` |" in text
    assert "| Weapons | Violence | [50, 100] |  |  | `weapons` |" in text
    assert "| *any other label* |  | [50, 80) | [80, 100] |  | `default` |" in text
    assert "dropped" in text


def test_json_is_to_dict() -> None:
    data = json.loads(json.dumps(table_of().to_dict()))
    assert data["min_confidence"] == 50
    row = next(r for r in data["rows"] if r["label"] == "Weapon Violence")
    assert row["rule"] == "violence" and row["taxonomy"] == "toy/v2"
    assert bands(row["bands"]) == ["50-60) allow", "60-90) review", "90-100] block"]
    assert bands(data["default"]["bands"]) == ["50-80) allow", "80-100] review"]


def test_all_taxonomies_lists_older_models_too() -> None:
    table = table_of(all_taxonomies=True)
    assert {row.taxonomy for row in table.rows} == {"toy/v1", "toy/v2"}
    old_only = [row for row in table.rows if row.label == "Old Only"]
    assert [(r.taxonomy, r.rule) for r in old_only] == [("toy/v1", "default")]
    assert "toy, taxonomy toy/v1:" in table_text(table)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"action": "block"}, ["[50, 100] block"]),
        ({"review_at": 30}, ["[50, 100] review"]),  # below the floor: starts at the floor
        ({"block_at": 100}, ["[50, 100) allow", "[100, 100] block"]),
        (
            {"review_at": 70.5, "block_at": 99},
            ["[50, 70.5) allow", "[70.5, 99) review", "[99, 100] block"],
        ),
    ],
)
def test_bands_for_edges(body: dict[str, Any], expected: list[str]) -> None:
    policy = parse_policy(
        "version: 1\nname: p\nrules:\n  - id: r\n    match: {name: X}\n"
        + "".join(f"    {k}: {v}\n" for k, v in body.items())
    )
    found: tuple[Band, ...] = bands_for(policy.rules[0].body, 50)
    assert [f"{b.describe()} {b.verdict.value}" for b in found] == expected
