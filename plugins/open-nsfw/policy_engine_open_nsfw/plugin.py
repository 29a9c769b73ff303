"""Entry point of the ``open-nsfw`` plugin (``[project.entry-points.policy_engine]``)."""

from __future__ import annotations

from collections.abc import Callable

from policy_engine import Detector, hookimpl
from policy_engine_open_nsfw.detector import OpenNsfwDetector


@hookimpl
def policy_engine_register_detectors(register: Callable[[Detector], None]) -> None:
    register(OpenNsfwDetector())
