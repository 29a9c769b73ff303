"""Shared helpers for the core test suite: throwaway detectors and small policy builders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from policy_engine import Detector, DetectorRegistry
from policy_engine.plugins import RegisteredDetector


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
