"""The shipped taxonomies and how a model version picks one."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from policy_engine.names import name_key
from policy_engine_rekognition import taxonomies
from policy_engine_rekognition.moderation import ModerationDetector

V6 = "rekognition-moderation/v6"
V7 = "rekognition-moderation/v7"


@pytest.mark.parametrize(
    ("model_version", "taxonomy_id"),
    [
        ("7.0", V7),
        ("7.1", V7),
        ("6.1", V6),
        ("6.0", V6),
        ("3.0", V6),
        (None, V7),
        ("", V7),
        ("8.0", V7),
        ("not-a-version", V7),
        # unusable versions are unknown: no int() of thousands of digits
        ("7" * 5000, V7),
        ("1" * 5000 + ".0", V7),
        ("0000000006.0", V7),
    ],
)
def test_model_version_picks_the_taxonomy(model_version: str | None, taxonomy_id: str) -> None:
    taxonomy = ModerationDetector().taxonomy(model_version)
    assert taxonomy is not None
    assert taxonomy.id == taxonomy_id


def test_detector_lists_both_taxonomies() -> None:
    assert [t.id for t in ModerationDetector().taxonomies()] == [V6, V7]


def test_taxonomies_load_once_and_are_shared() -> None:
    assert taxonomies.moderation_v7() is taxonomies.moderation_v7()
    assert ModerationDetector().taxonomy("7.0") is ModerationDetector().taxonomy(None)


def test_every_shipped_label_is_known_with_its_parent() -> None:
    for file_name, taxonomy in (
        ("moderation-taxonomy-v6.json", taxonomies.moderation_v6()),
        ("moderation-taxonomy-v7.json", taxonomies.moderation_v7()),
    ):
        rows = json.loads((resources.files(taxonomies) / file_name).read_text(encoding="utf-8"))[
            "labels"
        ]
        for row in rows:
            key = name_key(row["name"])
            assert taxonomy.knows(key), row
            if row["parent"] and name_key(row["parent"]) != key:
                assert taxonomy.parent_key(key) == name_key(row["parent"]), row


def test_v7_has_three_levels_of_52_labels_and_v6_two_levels() -> None:
    v7 = taxonomies.moderation_v7()
    assert len(set(v7.keys())) == 52
    assert taxonomies.moderation_v7().parent_key(name_key("Exposed Male Nipple")) == name_key(
        "Non-Explicit Nudity"
    )
    assert v7.parent_key(name_key("Non-Explicit Nudity")) == name_key(
        "Non-Explicit Nudity of Intimate parts and Kissing"
    )
    assert taxonomies.moderation_v6().parent_key(name_key("Weapon Violence")) == "violence"


def test_v6_gambling_under_gambling_makes_no_loop() -> None:
    v6 = taxonomies.moderation_v6()
    assert v6.knows("gambling")
    assert v6.parent_key("gambling") == ""


def test_both_spellings_of_the_drugs_and_tobacco_level_2_label_resolve_alike() -> None:
    v7 = taxonomies.moderation_v7()
    alias = v7.canonical_key("Drug & Tobacco Paraphernalia & Use")
    canonical = v7.canonical_key("Drugs & Tobacco Paraphernalia & Use")
    assert alias == canonical
    assert v7.parent_key(alias) == name_key("Drugs & Tobacco")


def test_names_compare_case_and_space_insensitively() -> None:
    v6 = taxonomies.moderation_v6()
    assert v6.parent_key(v6.canonical_key("  weapon   VIOLENCE ")) == "violence"


def test_unknown_label_is_not_an_error() -> None:
    assert taxonomies.moderation_v7().parent_key(name_key("A Label AWS Adds Next Year")) is None


def test_v6_to_v7_mapping_is_shipped() -> None:
    mapping = taxonomies.v6_to_v7_names()
    assert mapping["level1"]["Drugs"] == ("Drugs & Tobacco",)
    assert mapping["level2"]["Adult Toys"] == ("Sex Toys",)
    v7 = taxonomies.moderation_v7()
    for new_names in mapping["level1"].values():
        for new_name in new_names:
            assert v7.knows(v7.canonical_key(new_name)), new_name
