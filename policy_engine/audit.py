"""The built-in JSON Lines audit log: one line per decision.

Each line holds when the decision was made, what the image was (its name and
key, the SHA-256 of its bytes), the context the caller gave, the policy's
name and digest, the detectors' model versions, the decision, its reasons,
the detector errors and, when a candidate policy is shadowed, its decision.
It never holds image bytes nor credentials: only the fields listed are
written, bytes in the context are replaced by their length, and context keys
that name a secret (``password``, ``token``, ...) are redacted.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
from collections.abc import Mapping
from typing import IO, Any, cast

from policy_engine.decision import Decision
from policy_engine.events import DecisionEvent
from policy_engine.hookspecs import hookimpl

AUDIT_FORMAT = "policy-engine-audit/1"

MODEL_KEYS = ("model_version", "adapter", "project_version_arn")
"""What a detector's metadata says about the model that answered."""

SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|credential|authori[sz]ation|api[-_ ]?key|private[-_ ]?key|"
    r"cookie|session",
    re.IGNORECASE,
)
"""Context keys whose values are never written."""

REDACTED = "<redacted>"
MAX_DEPTH = 8


def model_versions(decision: Decision) -> dict[str, dict[str, Any]]:
    """Each detector that answered, with what its metadata says about the model.

    A replaying detector's metadata nests the replayed detectors' metadata
    under their names; those are listed as detectors of their own."""
    found: dict[str, dict[str, Any]] = {}
    for source, metadata in decision.detectors.items():
        found.setdefault(source, {}).update(_model_keys(metadata))
        for key, value in metadata.items():
            if isinstance(value, Mapping) and any(k in value for k in MODEL_KEYS):
                found.setdefault(str(key), {}).update(_model_keys(value))
    for label in decision.labels:
        if label.model_version is not None:
            found.setdefault(label.source, {}).setdefault("model_version", label.model_version)
    return {name: found[name] for name in sorted(found)}


def _model_keys(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _safe(metadata[key]) for key in MODEL_KEYS if metadata.get(key) is not None}


def _safe(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data with no bytes and no secrets."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes omitted>"
    if depth >= MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if SECRET_KEY.search(str(k)) else _safe(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_safe(v, depth + 1) for v in value]
    return f"<{type(value).__name__} omitted>"


def _decision_part(decision: Decision) -> dict[str, Any]:
    return {
        "decision": decision.decision.value,
        "policy": {"name": decision.policy_name, "digest": decision.policy_digest},
        "reasons": [reason.to_dict() for reason in decision.reasons()],
        "errors": [failure.to_dict() for failure in decision.failures],
    }


def audit_record(event: DecisionEvent) -> dict[str, Any]:
    """The audit line of one decision, as plain JSON data."""
    decision = event.decision
    record: dict[str, Any] = {
        "format": AUDIT_FORMAT,
        "time": event.time,
        "input": event.input,
        "key": event.key,
        "context": _safe(event.context),
        "detectors": model_versions(decision),
        **_decision_part(decision),
    }
    if event.shadow is not None:
        record["shadow"] = {**_decision_part(event.shadow), "agrees": not event.disagrees}
    return record


class AuditLog:
    """A JSON Lines audit log, registered as a ``policy_engine_decision_made`` hook.

    ``AuditLog(path)`` appends to the file (created if missing); each line is
    encoded first and written with one ``write`` on a file opened for
    appending, so lines never interleave, even across processes.
    ``AuditLog(stream)`` writes to an open text or binary stream (which the
    caller owns). Safe to share across threads: a lock orders the lines, and
    each is flushed when written.
    """

    def __init__(self, path_or_stream: str | os.PathLike[str] | IO[str] | IO[bytes]) -> None:
        self._lock = threading.Lock()
        self._owned: io.FileIO | None = None
        self._text: IO[str] | None = None
        self._binary: IO[bytes] | None = None
        if isinstance(path_or_stream, str | os.PathLike):
            self.name = os.fspath(path_or_stream)
            self._owned = io.FileIO(self.name, "a")
        else:
            self.name = str(getattr(path_or_stream, "name", "<stream>"))
            if isinstance(path_or_stream, io.RawIOBase | io.BufferedIOBase):
                self._binary = cast("IO[bytes]", path_or_stream)
            else:
                self._text = cast("IO[str]", path_or_stream)
        self.lines = 0

    @hookimpl
    def policy_engine_decision_made(self, event: DecisionEvent) -> None:
        self.write(event)

    def write(self, event: DecisionEvent) -> None:
        line = json.dumps(audit_record(event), ensure_ascii=False, sort_keys=True) + "\n"
        data = line.encode("utf-8")
        with self._lock:
            if self._owned is not None:
                if self._owned.closed:
                    raise ValueError(f"audit log {self.name} is closed")
                view = memoryview(data)
                while view:
                    written = self._owned.write(view)
                    view = view[written or 0 :]
            elif self._binary is not None:
                self._binary.write(data)
                self._binary.flush()
            elif self._text is not None:
                self._text.write(line)
                self._text.flush()
            self.lines += 1

    def close(self) -> None:
        """Close the file this log opened (a stream given to it stays open)."""
        with self._lock:
            if self._owned is not None:
                self._owned.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
