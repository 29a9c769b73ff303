"""The policy schema assembled from the installed detectors (policy_engine.full_schema)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from jsonschema import Draft202012Validator

from policy_engine import Detector, DetectorRegistry
from policy_engine.full_schema import policy_schema_with_detectors
from policy_engine.plugins import RegisteredDetector
from policy_engine.schema import policy_schema


class RefDetector(Detector):
    """Settings whose schema refers to its own ``$defs``, and a name that needs
    escaping in a JSON Pointer."""

    name: ClassVar[str] = "vendor/scan~v2"
    settings_schema: ClassVar[Mapping[str, Any]] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {"level": {"$ref": "#/$defs/level"}},
        "$defs": {"level": {"enum": ["low", "high"]}},
    }


def _errors(schema: Mapping[str, Any], policy: Any) -> list[tuple[list[Any], str]]:
    validator = Draft202012Validator(schema)
    return [(list(e.absolute_path), e.validator) for e in validator.iter_errors(policy)]


def _policy(detectors: Mapping[str, Any]) -> dict[str, Any]:
    return {"version": 1, "name": "p", "detectors": dict(detectors), "rules": []}


def test_each_detectors_settings_are_checked_at_their_path(settings_registry) -> None:
    schema = policy_schema_with_detectors(settings_registry)

    Draft202012Validator.check_schema(schema)
    assert _errors(schema, _policy({"throwaway": {"region": "eu-west-1"}})) == []
    assert _errors(schema, _policy({"throwaway": {"region": 5}})) == [
        (["detectors", "throwaway", "region"], "type")
    ]
    assert _errors(schema, _policy({"throwaway": {}})) == [(["detectors", "throwaway"], "required")]


def test_a_detector_no_plugin_provides_is_refused(settings_registry) -> None:
    schema = policy_schema_with_detectors(settings_registry)

    assert _errors(schema, _policy({"throwawy": {}})) == [(["detectors"], "additionalProperties")]
    assert "throwaway" in schema["properties"]["detectors"]["description"]


def test_a_settings_schemas_own_refs_resolve_inside_it() -> None:
    registry = DetectorRegistry([RegisteredDetector(RefDetector(), "vendor")])
    schema = policy_schema_with_detectors(registry)

    Draft202012Validator.check_schema(schema)
    assert _errors(schema, _policy({"vendor/scan~v2": {"level": "high"}})) == []
    assert _errors(schema, _policy({"vendor/scan~v2": {"level": "max"}})) == [
        (["detectors", "vendor/scan~v2", "level"], "enum")
    ]


def test_the_core_schema_is_left_as_packaged(settings_registry) -> None:
    before = dict(policy_schema())

    assembled = policy_schema_with_detectors(settings_registry)

    assert dict(policy_schema()) == before
    assert assembled["$id"] != before["$id"]
    assert "properties" not in before["properties"]["detectors"]
    # with no detector installed, every detector name is refused
    none = policy_schema_with_detectors(DetectorRegistry())
    assert _errors(none, _policy({"throwaway": {"region": "x"}})) == [
        (["detectors"], "additionalProperties")
    ]
