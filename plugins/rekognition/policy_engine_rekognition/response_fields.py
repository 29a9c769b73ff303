"""Strict readers for the fields of a Rekognition response.

Each raises :class:`~policy_engine.InvalidDetectorResult` naming the exact
field (``ModerationLabels[2].Confidence``), so that a malformed response is a
detector error the user can locate, never a silently skipped label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy_engine import InvalidDetectorResult, check_confidence
from policy_engine.json_types import json_type_name


def require_object(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidDetectorResult(f"must be an object, got {json_type_name(value)}", field=field)
    return value


def require_list(container: Mapping[str, Any], key: str, field: str) -> list[Any] | tuple[Any, ...]:
    if key not in container:
        raise InvalidDetectorResult("is missing", field=field)
    value = container[key]
    if not isinstance(value, list | tuple):
        raise InvalidDetectorResult(f"must be a list, got {json_type_name(value)}", field=field)
    return value


def require_name(entry: Mapping[str, Any], field: str) -> str:
    if "Name" not in entry:
        raise InvalidDetectorResult("is missing", field=field)
    name = entry["Name"]
    if not isinstance(name, str):
        raise InvalidDetectorResult(f"must be a string, got {json_type_name(name)}", field=field)
    if not name.strip():
        raise InvalidDetectorResult("must not be empty", field=field)
    return name


def require_confidence(entry: Mapping[str, Any], field: str) -> float:
    if "Confidence" not in entry:
        raise InvalidDetectorResult("is missing", field=field)
    return check_confidence(entry["Confidence"], field=field)


def optional_string(container: Mapping[str, Any], key: str, field: str) -> str | None:
    """The string at ``key``, or None when absent (JSON null counts as absent)."""
    value = container.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidDetectorResult(f"must be a string, got {json_type_name(value)}", field=field)
    return value


def optional_positive_int(container: Mapping[str, Any], key: str, field: str) -> int | None:
    value = container.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidDetectorResult(f"must be a positive integer, got {value!r}", field=field)
    return value


def optional_object(container: Mapping[str, Any], key: str, field: str) -> Mapping[str, Any] | None:
    value = container.get(key)
    if value is None:
        return None
    return require_object(value, field)
