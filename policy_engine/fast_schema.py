"""A fast yes-or-no answer to "is this document valid against this JSON Schema?",
agreeing with :mod:`jsonschema` (the validator whose located messages the user reads).

The answer comes from jsonschema-rs (compiled Rust). Two things would make it
disagree with jsonschema, and both are taken out of its hands:

- regular expressions: jsonschema runs ``pattern`` with Python's :mod:`re`, whose
  ``\\s`` knows other characters than Rust's (U+001C to U+001F, U+FEFF). Each
  ``pattern`` becomes a ``format`` whose check is Python's own ``re.search``;
- ``format`` and ``content*`` keywords are annotations to jsonschema (no format
  checker is given to it), so they are dropped.

A schema this cannot translate (``patternProperties``, whose keys are regular
expressions, or a reference jsonschema-rs cannot resolve) gets no fast check.
A document jsonschema-rs cannot read (a key that is not a string, a lone
surrogate) is not known valid: only ``True`` is trusted, and the caller asks
the precise validator otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

FastCheck = Callable[[Any], bool]

_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "dependentSchemas"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_ONE_SCHEMA = frozenset(
    {
        "items",
        "additionalItems",
        "additionalProperties",
        "contains",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
_ANNOTATIONS = frozenset({"format", "contentEncoding", "contentMediaType", "contentSchema"})
# regular expressions in keys, or keywords whose sub-schemas this walk does not follow
_UNTRANSLATABLE = frozenset({"patternProperties", "dependencies", "$dynamicRef", "$recursiveRef"})


def _translate(schema: Any, patterns: dict[str, str]) -> Any:
    """``schema`` with each ``pattern`` turned into a ``format`` named in ``patterns``;
    ValueError for a schema this cannot translate."""
    if not isinstance(schema, Mapping):
        return schema  # a boolean schema (or the caller's mistake, which jsonschema-rs refuses)
    found = _UNTRANSLATABLE.intersection(schema)
    if found:
        raise ValueError(f"{sorted(found)[0]} is not translated")
    result: dict[str, Any] = {}
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        if keyword == "pattern":
            if not isinstance(value, str):
                raise ValueError("a pattern that is not a string")
            name = f"python-re-{len(patterns)}"
            patterns[name] = value
            result["format"] = name
        elif keyword in _SCHEMA_MAPS and isinstance(value, Mapping):
            result[keyword] = {key: _translate(sub, patterns) for key, sub in value.items()}
        elif isinstance(value, list) and (keyword in _SCHEMA_LISTS or keyword == "items"):
            result[keyword] = [_translate(sub, patterns) for sub in value]
        elif keyword in _ONE_SCHEMA:
            result[keyword] = _translate(value, patterns)
        else:
            result[keyword] = value
    return result


def _searcher(pattern: str) -> Callable[[str], bool]:
    search = re.compile(pattern).search  # what jsonschema's ``pattern`` does
    return lambda text: search(text) is not None


def fast_check(schema: Mapping[str, Any]) -> FastCheck | None:
    """A function telling whether a document is valid against ``schema`` (2020-12),
    as jsonschema's :class:`~jsonschema.Draft202012Validator` would; None where
    jsonschema-rs is missing or cannot take the schema."""
    try:
        import jsonschema_rs
    except ImportError:  # a platform without its wheels: the precise validator alone
        return None
    patterns: dict[str, str] = {}
    try:
        translated = _translate(schema, patterns)
        formats = {name: _searcher(pattern) for name, pattern in patterns.items()}
        validator = jsonschema_rs.Draft202012Validator(
            translated, formats=formats, validate_formats=True
        )
    except Exception:  # untranslatable, a bad regular expression, a schema it refuses
        return None

    def is_valid(document: Any) -> bool:
        try:
            return bool(validator.is_valid(document))
        except Exception:  # not a JSON value jsonschema-rs reads: not known valid
            return False

    return is_valid
