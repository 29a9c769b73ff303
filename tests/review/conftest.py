"""Fixtures shared by the review tools' tests."""

from __future__ import annotations

import pytest

from policy_engine import DetectorRegistry


@pytest.fixture(scope="module")
def registry() -> DetectorRegistry:
    return DetectorRegistry.installed()
