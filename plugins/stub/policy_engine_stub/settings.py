"""The ``stub`` detector's settings: their JSON Schema and their parsed form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from policy_engine import Label

SOURCE = "stub"

MISSING_ERROR = "error"
MISSING_NO_LABELS = "no-labels"
MissingPolicy = Literal["error", "no-labels"]

SETTINGS_SCHEMA: Mapping[str, Any] = MappingProxyType(
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "stub detector settings",
        "description": (
            "Replays recorded detector responses and/or returns fixed labels, without "
            "network access. Give at least one of `recordings` and `labels`: with "
            "neither, every image would silently get no labels."
        ),
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "recordings": {
                "type": "string",
                "minLength": 1,
                "description": (
                    "Folder of recorded responses, one `<sha256 of the image>.json` per "
                    "image, holding one raw detector response (an object) or an array of "
                    "them (one per detector). A relative path resolves against the "
                    "policy file's folder. Replayed labels keep the source of the "
                    "detector that recorded them."
                ),
            },
            "labels": {
                "type": "array",
                "minItems": 1,
                "description": (
                    "Labels returned for every image, with source `stub` (added to any "
                    "replayed labels)."
                ),
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "confidence"],
                    "properties": {
                        "name": {
                            "type": "string",
                            "pattern": "\\S",
                            "description": "The label's name, e.g. `Weapon Violence`.",
                        },
                        "parent": {
                            "type": "string",
                            "default": "",
                            "description": (
                                "The label's direct parent; omit or leave empty at the top "
                                "of a hierarchy."
                            ),
                        },
                        "confidence": {
                            "type": "number",
                            "minimum": 0,
                            "maximum": 100,
                            "description": "The label's confidence, 0 to 100.",
                        },
                    },
                },
            },
            "missing": {
                "enum": [MISSING_ERROR, MISSING_NO_LABELS],
                "default": MISSING_ERROR,
                "description": (
                    "What to do for an image with no recording: `error` (the default) "
                    "fails the detector for that image, so the policy's `on_error` "
                    "applies; `no-labels` replays nothing for it. Needs `recordings`."
                ),
            },
        },
        # Neither setting would give every image no labels: a configuration mistake.
        "anyOf": [{"required": ["recordings"]}, {"required": ["labels"]}],
        "dependentRequired": {"missing": ["recordings"]},
    }
)


@dataclass(frozen=True, slots=True)
class StubSettings:
    """Settings already validated against :data:`SETTINGS_SCHEMA`, with
    ``recordings`` resolved to an absolute folder."""

    recordings: Path | None
    labels: tuple[Label, ...]
    missing: MissingPolicy

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any], *, base_dir: str) -> StubSettings:
        folder = settings.get("recordings")
        recordings = None if folder is None else (Path(base_dir) / folder).absolute()
        labels = tuple(
            Label(
                name=entry["name"],
                parent=entry.get("parent", ""),
                confidence=entry["confidence"],
                source=SOURCE,
            )
            for entry in settings.get("labels", ())
        )
        missing: MissingPolicy = "no-labels" if settings.get("missing") == "no-labels" else "error"
        return cls(recordings=recordings, labels=labels, missing=missing)
