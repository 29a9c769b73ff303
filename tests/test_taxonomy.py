"""Taxonomies: parents, aliases, self-parent entries (POLICY_SPEC 1)."""

from __future__ import annotations

from pathlib import Path

from policy_engine import Taxonomy, TaxonomyEntry
from policy_engine.names import name_key

SHARED = Path("/work/shared/rekognition")


def make(*pairs: tuple[str, str], aliases: dict[str, str] | None = None) -> Taxonomy:
    return Taxonomy("t", tuple(TaxonomyEntry(n, p) for n, p in pairs), aliases or {})


def test_parent_key_of_a_known_label() -> None:
    taxonomy = make(("Violence", ""), ("Weapon Violence", "Violence"))
    assert taxonomy.parent_key(name_key("Weapon Violence")) == "violence"


def test_top_level_label_has_empty_parent() -> None:
    taxonomy = make(("Violence", ""))
    assert taxonomy.parent_key("violence") == ""
    assert taxonomy.knows("violence")


def test_unknown_label_has_no_parent() -> None:
    taxonomy = make(("Violence", ""))
    assert taxonomy.parent_key("weapons") is None
    assert not taxonomy.knows("weapons")


def test_lookups_ignore_case_and_spacing_of_entries() -> None:
    taxonomy = make(("  violence ", ""), ("WEAPON   violence", "Violence "))
    assert taxonomy.parent_key(name_key("Weapon Violence")) == "violence"


def test_display_name_keeps_the_taxonomy_spelling() -> None:
    taxonomy = make(("Weapon Violence", ""))
    assert taxonomy.display_name(name_key("weapon violence")) == "Weapon Violence"


def test_self_parent_entry_does_not_make_a_label_its_own_parent() -> None:
    taxonomy = make(("Gambling", ""), ("Gambling", "Gambling"))
    assert taxonomy.parent_key("gambling") == ""


def test_self_parent_entry_listed_first_keeps_the_later_real_parent() -> None:
    taxonomy = make(("Gambling", "Gambling"), ("Gambling", "Vice"), ("Vice", ""))
    assert taxonomy.parent_key("gambling") == "vice"


def test_first_non_self_parent_wins() -> None:
    taxonomy = make(("A", "B"), ("A", "C"))
    assert taxonomy.parent_key("a") == "b"


def test_alias_resolves_to_canonical_key() -> None:
    taxonomy = make(("Weapons", ""), aliases={"Weapon": "Weapons"})
    assert taxonomy.canonical_key(" WEAPON ") == "weapons"
    assert taxonomy.canonical_key("Weapons") == "weapons"
    assert taxonomy.canonical_key("Other") == "other"


def test_parent_written_as_alias_resolves_to_canonical_parent() -> None:
    taxonomy = make(("Violence", ""), ("Weapons", "Violent"), aliases={"Violent": "Violence"})
    assert taxonomy.parent_key("weapons") == "violence"


def test_taxonomy_is_immutable_against_caller_changes() -> None:
    aliases = {"Weapon": "Weapons"}
    taxonomy = make(("Weapons", ""), aliases=aliases)
    aliases["Weapon"] = "Other"
    assert taxonomy.canonical_key("Weapon") == "weapons"


def test_from_mapping_reads_labels_and_aliases() -> None:
    taxonomy = Taxonomy.from_mapping(
        "x",
        {
            "labels": [{"name": "A", "parent": ""}, {"name": "B", "parent": "A", "level": 2}],
            "aliases": {"Bee": "B"},
        },
    )
    assert taxonomy.parent_key(taxonomy.canonical_key("bee")) == "a"


def test_model_6_gambling_under_gambling_is_top_level() -> None:
    taxonomy = Taxonomy.from_json_file(
        "rekognition-moderation/v6", SHARED / "moderation-taxonomy-v6.json"
    )
    assert taxonomy.parent_key("gambling") == ""
