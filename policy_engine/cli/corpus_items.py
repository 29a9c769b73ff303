"""A corpus of recorded detector output, read one item at a time in a fixed order.

A folder is walked depth first, each folder's entries in name order (the order
of the sorted paths, without listing them all); a JSON Lines file is read line
by line. Each entry is a ``(name, payload)`` pair of strings (a file's name and
path, or a line's place and text), cheap to send to a worker process, which
turns it into a :class:`~policy_engine.review.diff.CorpusItem` with
:func:`parse_entry`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policy_engine.cascade import NEVER_MATTERS
from policy_engine.cli.common import CommandError, read_responses
from policy_engine.decision import DetectorFailure
from policy_engine.errors import InvalidDetectorResult, UnrecognisedResponseError
from policy_engine.labels import Label
from policy_engine.plugins import DetectorRegistry
from policy_engine.review.diff import CorpusItem

Entry = tuple[str, str]
"""(name, payload): a file's name in the corpus and its path, or ``FILE:LINE`` and the line."""


@dataclass(frozen=True, slots=True)
class CorpusSource:
    """Where a corpus is: a folder of responses (``folder``) or a JSON Lines file."""

    path: str
    folder: bool

    def entries(self) -> Iterator[Entry]:
        return _walk(str(Path(self.path)), ()) if self.folder else _lines(self.path)


def corpus_source(path: str) -> CorpusSource:
    """The corpus at ``path``: a folder, or anything else that can be read (a FIFO too)."""
    if os.path.isdir(path):
        return CorpusSource(path, folder=True)
    if os.path.exists(path):
        return CorpusSource(path, folder=False)
    raise CommandError(f"policy-engine: --corpus {path}: no such file or folder")


def parse_entry(folder: bool, entry: Entry, registry: DetectorRegistry) -> CorpusItem | None:
    """The item an entry holds (None for a check record of an unreadable input)."""
    name, payload = entry
    if folder:
        results = read_responses(payload, registry)
        return CorpusItem(
            name,
            tuple(lab for r in results for lab in r.labels),
            metadata={r.source: r.metadata for r in results if r.metadata},
        )
    return _line_item(name, payload, registry)


def _walk(base: str, parts: tuple[str, ...]) -> Iterator[Entry]:
    """Every ``*.json`` file under ``base``, in the order of their sorted paths, as
    ``Path.rglob`` finds them: symbolic links to folders not followed, folders
    that may not be read skipped."""
    prefix = "" if base == "." else base.rstrip("/") + "/"
    try:
        with os.scandir(prefix + "/".join(parts) if parts else base) as scan:
            found = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in scan)
    except PermissionError:
        return
    for name, is_dir in found:
        inner = (*parts, name)
        if is_dir:
            yield from _walk(base, inner)
        elif name.endswith(".json"):
            relative = "/".join(inner)
            if os.path.isfile(path := prefix + relative):
                yield relative, path


def _lines(path: str) -> Iterator[Entry]:
    try:
        # str.splitlines, as reading the whole file did: it also splits at \x1c, U+2028...
        with open(path, encoding="utf-8") as stream:
            number = 0
            for physical in stream:
                for line in physical.splitlines():
                    number += 1
                    if line.strip():
                        yield f"{path}:{number}", line
    except OSError as exc:
        raise CommandError(f"policy-engine: {path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CommandError(f"policy-engine: {path}: not UTF-8 text") from exc


def _line_item(where: str, line: str, registry: DetectorRegistry) -> CorpusItem | None:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CommandError(f"policy-engine: {where}: not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise CommandError(f"policy-engine: {where}: expected a JSON object")
    try:
        if ("decision" in data and "labels" in data) or ("input" in data and "error" in data):
            return _check_record(data, where)
        result = registry.parse_response(data)
        metadata = {result.source: result.metadata} if result.metadata else {}
        return CorpusItem(where, result.labels, metadata=metadata)
    except (InvalidDetectorResult, UnrecognisedResponseError, ValueError) as exc:
        raise CommandError(f"policy-engine: {where}: {exc}") from exc


def _check_record(record: Mapping[str, Any], where: str) -> CorpusItem | None:
    """A ``policy-engine check`` record: its labels (dropped ones too, since the other
    policy's min_confidence may keep them) and its detector errors. An unreadable
    input (no decision) is skipped."""
    if "decision" not in record:
        return None
    name = str(record.get("input") or where)
    labels = []
    for key in ("labels", "dropped"):
        entries = record.get(key) or []
        if not isinstance(entries, list):
            raise ValueError(f"{key} must be a list")
        for entry in entries:
            if not isinstance(entry, dict):
                raise ValueError(f"each of {key} must be an object")
            labels.append(
                Label(
                    name=entry.get("name"),  # type: ignore[arg-type]  # checked by Label
                    confidence=entry.get("confidence"),  # type: ignore[arg-type]
                    source=str(entry.get("source", "")),
                    parent=entry.get("parent") or "",
                    model_version=entry.get("model_version"),
                )
            )
    failures = tuple(
        DetectorFailure(str(e.get("source", "")), str(e.get("error", "")))
        for e in record.get("errors") or []
        if isinstance(e, dict)
    ) + _skipped_as_failures(record.get("skipped"), of_a_set="route" in record)
    detectors = record.get("detectors") or {}
    if not isinstance(detectors, dict) or not all(isinstance(m, dict) for m in detectors.values()):
        raise ValueError("detectors must be an object of objects")
    return CorpusItem(name, tuple(labels), failures, detectors)


SKIPPED_CODE = "skipped-by-cascade"


def _skipped_as_failures(skipped: Any, *, of_a_set: bool) -> tuple[DetectorFailure, ...]:
    """The detectors the cascade skipped for a check record, each as a failure:
    it gave no answer, and another policy may need one, so it is never read as
    "no labels" (which could allow what a full run blocks). As a failure, the
    re-deciding policy's ``on_error`` decides it; under the policy that made the
    record the decision stays the same, since a detector is skipped only when
    its failure under that ``on_error`` could not change it. A set's record
    holds only its routed policy's own detectors' labels and errors: there a
    detector skipped as never mattering may be one the routed policy does not
    run, and is left out as its labels would have been."""
    if skipped is None:
        return ()
    if not isinstance(skipped, list) or not all(
        isinstance(s, dict) and isinstance(s.get("source"), str) for s in skipped
    ):
        raise ValueError("skipped must be a list of objects with a source")
    return tuple(
        DetectorFailure(
            s["source"],
            f"skipped by the cascade ({s.get('reason', 'no reason given')}): "
            "its answer is not in the record",
            SKIPPED_CODE,
        )
        for s in skipped
        if not (of_a_set and str(s.get("reason", "")).startswith(NEVER_MATTERS))
    )
