"""Naming JSON values' types in messages, the way JSON (not Python) calls them."""

from __future__ import annotations

from collections.abc import Mapping


def json_type_name(value: object) -> str:
    """``"a string"``, ``"an object"``, ``"null"``...: for "expected X, got Y" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
