"""JSON-shaped values: the one walker that freezes them (read-only copies for
values that cross a boundary), the one that makes them plain again (dicts and
lists, for JSON, jsonschema and SDKs), and their types named in messages the
way JSON (not Python) calls them."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


def frozen(value: Any) -> Any:
    """A read-only deep copy: every mapping a ``MappingProxyType`` keyed by
    strings, every list or tuple a tuple; whoever built it cannot change it."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(frozen(v) for v in value)
    return value


def plain(value: Any) -> Any:
    """A deep copy with every mapping a ``dict`` keyed by strings and every list
    or tuple a ``list``: what :func:`frozen` made, or any mapping, as plain
    JSON-ready data that shares nothing with its input."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


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
