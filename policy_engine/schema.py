"""The policy file's JSON Schema, and turning its errors into positioned diagnostics."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from typing import TYPE_CHECKING, Any

from policy_engine.diagnostics import Diagnostic, error
from policy_engine.fast_schema import FastCheck, fast_check
from policy_engine.json_types import json_type_name, plain
from policy_engine.source import JsonPath, SourceMap

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError


@cache
def packaged_schema(name: str) -> Mapping[str, Any]:
    """A JSON Schema shipped in the package's ``schemas/`` folder, by file name."""
    text = resources.files("policy_engine").joinpath("schemas", name).read_text("utf-8")
    schema: Mapping[str, Any] = json.loads(text)
    return schema


class SchemaValidator:
    """A JSON Schema (2020-12) and its two validators, each built on first use: a
    fast one (:mod:`policy_engine.fast_schema`) that says whether a document is
    valid, and jsonschema's, imported only for a document that is not, for its
    located errors."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema

    @cached_property
    def _fast(self) -> FastCheck | None:
        return fast_check(self.schema)

    @cached_property
    def precise(self) -> Draft202012Validator:
        from jsonschema import Draft202012Validator

        return Draft202012Validator(self.schema)

    @property
    def has_fast_check(self) -> bool:
        """Whether jsonschema-rs took the schema (which it checks as it compiles)."""
        return self._fast is not None

    def known_valid(self, data: Any) -> bool:
        """Whether the fast validator vouches for ``data`` (False also where it cannot tell)."""
        fast = self._fast
        return fast is not None and fast(data)

    def iter_errors(self, data: Any) -> Iterator[ValidationError]:
        """jsonschema's errors about ``data``: none where the fast validator finds it valid."""
        if self.known_valid(data):
            return iter(())
        return self.precise.iter_errors(data)


@cache
def packaged_validator(name: str) -> SchemaValidator:
    """A validator of :func:`packaged_schema`, made once (and compiled on first use)."""
    return SchemaValidator(packaged_schema(name))


def policy_schema() -> Mapping[str, Any]:
    """The JSON Schema of a policy file, as shipped in the package."""
    return packaged_schema("policy.schema.json")


def describe_path(path: JsonPath) -> str:
    """``('rules', 2, 'match')`` -> ``rules[2].match``; the root is ``the policy``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the policy"


def _expected(err: ValidationError) -> Any:
    """The keyword's value in the schema (typed loosely by jsonschema)."""
    return err.validator_value


def _is_type_mismatch(err: ValidationError) -> bool:
    if err.relative_path:
        return False
    if err.validator == "type":
        return True
    if err.validator in ("enum", "const"):
        values = _expected(err) if err.validator == "enum" else [_expected(err)]
        return all(type(v) is not type(err.instance) for v in values)
    return False


def _branch_errors(err: ValidationError) -> list[ValidationError] | None:
    """Of an anyOf/oneOf that failed, the errors of the one branch whose type fits the
    value, so the user reads what is wrong with what they meant (not every branch)."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in err.context or ():
        branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    fitting = [errs for errs in branches.values() if not any(map(_is_type_mismatch, errs))]
    return fitting[0] if len(fitting) == 1 else None


def _explain(err: ValidationError, source_map: SourceMap, base: JsonPath) -> Iterator[Diagnostic]:
    path = (*base, *err.absolute_path)
    where = describe_path(path)
    at = source_map.at(path)
    file = source_map.file
    schema = err.schema if isinstance(err.schema, Mapping) else {}
    custom = schema.get("x-message")
    if err.validator in ("anyOf", "oneOf", "not"):
        if custom:
            yield error("schema", f"{where}: {custom}", file, at)
            return
        chosen = _branch_errors(err) if err.validator != "not" else None
        if chosen:
            for sub in chosen:
                yield from _explain(sub, source_map, base)
            return
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        for key in err.instance:
            if key in allowed:
                continue
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            suggestion = (
                f"; did you mean {hint[0]!r}?" if hint else f"; allowed: {', '.join(allowed)}"
            )
            yield error(
                "unknown-key",
                f"unknown key {key!r} in {where}{suggestion}",
                file,
                source_map.key_at((*path, key)),
            )
        return
    if err.validator == "required" and isinstance(err.instance, dict):
        for key in _expected(err):
            if key not in err.instance:
                yield error("missing-key", f"{where}: missing required key {key!r}", file, at)
        return
    if err.validator == "type":
        expected = _expected(err)
        expected_text = " or ".join(expected) if isinstance(expected, list) else expected
        yield error(
            "wrong-type",
            f"{where}: expected {expected_text}, got {json_type_name(err.instance)}",
            file,
            at,
        )
        return
    if err.validator == "enum":
        options = ", ".join(map(str, _expected(err)))
        yield error("invalid-value", f"{where}: {err.instance!r} is not one of {options}", file, at)
        return
    if err.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        yield error("out-of-range", f"{where}: {err.message}", file, at)
        return
    if err.validator == "pattern" and path == ("name",):
        yield error(
            "invalid-value",
            f"name: {err.instance!r} must start with a letter or digit and hold only "
            "letters, digits, '.', '_' and '-'",
            file,
            at,
        )
        return
    yield error("schema", f"{where}: {custom or err.message}", file, at)


@dataclass(frozen=True, slots=True)
class SchemaReport:
    """Diagnostics, and the paths of the values they are about (so that a loader
    can go on with the values that are fine)."""

    diagnostics: tuple[Diagnostic, ...]
    bad_paths: frozenset[JsonPath]
    _unusable: frozenset[JsonPath] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # every prefix of a bad path: one set look-up per question, not a scan
        prefixes = {bad[:end] for bad in self.bad_paths for end in range(len(bad) + 1)}
        object.__setattr__(self, "_unusable", frozenset(prefixes))

    def usable(self, path: JsonPath) -> bool:
        """No error is about the value at ``path`` or anything inside it."""
        return path not in self._unusable


def check_against_schema(
    validator: SchemaValidator,
    data: Any,
    source_map: SourceMap,
    base: JsonPath = (),
    reported: frozenset[JsonPath] = frozenset(),
) -> SchemaReport:
    """Every error of ``data`` (found at ``base`` in the file) against ``validator``'s
    schema, except errors about values at ``reported`` paths (already reported)."""
    found: list[Diagnostic] = []
    bad: set[JsonPath] = set(reported)
    for err in validator.iter_errors(data):
        path = (*base, *err.absolute_path)
        bad.add(path)
        if path not in reported:
            found.extend(_explain(err, source_map, base))
    return SchemaReport(tuple(found), frozenset(bad))


def check_policy_data(
    data: Any, source_map: SourceMap, reported: frozenset[JsonPath] = frozenset()
) -> SchemaReport:
    return check_against_schema(
        packaged_validator("policy.schema.json"), data, source_map, reported=reported
    )


@cache
def _settings_validator(schema_json: str) -> SchemaValidator:
    schema = json.loads(schema_json)
    validator = SchemaValidator(schema)
    if not validator.has_fast_check:
        # where jsonschema-rs did not take a plugin's schema, jsonschema says what is wrong
        from jsonschema import Draft202012Validator

        Draft202012Validator.check_schema(schema)
    return validator


def settings_validator(schema: Mapping[str, Any]) -> SchemaValidator:
    """A validator for a detector's settings schema (cached per schema)."""
    return _settings_validator(json.dumps(plain(schema), sort_keys=True))
