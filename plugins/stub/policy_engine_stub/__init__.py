"""The ``stub`` detector: replays recorded detector responses and returns fixed
labels, so policies can be run and tested without a network or AWS."""

from __future__ import annotations

from policy_engine_stub.detector import StubDetector
from policy_engine_stub.settings import SETTINGS_SCHEMA, StubSettings

__all__ = ["SETTINGS_SCHEMA", "StubDetector", "StubSettings"]
