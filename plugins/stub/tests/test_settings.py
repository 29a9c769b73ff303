from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from policy_engine_stub import SETTINGS_SCHEMA, StubSettings

VALIDATOR = Draft202012Validator(SETTINGS_SCHEMA)
LABEL = {"name": "Violence", "confidence": 97.3}


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    # The metaschema wants a dict; the class attribute is a read-only view of one.
    Draft202012Validator.check_schema(dict(SETTINGS_SCHEMA))
    assert SETTINGS_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def _properties(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Any]]:
    for name, subschema in schema.get("properties", {}).items():
        yield f"{path}{name}", subschema
        yield from _properties(subschema, f"{path}{name}.")
        if "items" in subschema:
            yield from _properties(subschema["items"], f"{path}{name}[].")


def test_every_property_is_described_and_objects_are_closed() -> None:
    properties = dict(_properties(SETTINGS_SCHEMA))

    assert set(properties) == {
        "recordings",
        "labels",
        "labels[].name",
        "labels[].parent",
        "labels[].confidence",
        "missing",
    }
    for path, subschema in properties.items():
        assert subschema.get("description", "").strip(), f"{path} has no description"
    assert SETTINGS_SCHEMA["additionalProperties"] is False
    assert SETTINGS_SCHEMA["properties"]["labels"]["items"]["additionalProperties"] is False


@pytest.mark.parametrize(
    "settings",
    [
        {"recordings": "recordings"},
        {"recordings": "/abs/path", "missing": "error"},
        {"recordings": "r", "missing": "no-labels"},
        {"labels": [LABEL]},
        {"labels": [{"name": "Knife", "parent": "Weapons", "confidence": 0}]},
        {"labels": [{"name": "Knife", "parent": "", "confidence": 100}]},
        {"recordings": "r", "labels": [LABEL], "missing": "no-labels"},
    ],
)
def test_accepts(settings: dict[str, Any]) -> None:
    assert list(VALIDATOR.iter_errors(settings)) == []


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({}, id="neither recordings nor labels"),
        pytest.param({"missing": "no-labels"}, id="missing without recordings"),
        pytest.param({"labels": [LABEL], "missing": "error"}, id="missing with labels only"),
        pytest.param({"labels": []}, id="no labels at all"),
        pytest.param({"recordings": ""}, id="empty folder name"),
        pytest.param({"recordings": 3}, id="folder not a string"),
        pytest.param({"recordings": "r", "missing": "ignore"}, id="unknown missing"),
        pytest.param({"recordings": "r", "record": True}, id="unknown key"),
        pytest.param({"labels": [{"name": "X"}]}, id="label without confidence"),
        pytest.param({"labels": [{"confidence": 5}]}, id="label without name"),
        pytest.param({"labels": [{"name": "  ", "confidence": 5}]}, id="blank name"),
        pytest.param({"labels": [{"name": "X", "confidence": 100.5}]}, id="confidence over 100"),
        pytest.param({"labels": [{"name": "X", "confidence": -1}]}, id="negative confidence"),
        pytest.param({"labels": [{"name": "X", "confidence": "90"}]}, id="confidence a string"),
        pytest.param({"labels": [{"name": "X", "confidence": 9, "source": "a"}]}, id="label key"),
        pytest.param(
            {"labels": [{"name": "X", "parent": None, "confidence": 9}]}, id="null parent"
        ),
        pytest.param({"labels": {"name": "X", "confidence": 9}}, id="labels not a list"),
        pytest.param([], id="not an object"),
    ],
)
def test_rejects(settings: Any) -> None:
    assert list(VALIDATOR.iter_errors(settings)) != []


def test_settings_resolve_a_relative_folder_against_base_dir_and_default_missing_to_error() -> None:
    settings = StubSettings.from_mapping(
        {"recordings": "recs", "labels": [LABEL]}, base_dir="/policies"
    )

    assert str(settings.recordings) == "/policies/recs"
    assert settings.missing == "error"
    assert [(label.name, label.parent, label.source) for label in settings.labels] == [
        ("Violence", "", "stub")
    ]
