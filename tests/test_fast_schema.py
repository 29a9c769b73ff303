"""The fast schema check (jsonschema-rs) agrees with jsonschema, whose located
messages the user reads: on the reference policies, policy sets, tests files
and detector settings, and on documents made from them by mutation."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine.plugins import DetectorRegistry
from policy_engine.schema import SchemaValidator, packaged_validator, settings_validator
from policy_engine.source import parse_document

POLICIES = Path(__file__).resolve().parent.parent / "policies"

# characters on which regular-expression engines differ: Python's \s takes
# U+001C-U+001F, Rust's does not; ECMAScript's \s takes U+FEFF, Python's does not
AWKWARD = "\x1c\x1d\x1e\x1f\ufeff\u00a0\u2028\u0085\u3000 \t\n"


def _data(path: Path) -> Any:
    return parse_document(path.read_text("utf-8"), path.name).data


@cache
def _cases() -> tuple[tuple[str, SchemaValidator, tuple[Any, ...]], ...]:
    """(what, validator, valid documents) for every schema a load checks."""
    policies = sorted(p for p in POLICIES.glob("*.yaml") if p.name.count(".") == 1)
    sets = sorted(POLICIES.glob("*.set.yaml"))
    tests = sorted(POLICIES.glob("*.tests.yaml"))
    cases = [
        ("policy", packaged_validator("policy.schema.json"), tuple(map(_data, policies))),
        ("policy set", packaged_validator("policy-set.schema.json"), tuple(map(_data, sets))),
        ("tests file", packaged_validator("policy-tests.schema.json"), tuple(map(_data, tests))),
    ]
    registry = DetectorRegistry.installed()
    written: dict[str, list[Mapping[str, Any]]] = {}
    for policy in cases[0][2]:
        for name, detector_settings in policy.get("detectors", {}).items():
            written.setdefault(name, []).append(detector_settings)
    stub = {"labels": [{"name": "Weapon Violence", "parent": "Violence", "confidence": 97.5}]}
    written.setdefault("stub", []).append(stub)
    for name in registry.names():
        documents = (*written.get(name, ()), {})
        validator = settings_validator(registry.get(name).settings_schema)
        cases.append((f"{name} settings", validator, documents))
    return tuple(cases)


def _agree(validator: SchemaValidator, document: Any) -> None:
    precise = validator.precise.is_valid(document)
    assert validator.has_fast_check
    assert validator.known_valid(document) is precise, document


def test_every_reference_document_is_valid_to_both() -> None:
    for what, validator, documents in _cases():
        assert documents, what
        for document in documents:
            if document:  # {} is a detector's settings written out, not always enough
                assert validator.precise.is_valid(document), what
            _agree(validator, document)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``value``, the root included."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([-1, -0.5, 0, 1, 1.0, 49.5, 100, 100.5, 101, 1e300, 2**64]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.text(alphabet=AWKWARD + "aZ9._-", max_size=4),
    st.sampled_from(["allow", "review", "block", "default", "on_error", "", "x", "a\n"]),
)
_values = st.one_of(
    _scalars,
    st.lists(_scalars, max_size=2),
    st.dictionaries(st.sampled_from(["name", "parent", "id", "x"]), _scalars, max_size=2),
)


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[str, SchemaValidator, Any]:
    what, validator, documents = draw(st.sampled_from(_cases()))
    document = copy.deepcopy(draw(st.sampled_from(documents)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(document)))
        target = _at(document, path)
        kind = draw(st.sampled_from(["replace", "unknown key", "drop key", "number", "text"]))
        if not path:
            if kind == "replace":
                document = draw(_values)
            continue
        parent, last = _at(document, path[:-1]), path[-1]
        if kind == "replace":
            parent[last] = draw(_values)
        elif kind == "unknown key" and isinstance(target, dict):
            target[draw(st.sampled_from(["extra", "Name", "labels", "rules", "x-message"]))] = draw(
                _values
            )
        elif kind == "drop key" and isinstance(parent, dict):
            del parent[last]
        elif kind == "drop key" and isinstance(parent, list):
            parent.pop(last)
        elif kind == "number":
            parent[last] = draw(
                st.one_of(
                    st.floats(min_value=-10, max_value=110, allow_nan=False),
                    st.integers(min_value=-10, max_value=110),
                )
            )
        elif kind == "text":
            parent[last] = draw(st.text(alphabet=AWKWARD + "Ab1-", max_size=4))
    return what, validator, document


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_fast_and_precise_agree_on_mutated_documents(
    case: tuple[str, SchemaValidator, Any],
) -> None:
    _what, validator, document = case
    _agree(validator, document)


@pytest.mark.parametrize(
    "document",
    [
        {"version": 1, "name": "p", "rules": [], 3: "a key that is not a string"},
        {"version": 1, "name": "p", "rules": [], "labels": [{"name": "\ud800", "parent": ""}]},
        {"version": 1, "name": "p", "rules": [], "min_confidence": float("nan")},
        {"version": 1, "name": "p", "rules": [], "description": b"bytes"},
    ],
)
def test_what_the_fast_check_cannot_read_goes_to_jsonschema(document: Any) -> None:
    # never vouched for; jsonschema decides (NaN passes its range checks: the
    # YAML layer refuses NaN before the schema sees it)
    validator = packaged_validator("policy.schema.json")
    assert not validator.known_valid(document)
    fast_path = [(e.message, list(e.absolute_path)) for e in validator.iter_errors(document)]
    precise = [(e.message, list(e.absolute_path)) for e in validator.precise.iter_errors(document)]
    assert fast_path == precise


def test_a_name_of_a_character_only_python_calls_a_space_is_refused() -> None:
    # "\x1c" is white space to Python's re (so "\S" fails), not to Rust's regex
    validator = packaged_validator("policy.schema.json")
    document = {"version": 1, "name": "p", "rules": [], "labels": [{"name": "\x1c", "parent": ""}]}
    assert not validator.known_valid(document)
    assert [e.validator for e in validator.iter_errors(document)] == ["pattern"]


def test_a_schema_with_regular_expressions_in_keys_is_checked_by_jsonschema_alone() -> None:
    # patternProperties' keys are regular expressions jsonschema-rs would run itself
    validator = SchemaValidator({"type": "object", "patternProperties": {"^x": {"type": "string"}}})
    assert not validator.has_fast_check
    assert not validator.known_valid({"x1": "a"})
    assert not list(validator.iter_errors({"x1": "a"}))
    assert [e.validator for e in validator.iter_errors({"x1": 1})] == ["type"]
