"""Text that must stay valid Unicode on its way out.

Python strings may hold lone surrogates: ``"\\ud800"`` from a JSON or YAML
escape, or ``"\\udce9"`` for a file name's byte that is not UTF-8 (the
``surrogateescape`` of :func:`os.fsdecode`). UTF-8 cannot encode them, so a
writer that meets one raises in the middle of a run. Everything this package
writes as JSON goes through :func:`json_dumps`, which always gives valid
UTF-8 JSON: such characters are written as backslash escapes, ``\\xe9`` for an
undecodable byte and ``\\ud800`` for any other lone surrogate (as text, so
that strict JSON parsers accept the output too).
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTE = range(0xDC80, 0xDD00)  # what surrogateescape makes of bytes 0x80-0xFF


def has_surrogates(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (it cannot be encoded as UTF-8)."""
    return _SURROGATE.search(text) is not None


_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def join_surrogate_pairs(text: str) -> str:
    """``text`` with each high-low surrogate pair (two escapes, as JSON and YAML
    write a character outside the Basic Multilingual Plane) made one character."""
    return _PAIR.sub(lambda m: m.group().encode("utf-16", "surrogatepass").decode("utf-16"), text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code in _ESCAPED_BYTE:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every lone surrogate written as a backslash escape."""
    return _SURROGATE.sub(_escape, text) if has_surrogates(text) else text


def _printable_data(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(str(k)): _printable_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable_data(v) for v in value]
    return value


def json_dumps(value: Any, **options: Any) -> str:
    """:func:`json.dumps` with ``ensure_ascii=False`` whose result always encodes
    as UTF-8 (see the module's docstring); ``options`` go to :func:`json.dumps`."""
    text = json.dumps(value, ensure_ascii=False, **options)
    if not has_surrogates(text):
        return text
    return json.dumps(_printable_data(value), ensure_ascii=False, **options)


def name_fields(name: str, field: str = "input") -> dict[str, str]:
    """A file name for a record: ``{field: name}``, and where the name is not
    valid UTF-8, its printable form with ``\\xNN`` escapes and, under
    ``<field>_base64``, its exact bytes (``base64 -d`` gives them back)."""
    if not has_surrogates(name):
        return {field: name}
    try:
        raw = os.fsencode(name)  # the bytes the file system gave
    except UnicodeEncodeError:  # a lone surrogate that stood for no byte
        raw = name.encode("utf-8", "surrogatepass")
    return {field: printable(name), f"{field}_base64": base64.b64encode(raw).decode("ascii")}
