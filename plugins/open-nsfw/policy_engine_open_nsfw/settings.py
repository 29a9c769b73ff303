"""The ``open-nsfw`` detector's settings: their JSON Schema and their parsed form."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

DEFAULT_BATCH_SIZE = 4  # most of the gain for half the memory of 8 (bench/README.md)
DEFAULT_BATCH_WAIT_MS = 10.0
MAX_THREADS = 64

SETTINGS_SCHEMA: Mapping[str, Any] = MappingProxyType(
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "open-nsfw detector settings",
        "description": (
            "Yahoo's open_nsfw model, run on this machine's CPU with ONNX Runtime: "
            "one label, `Sexual Content`, with confidence 100 x P(NSFW). Every "
            "setting is optional."
        ),
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "batch_size": {
                "type": "integer",
                "minimum": 1,
                "maximum": 64,
                "default": DEFAULT_BATCH_SIZE,
                "description": (
                    "The most images one model run scores. Images checked at the same "
                    "time (`check --concurrency`) are scored together; never more than "
                    "the run's concurrency."
                ),
            },
            "batch_wait_ms": {
                "type": "number",
                "minimum": 0,
                "maximum": 1000,
                "default": DEFAULT_BATCH_WAIT_MS,
                "description": (
                    "How long, in milliseconds, the first image of a batch waits for "
                    "others before the model runs. Unused when images are checked one "
                    "at a time."
                ),
            },
            "threads": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_THREADS,
                "description": (
                    "ONNX Runtime's threads for one model run (intra-op). Default: the "
                    "CPUs this process may use."
                ),
            },
        },
    }
)


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the OS says)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class OpenNsfwSettings:
    """Settings already validated against :data:`SETTINGS_SCHEMA`, defaults filled in."""

    batch_size: int
    batch_wait: float
    """Seconds."""
    threads: int

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> OpenNsfwSettings:
        return cls(
            batch_size=int(settings.get("batch_size", DEFAULT_BATCH_SIZE)),
            batch_wait=float(settings.get("batch_wait_ms", DEFAULT_BATCH_WAIT_MS)) / 1000.0,
            threads=int(settings.get("threads", min(available_cpus(), MAX_THREADS))),
        )
