"""Entry point of the ``stub`` plugin (``[project.entry-points.policy_engine]``)."""

from __future__ import annotations

from collections.abc import Callable

from policy_engine import Detector, hookimpl
from policy_engine_stub.detector import StubDetector


@hookimpl
def policy_engine_register_detectors(register: Callable[[Detector], None]) -> None:
    register(StubDetector())
