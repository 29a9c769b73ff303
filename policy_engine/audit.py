"""The built-in JSON Lines audit log: one line per decision.

Each line holds when the decision was made, what the image was (its name and
key, the SHA-256 of its bytes), the context the caller gave, the policy's
name and digest, the detectors' model versions, the decision, its reasons,
the detector errors and, when a candidate policy is shadowed, its decision.
It never holds image bytes nor credentials: only the fields listed are
written, bytes in the context are replaced by their length, and secrets are
redacted twice over:

- by name: the value under a key that names a secret (``password``,
  ``Authorization``, ``x-api-key``, ``Set-Cookie``, ...), in a mapping, a
  ``(name, value)`` pair or a flat ``[name, value, ...]`` list, at any depth;
- by shape, in every string of the line: ``Bearer``/``Basic`` credentials,
  ``Cookie:`` and ``Authorization:`` header lines, the password in a URL,
  ``name=value`` query parameters and settings whose name is secret
  (``X-Amz-Signature=``, ``sig=``, ``token=``...), AWS access key ids, JWTs,
  private keys and a few well-known token formats.

An embedder that knows which context keys are worth keeping names them
(``AuditLog(path, log_context_keys=("upload_id", "user_id"))``): every other
key is left out, which no pattern can match.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import IO, Any, cast

from policy_engine.decision import Decision
from policy_engine.events import DecisionEvent
from policy_engine.hookspecs import hookimpl
from policy_engine.log_fields import error_fields, fields
from policy_engine.redaction import REDACTED, is_secret_key, key_text, redact_text
from policy_engine.text import json_dumps, name_fields

AUDIT_FORMAT = "policy-engine-audit/1"

MODEL_KEYS = ("model_version", "adapter", "project_version_arn")
"""What a detector's metadata says about the model that answered."""

MAX_DEPTH = 8

logger = logging.getLogger(__name__)


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
    return {key: metadata[key] for key in MODEL_KEYS if metadata.get(key) is not None}


def _safe(value: Any, depth: int = 0, *, by_name: bool = True) -> Any:
    """``value`` as plain JSON data with no bytes and no secrets: strings redacted
    by shape and, with ``by_name``, values under a secret name redacted whole.
    Never raises: what cannot be read is replaced by a note of its type."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # NaN is not JSON
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes omitted>"
    if depth >= MAX_DEPTH:
        return "<nested too deep>"
    try:
        if isinstance(value, Mapping):
            return {
                redact_text(key_text(k)): (
                    REDACTED
                    if by_name and is_secret_key(k)
                    else _safe(v, depth + 1, by_name=by_name)
                )
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return _safe_sequence(list(value), depth, by_name)
        if isinstance(value, set | frozenset):
            return [_safe(v, depth + 1, by_name=by_name) for v in value]
    except Exception:  # a container that fails to iterate, a key whose str() raises
        return f"<{type(value).__name__} unreadable>"
    return f"<{type(value).__name__} omitted>"


def _safe_sequence(items: list[Any], depth: int, by_name: bool) -> list[Any]:
    """A list or tuple, where a secret's name (a string item) hides the item after
    it: ``("Authorization", "Bearer ...")`` pairs and flat ``[name, value]`` lists."""
    safe = []
    hide_next = False
    for item in items:
        safe.append(REDACTED if hide_next else _safe(item, depth + 1, by_name=by_name))
        hide_next = by_name and isinstance(item, str | bytes | bytearray) and is_secret_key(item)
    return safe


def _decision_part(decision: Decision) -> dict[str, Any]:
    return {
        "decision": decision.verdict.value,
        "policy": {"name": decision.policy_name, "digest": decision.policy_digest},
        "reasons": [reason.to_dict() for reason in decision.reasons()],
        "errors": [failure.to_dict() for failure in decision.failures],
    }


def logged_context(
    context: Mapping[str, Any], keys: Collection[str] | None = None
) -> dict[str, Any]:
    """The context as written: only ``keys`` (all when None), redacted."""
    if keys is not None:
        context = {key: value for key, value in context.items() if key in keys}
    safe = _safe(context)
    return safe if isinstance(safe, dict) else {}


def audit_record(
    event: DecisionEvent, log_context_keys: Collection[str] | None = None
) -> dict[str, Any]:
    """The audit line of one decision, as plain JSON data.

    ``log_context_keys``: the context keys to keep (all when None). Every
    string of the line is redacted by shape; the context by name too."""
    decision = event.decision
    record: dict[str, Any] = {
        "format": AUDIT_FORMAT,
        "time": event.time,
        **name_fields(event.input),
        "key": event.key,
        "detectors": model_versions(decision),
        **_decision_part(decision),
    }
    if event.shadow is not None:
        record["shadow"] = {**_decision_part(event.shadow), "agrees": not event.disagrees}
    if event.route is not None:  # dimension values come from closed lists: no secret
        record["route"] = dict(event.route)
    if event.policy_set is not None:
        record["policy_set"] = dict(event.policy_set)
    # the line's own keys (``key``, ``errors``...) are not secrets: redact them by shape only
    safe: dict[str, Any] = _safe(record, by_name=False)
    safe["context"] = logged_context(event.context, log_context_keys)
    return safe


def _minimal_record(event: DecisionEvent, problem: BaseException) -> dict[str, Any]:
    """What can still be said of a decision whose full line could not be made."""

    def attempt(read: Callable[[], Any]) -> Any:
        try:
            return read()
        except Exception:
            return None

    record = {
        "format": AUDIT_FORMAT,
        "time": attempt(lambda: event.time),
        "input": attempt(lambda: event.input),
        "key": attempt(lambda: event.key),
        "decision": attempt(lambda: event.decision.verdict.value),
        "policy": {
            "name": attempt(lambda: event.decision.policy_name),
            "digest": attempt(lambda: event.decision.policy_digest),
        },
        "audit_error": f"the full line could not be made: {type(problem).__name__}",
    }
    # which route and set decided is what an auditor of a set asks first
    route = attempt(lambda: None if event.route is None else dict(event.route))
    if route is not None:
        record["route"] = route
    policy_set = attempt(lambda: None if event.policy_set is None else dict(event.policy_set))
    if policy_set is not None:
        record["policy_set"] = policy_set
    safe: dict[str, Any] = _safe(record, by_name=False)
    return safe


def encode_line(record: Mapping[str, Any]) -> bytes:
    r"""One JSON line, valid UTF-8 always (see :func:`policy_engine.text.json_dumps`:
    a lone surrogate, from a file name or a response, is written escaped)."""
    return (json_dumps(record, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


class AuditLog:
    """A JSON Lines audit log, registered as a ``policy_engine_decision_made`` hook.

    ``AuditLog(path)`` appends to the file (created if missing); each line is
    encoded first and written with one ``write`` on a file opened for
    appending, so lines never interleave, even across processes.
    ``AuditLog(stream)`` writes to an open text or binary stream (which the
    caller owns). Safe to share across threads: a lock orders the lines, and
    each is flushed when written.

    ``log_context_keys``: the context keys worth keeping (e.g.
    ``("upload_id", "user_id")``); every other key is left out of the log.
    By default every key is kept, redacted.

    Writing never raises: a decision is never undone by its bookkeeping. A line
    that cannot be made in full is written with what can (``audit_error`` says
    why), and one that cannot be written at all is logged (``logging``, logger
    ``policy_engine.audit``) and counted in ``failures``.
    """

    def __init__(
        self,
        path_or_stream: str | os.PathLike[str] | IO[str] | IO[bytes],
        *,
        log_context_keys: Iterable[str] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._owned: io.FileIO | None = None
        self._text: IO[str] | None = None
        self._binary: IO[bytes] | None = None
        if isinstance(log_context_keys, str):
            raise TypeError("log_context_keys takes a collection of key names, not one string")
        self.log_context_keys = (
            frozenset(log_context_keys) if log_context_keys is not None else None
        )
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
        self.failures = 0

    @hookimpl
    def policy_engine_decision_made(self, event: DecisionEvent) -> None:
        self.write(event)

    def write(self, event: DecisionEvent) -> bool:
        """Append the decision's line; False (logged, counted) when it could not be."""
        try:
            data = encode_line(audit_record(event, self.log_context_keys))
        except Exception as exc:
            logger.error(
                "audit log %s: the line of a %s decision was cut short: %s",
                self.name,
                _decision_of(event),
                type(exc).__name__,
                extra=fields(
                    "audit-line-cut-short",
                    audit_log=self.name,
                    decision=_decision_of(event),
                    **error_fields(exc),
                ),
            )
            try:
                data = encode_line(_minimal_record(event, exc))
            except Exception as again:
                return self._failed(event, again)
        with self._lock:
            try:
                self._write(data)
            except Exception as exc:
                return self._failed(event, exc)
            self.lines += 1
        return True

    def _write(self, data: bytes) -> None:
        if self._owned is not None:
            if self._owned.closed:
                raise ValueError("the log is closed")
            view = memoryview(data)
            try:
                while view:
                    written = self._owned.write(view)
                    if not written:
                        raise OSError(f"the file took none of the last {len(view)} bytes")
                    view = view[written:]
            except BaseException:
                if len(view) < len(data):  # end the torn line, so the next one stays whole
                    with contextlib.suppress(Exception):
                        self._owned.write(b"\n")
                raise
        elif self._binary is not None:
            self._binary.write(data)
            self._binary.flush()
        elif self._text is not None:
            text = data.decode("utf-8")
            try:
                self._text.write(text)
            except UnicodeEncodeError:  # a stream that cannot take UTF-8 (e.g. a cp1252 console)
                self._text.write(json.dumps(json.loads(text), sort_keys=True) + "\n")
            self._text.flush()

    def _failed(self, event: DecisionEvent, exc: BaseException) -> bool:
        self.failures += 1
        logger.error(
            "audit log %s: could not write the line of a %s decision: %s: %s",
            self.name,
            _decision_of(event),
            type(exc).__name__,
            exc,
            extra=fields(
                "audit-line-not-written",
                audit_log=self.name,
                decision=_decision_of(event),
                failures=self.failures,
                **error_fields(exc),
            ),
        )
        return False

    def close(self) -> None:
        """Close the file this log opened (a stream given to it stays open)."""
        with self._lock:
            if self._owned is not None:
                self._owned.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _decision_of(event: DecisionEvent) -> str:
    try:
        return str(event.decision.verdict.value)
    except Exception:
        return "<unknown>"
