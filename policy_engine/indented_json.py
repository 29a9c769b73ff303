"""``json.dumps(value, ensure_ascii=False, indent=2)``, the same text, several times faster.

The standard library writes indented JSON with its pure-Python encoder (its C
encoder only writes compact JSON); a corpus diff writes one indented record per
changed item, so that encoder was a quarter of the work. Strings go through the
C string encoder; numbers, ``true``, ``false`` and ``null`` as :mod:`json`
writes them. Anything else (and any text with a lone surrogate, which
:func:`policy_engine.text.json_dumps` escapes) is left to :func:`json_dumps`.
"""

from __future__ import annotations

import json.encoder
from typing import Any

from policy_engine.text import has_surrogates, json_dumps

_string: Any = json.encoder.encode_basestring  # the C one where it is built
_float = json.encoder.INFINITY


def dumps_indented(value: Any, indent: int = 2) -> str:
    """``json_dumps(value, indent=indent)``, the same text."""
    try:
        text = _value(value, "\n", " " * indent)
    except TypeError:  # a type this writer leaves to json.dumps (which may refuse it)
        return json_dumps(value, indent=indent)
    return json_dumps(value, indent=indent) if has_surrogates(text) else text


def _value(value: Any, newline: str, step: str) -> str:
    if isinstance(value, str):
        return str(_string(value))
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _number(value)
    inner = newline + step
    if isinstance(value, dict):
        if not value:
            return "{}"
        parts = [f"{_key(k)}: {_value(v, inner, step)}" for k, v in value.items()]
        return "{" + inner + ("," + inner).join(parts) + newline + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [_value(v, inner, step) for v in value]
        return "[" + inner + ("," + inner).join(items) + newline + "]"
    raise TypeError(type(value).__name__)


def _number(value: float) -> str:
    if value != value:
        return "NaN"
    if value == _float:
        return "Infinity"
    if value == -_float:
        return "-Infinity"
    return float.__repr__(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return str(_string(key))
    if isinstance(key, bool | int | float) or key is None:
        return str(_string(json.dumps(key)))
    raise TypeError(type(key).__name__)
