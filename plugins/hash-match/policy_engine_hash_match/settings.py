"""The ``hash-match`` detector's settings: their JSON Schema and parsed form."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

SOURCE = "hash-match"
PARENT = "Known Image"
"""The parent of every label: a rule on it matches any bank."""

DEFAULT_MAX_DISTANCE = 31
"""PDQ's recommended match threshold (the hasher-matcher-actioner's default)."""
DEFAULT_QUALITY_FLOOR = 50
"""PDQ's recommended floor: hashes of lower quality match unrelated images."""
MAX_DISTANCE_LIMIT = 63
"""Past a quarter of the bits, unrelated images start to match."""

SETTINGS_SCHEMA: Mapping[str, Any] = MappingProxyType(
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "hash-match detector settings",
        "description": (
            "Matches images against banks of known hashes (PDQ and SHA-256) and reports "
            "one label per matching bank, named after it, under `Known Image`."
        ),
        "type": "object",
        "additionalProperties": False,
        "required": ["banks"],
        "properties": {
            "banks": {
                "type": "array",
                "minItems": 1,
                "description": (
                    "The banks: a path (a file of hashes, or a folder of `*.txt`/`*.csv` "
                    "files), named after the file's stem or the folder, or `{path, name}`. "
                    "A relative path resolves against the policy file's folder."
                ),
                "items": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["path"],
                            "properties": {
                                "path": {
                                    "type": "string",
                                    "minLength": 1,
                                    "description": "Bank file or folder, relative to the policy.",
                                },
                                "name": {
                                    "type": "string",
                                    "pattern": "\\S",
                                    "description": "The bank's label name.",
                                },
                            },
                        },
                    ]
                },
            },
            "max_distance": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_DISTANCE_LIMIT,
                "default": DEFAULT_MAX_DISTANCE,
                "description": (
                    "The most PDQ bits (of 256) a match may differ in; a match at "
                    "distance d has confidence 100 - d. A policy's thresholds can only "
                    "narrow it."
                ),
            },
            "quality_floor": {
                "type": "integer",
                "minimum": 0,
                "maximum": 100,
                "default": DEFAULT_QUALITY_FLOOR,
                "description": (
                    "Images whose PDQ quality is below this are not PDQ-matched "
                    "(SHA-256 still is); the record says so."
                ),
            },
        },
    }
)


@dataclass(frozen=True, slots=True)
class BankSource:
    """One bank as the settings give it: its resolved path, its name if given,
    and the path as written (for records)."""

    path: Path
    name: str | None
    written: str


@dataclass(frozen=True, slots=True)
class HashMatchSettings:
    banks: tuple[BankSource, ...]
    max_distance: int
    quality_floor: int

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any], *, base_dir: str) -> HashMatchSettings:
        banks = []
        for entry in settings.get("banks", ()):
            written, name = (
                (entry, None) if isinstance(entry, str) else (entry["path"], entry.get("name"))
            )
            banks.append(BankSource((Path(base_dir) / written).absolute(), name, written))
        return cls(
            banks=tuple(banks),
            max_distance=int(settings.get("max_distance", DEFAULT_MAX_DISTANCE)),
            quality_floor=int(settings.get("quality_floor", DEFAULT_QUALITY_FLOOR)),
        )

    def radius(self, min_confidence: float) -> int:
        """The distance searched: ``max_distance``, narrowed to what the policy's
        lowest threshold can see (a match at distance d has confidence 100 - d)."""
        return max(-1, min(self.max_distance, math.floor(100 - min_confidence)))


def confidence(distance: int) -> float:
    """A match's confidence: 100 - the PDQ distance (an exact SHA-256 match is 100)."""
    return float(100 - distance)
