"""Structured fields for the library's log lines, for a JSON log formatter.

Every log call of the library passes ``extra=fields(event, ...)``: the record
then has one attribute, ``policy_engine``, holding a stable ``event`` name
and the line's values (``detector``, ``error_code``, ``decision``, ...). One
namespaced attribute, because a flat ``extra`` key that a ``LogRecord``
already has (``name``, ``message``) makes ``logging`` raise, and the record's
own attributes stay what every formatter expects. A formatter that writes a
record's extra attributes (python-json-logger, Powertools' Logger) writes
them as ``"policy_engine": {...}``; the message text is unchanged.
"""

from __future__ import annotations

from typing import Any

LOG_FIELD = "policy_engine"
"""The ``LogRecord`` attribute that holds the fields."""


def fields(event: str, **values: Any) -> dict[str, dict[str, Any]]:
    """``extra=`` for a log call: ``event`` names what happened (stable, kebab
    case); ``values`` are plain JSON values (strings, numbers, None). Values
    that name an image go through :func:`~policy_engine.redaction.loggable`
    first, as in the message."""
    return {LOG_FIELD: {"event": event, **values}}


def error_fields(exc: BaseException) -> dict[str, str | None]:
    """An exception as fields: its type, and its stable code when it has one."""
    from policy_engine.errors import PolicyEngineError

    code = exc.code if isinstance(exc, PolicyEngineError) else None
    return {"error_type": type(exc).__name__, "error_code": code}
