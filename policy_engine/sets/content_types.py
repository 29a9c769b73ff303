"""Reading the content types a detector reported for an image.

A ``content_type`` condition is about the image: it holds
when a detector reported one of the named content types at or above
``content_types_at``. The core reads content types from any detector result's
metadata under :data:`CONTENT_TYPES_KEY` (``content_types``), a list of
``{"name", "confidence"}`` objects (``Name``/``Confidence``, the spelling
Rekognition's ``ContentTypes`` uses and its plugin keeps, read the same); it
never names a detector. Names compare as label names do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from policy_engine.names import name_key

CONTENT_TYPES_KEY = "content_types"
"""The detector-result metadata key content types are read from."""


NO_CONTENT_TYPES: frozenset[str] = frozenset()


def content_types_of(
    metadata: Mapping[str, Mapping[str, Any]] | None, at: float
) -> tuple[frozenset[str], bool]:
    """The name keys of the content types any result reported at or above ``at``,
    and whether some result's content types were malformed (then what was not
    reported is unknown). Read for every image a content type may route: the
    usual spelling (a list of dicts with a string name and a finite float
    confidence) is checked first and cheaply."""
    reported: set[str] | None = None
    malformed = False
    name: Any
    confidence: Any
    if not metadata:
        return NO_CONTENT_TYPES, False
    for meta in metadata.values():
        entries = meta.get(CONTENT_TYPES_KEY)
        if entries is None:
            continue
        if type(entries) is not list and not isinstance(entries, (list, tuple)):
            malformed = True
            continue
        for entry in entries:
            if type(entry) is dict and "name" in entry:
                name, confidence = entry["name"], entry.get("confidence")
            else:
                name, confidence = _field(entry, "name"), _field(entry, "confidence")
            usual = type(name) is str and type(confidence) is float and -_INF < confidence < _INF
            if not usual and not _well_formed(name, confidence):
                malformed = True
                continue
            if confidence >= at:
                if reported is None:
                    reported = set()
                reported.add(name_key(name))
    return (NO_CONTENT_TYPES if reported is None else frozenset(reported)), malformed


_INF = math.inf


def _well_formed(name: Any, confidence: Any) -> bool:
    """A content type's name is a string, its confidence a finite number."""
    return (
        isinstance(name, str)
        and not isinstance(confidence, bool)
        and isinstance(confidence, (int, float))
        and math.isfinite(confidence)
    )


def _field(entry: Any, key: str) -> Any:
    if not isinstance(entry, Mapping):
        return None
    return entry.get(key, entry.get(key.capitalize()))
