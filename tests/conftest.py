"""Shared helpers for the core test suite: throwaway detectors and small policy builders."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from policy_engine import Detector, DetectorRegistry
from policy_engine.plugins import RegisteredDetector

# Test modules import shared builders (policy_builders) by name: --import-mode=importlib
# does not put this folder on the path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parent))


class SettingsDetector(Detector):
    """A detector whose only purpose is to declare a settings schema."""

    name: ClassVar[str] = "throwaway"
    settings_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["region"],
        "properties": {
            "region": {"type": "string"},
            "threshold": {"type": "number", "minimum": 0, "maximum": 100},
        },
    }


@pytest.fixture
def settings_registry() -> DetectorRegistry:
    return DetectorRegistry([RegisteredDetector(SettingsDetector(), "throwaway-plugin")])
