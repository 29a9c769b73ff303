"""``policy_engine.review.migrate``: model 6 names to model 7, editing the text in place."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import yaml

from policy_engine import DetectorRegistry
from policy_engine.loader import check_policy_text
from policy_engine.review.migrate import (
    Migration,
    load_mapping,
    mapping_from_data,
    migrate_text,
    quoted_like,
)
from policy_engine_rekognition.taxonomies import moderation_v6, moderation_v7

MAPPING_FILE = resources.files("policy_engine_rekognition.taxonomies") / "v6-to-v7.json"
SOURCES = frozenset({"rekognition-moderation"})

V6_POLICY = """\
# A model 6 policy: comments and layout must survive.
version: 1
name: old-six
labels:
  - {name: Knife, parent: Weapons, source: rekognition-custom-labels}
  - {name: Nude Art, parent: 'Explicit Nudity'}   # quoted
rules:
  - id: explicit   # the whole category
    match: {parent: Explicit Nudity}
    block_at: 80
  - id: suggestive
    match:
      parent: "Suggestive"
    review_at: 70
  - id: illustrated
    match: {name: Illustrated Explicit Nudity}
    action: review
  - id: drugs
    match: {parent: Drugs}
    review_at: 60
  - id: tobacco
    match: {parent: Tobacco}
    review_at: 60
  - id: violence
    match: {parent: Violence}
    block_at: 90
  - id: weapon-violence
    match: {name: Weapon Violence, parent: Violence}
    block_at: 70
  - id: blasts
    match: {name: 'Explosions And Blasts'}
    review_at: 50
  - id: hanging
    match: {name: Hanging}
    action: block
  - id: toys
    match: {name: Adult Toys}   # comment kept
    action: block
  - id: custom-drugs
    match: {name: Drugs, source: rekognition-custom-labels}
    action: block
"""


@pytest.fixture(scope="module")
def mapping() -> dict[str, tuple[str, ...]]:
    with resources.as_file(MAPPING_FILE) as path:
        return load_mapping(path)


def migrate(text: str, mapping: dict[str, tuple[str, ...]]) -> Migration:
    return migrate_text(
        text, mapping, moderation_v6(), moderation_v7(), sources=SOURCES, file="p.yaml"
    )


def findings(result: Migration) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for finding in result.findings:
        found.setdefault(finding.code, []).append(finding.message)
    return found


def test_load_mapping_merges_levels(mapping: dict[str, tuple[str, ...]], tmp_path: Path) -> None:
    assert mapping["Explicit Nudity"] == ("Explicit",)
    assert mapping["Suggestive"] == (
        "Non-Explicit Nudity of Intimate parts and Kissing",
        "Swimwear or Underwear",
    )
    assert mapping["Adult Toys"] == ("Sex Toys",)
    assert "note" not in mapping
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"A": ["B"]}))
    assert load_mapping(flat) == {"A": ("B",)}
    with pytest.raises(ValueError):
        mapping_from_data({"level1": {"A": "B"}})


def test_exact_names_are_rewritten_in_place(mapping: dict[str, tuple[str, ...]]) -> None:
    result = migrate(V6_POLICY, mapping)
    expected = (
        V6_POLICY.replace("{parent: Explicit Nudity}", "{parent: Explicit}")
        .replace("parent: 'Explicit Nudity'}", "parent: 'Explicit'}")
        .replace("{parent: Drugs}", "{parent: Drugs & Tobacco}")
        .replace("'Explosions And Blasts'", "'Explosions and Blasts'")
        .replace("{name: Adult Toys}", "{name: Sex Toys}")
    )
    assert result.text == expected  # comments, layout and quoting untouched
    assert result.renamed == 5


def test_what_does_not_carry_over_is_reported_and_left(mapping: dict[str, tuple[str, ...]]) -> None:
    result = migrate(V6_POLICY, mapping)
    found = findings(result)
    (suggestive, illustrated) = found["migrate-ambiguous"]
    assert "rule 'suggestive'" in suggestive
    assert (
        "'Non-Explicit Nudity of Intimate parts and Kissing', 'Swimwear or Underwear'" in suggestive
    )
    assert "'Explicit Nudity', 'Explicit Sexual Activity'" in illustrated
    assert 'parent: "Suggestive"' in result.text  # left as is
    assert "{name: Illustrated Explicit Nudity}" in result.text
    assert any("rule 'hanging'" in m for m in found["migrate-unmapped"])
    assert any("rule 'tobacco'" in m and "rule 'drugs'" in m for m in found["migrate-collision"])
    assert "{parent: Tobacco}" in result.text
    changed = found["migrate-category-changed"]
    assert any("rule 'violence'" in m and "Explosions and Blasts" in m for m in changed)
    assert any("rule 'drugs'" in m for m in changed)
    assert not any("rule 'explicit'" in m for m in changed)  # Explicit Nudity -> Explicit is exact
    assert any("'Graphic Violence'" in m for m in found["migrate-parent-changed"])
    # a name scoped to another detector is its own label: left, and said
    assert "{name: Drugs, source: rekognition-custom-labels}" in result.text
    assert any("rule 'custom-drugs'" in m for m in found["migrate-other-source"])
    # Weapons is Weapons in model 7: nothing to say about the custom label under it
    assert not any("labels[0]" in m for m in found["migrate-other-source"])
    lines = {f.line for f in result.findings}
    assert 13 in lines  # the line of "Suggestive", 1-based


def test_the_output_loads(mapping: dict[str, tuple[str, ...]]) -> None:
    result = migrate(V6_POLICY, mapping)
    loaded = check_policy_text(result.text, "p.yaml", registry=DetectorRegistry.installed())
    assert loaded.policy is not None, loaded.errors
    assert loaded.policy.rules[0].match.parent == "Explicit"


def test_a_model_7_policy_is_left_alone(mapping: dict[str, tuple[str, ...]]) -> None:
    text = (Path(__file__).parents[2] / "policies" / "marketplace.yaml").read_text()
    result = migrate(text, mapping)
    assert result.renamed == 0
    assert result.text == text


@pytest.mark.parametrize(
    ("original", "style", "value", "expected"),
    [
        ("Drugs", None, "Drugs & Tobacco", "Drugs & Tobacco"),
        ("X", None, "a: b", '"a: b"'),  # not safe plain: double quotes
        ("X", None, "a, b", '"a, b"'),  # a comma ends a flow scalar
        ("'X'", "'", "it's", "'it''s'"),
        ('"X"', '"', "Sex Toys", '"Sex Toys"'),
        ("|\n  X\n", "|", "Y", '"Y"\n'),
    ],
)
def test_quoting(original: str, style: str | None, value: str, expected: str) -> None:
    replaced = quoted_like(original, style, value)
    assert replaced == expected
    assert yaml.safe_load("{k: " + replaced.strip() + "}") == {"k": value}
