from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from policy_engine_hash_match.settings import SETTINGS_SCHEMA, HashMatchSettings, confidence

VALID: list[dict[str, Any]] = [
    {"banks": ["removed.txt"]},
    {"banks": ["removed.txt", {"path": "shared/", "name": "Shared"}], "max_distance": 0},
    {"banks": ["b"], "max_distance": 63, "quality_floor": 0},
]
INVALID: list[dict[str, Any]] = [
    {},
    {"banks": []},
    {"banks": [""]},
    {"banks": [{"name": "no path"}]},
    {"banks": [{"path": "b", "name": " "}]},
    {"banks": ["b"], "max_distance": 64},
    {"banks": ["b"], "max_distance": 3.5},
    {"banks": ["b"], "quality_floor": 101},
    {"banks": ["b"], "bank": "typo"},
]


@pytest.mark.parametrize("settings", VALID)
def test_valid_settings(settings: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(SETTINGS_SCHEMA).validate(settings)


@pytest.mark.parametrize("settings", INVALID)
def test_invalid_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SETTINGS_SCHEMA).validate(settings)


def test_paths_resolve_against_the_policy_folder(tmp_path: Path) -> None:
    parsed = HashMatchSettings.from_mapping(
        {"banks": ["banks/removed.txt", {"path": "/abs/shared", "name": "Shared"}]},
        base_dir=str(tmp_path),
    )
    assert [(b.path, b.name, b.written) for b in parsed.banks] == [
        (tmp_path / "banks" / "removed.txt", None, "banks/removed.txt"),
        (Path("/abs/shared"), "Shared", "/abs/shared"),
    ]
    assert (parsed.max_distance, parsed.quality_floor) == (31, 50)


def test_the_search_radius_is_what_the_policys_floor_can_see() -> None:
    parsed = HashMatchSettings.from_mapping({"banks": ["b"]}, base_dir=".")
    assert [parsed.radius(floor) for floor in (0, 50, 69, 69.5, 80, 100)] == [31, 31, 31, 30, 20, 0]
    assert [confidence(d) for d in (0, 31, 63)] == [100.0, 69.0, 37.0]


def test_a_rule_naming_a_bank_needs_it_under_labels(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    policy = tmp_path / "p.yaml"
    text = (
        "version: 1\nname: p\ndetectors:\n  hash-match:\n    banks: [removed.txt]\n"
        "rules:\n  - id: removed\n    match: {name: removed}\n    block_at: 69\n"
    )
    policy.write_text(text, encoding="utf-8")
    run = cli("validate", policy)
    assert run.code == 2 and "error[unknown-name]" in run.out
    policy.write_text(
        text + "labels:\n  - {name: removed, parent: Known Image, source: hash-match}\n",
        encoding="utf-8",
    )
    assert cli("validate", policy).code == 0
