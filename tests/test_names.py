"""Names compare case-insensitively after trimming and collapsing white space (POLICY_SPEC 1)."""

from __future__ import annotations

import pytest

from policy_engine.names import name_key, nearest_name, tidy_name


@pytest.mark.parametrize(
    "spelling",
    [
        "Weapon Violence",
        "weapon violence",
        "WEAPON VIOLENCE",
        "  Weapon Violence  ",
        "weapon  violence",
        "Weapon\tViolence",
        "\nweapon \t  VIOLENCE\n",
    ],
)
def test_spellings_differing_in_case_and_spaces_compare_equal(spelling: str) -> None:
    assert name_key(spelling) == name_key("Weapon Violence")


@pytest.mark.parametrize(
    "other",
    ["Weapon", "WeaponViolence", "Weapon Violenc", "Weapon-Violence", "Violence Weapon"],
)
def test_different_names_compare_unequal(other: str) -> None:
    assert name_key(other) != name_key("Weapon Violence")


def test_inner_white_space_is_not_removed_only_collapsed() -> None:
    assert name_key("a b") != name_key("ab")


def test_tidy_name_keeps_case_but_collapses_spaces() -> None:
    assert tidy_name("  Weapon   Violence ") == "Weapon Violence"


def test_case_folding_is_unicode_aware() -> None:
    assert name_key("STRASSE") == name_key("straße")


def test_nearest_name_compares_name_keys_and_never_offers_the_name_itself() -> None:
    spellings = ["Graphic Violence", "Violence", "Weapons"]
    assert nearest_name("graphic  violence or gore", spellings, cutoff=0.8) == "Graphic Violence"
    # its own spelling, in another case, is no suggestion: the next nearest is
    assert nearest_name("VIOLENCE", spellings, cutoff=0.6) == "Graphic Violence"
    assert nearest_name("Tobacco", spellings, cutoff=0.8) is None
