"""Continuing a ``check`` run from the JSON Lines it wrote.

The records already in the output say what is done: an input is done when a
record has its name and the SHA-256 of the bytes it has now (or, for a
record without one, the input could not be read, its name alone). A last
line cut short by an interruption is cut off the file, and its input is
checked again. A record made under another policy (its digest differs)
refuses the resume: the output would mix two policies' decisions.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from policy_engine.errors import ResumeError
from policy_engine.text import name_fields


def _done_key(fields: tuple[Any, Any], sha256: str | None) -> bytes:
    text = json.dumps([fields[0], fields[1], sha256])
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _record_digest(record: dict[str, Any]) -> str | None:
    for where in ("policy_set", "policy"):
        found = record.get(where)
        if isinstance(found, dict) and isinstance(found.get("digest"), str):
            return str(found["digest"])
    return None


@dataclass
class ResumePoint:
    """What a previous run decided; :meth:`done` is asked from many threads."""

    records: int = 0
    cut_bytes: int = 0
    """The bytes of a torn last line cut off the file."""
    skipped: int = 0
    _done: set[bytes] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def done(self, name: str, sha256: str | None) -> bool:
        """Whether ``name`` with these bytes has its record already (counted as skipped)."""
        given = name_fields(name)
        key = _done_key((given["input"], given.get("input_base64")), sha256)
        if key not in self._done:
            return False
        with self._lock:
            self.skipped += 1
        return True


def read_previous(path: str, policy_digest: str) -> ResumePoint:
    """The records in ``path`` (none when it does not exist), its torn last line
    cut off. Raises :class:`ResumeError` for a record of another policy or a
    complete line that is not a record, and OSError when it cannot be read."""
    point = ResumePoint()
    try:
        handle = open(path, "rb+")  # noqa: SIM115 - closed below, truncated in place
    except FileNotFoundError:
        return point
    with handle:
        kept = 0
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                break  # the run was cut off while writing it
            record = _parse(line, number, path)
            if record is None:
                kept += len(line)
                continue
            digest = _record_digest(record)
            if digest is not None and digest != policy_digest:
                raise ResumeError(
                    f"{path} line {number} was decided by a policy with digest {digest}, "
                    f"not this one ({policy_digest}): resuming would mix two policies' "
                    "decisions; write to a new --output"
                )
            names = (record.get("input"), record.get("input_base64"))
            point._done.add(_done_key(names, record.get("sha256")))
            point.records += 1
            kept += len(line)
        size = os.fstat(handle.fileno()).st_size
        if size > kept:
            handle.truncate(kept)
            point.cut_bytes = size - kept
    return point


def _parse(line: bytes, number: int, path: str) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResumeError(f"{path} line {number} is not a check record: {exc}") from None
    if not isinstance(record, dict) or not isinstance(record.get("input"), str):
        raise ResumeError(f"{path} line {number} is not a check record (no input)")
    return record
