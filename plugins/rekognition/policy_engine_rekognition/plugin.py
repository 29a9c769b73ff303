"""The policy-engine plugin: registers the two Rekognition detectors.

Loaded through the ``policy_engine`` entry point ``rekognition``. Importing it
must not import boto3 (a test checks this).
"""

from __future__ import annotations

from collections.abc import Callable

from policy_engine.detectors import Detector
from policy_engine.hookspecs import hookimpl
from policy_engine_rekognition.custom_labels import CustomLabelsDetector
from policy_engine_rekognition.moderation import ModerationDetector


@hookimpl
def policy_engine_register_detectors(register: Callable[[Detector], None]) -> None:
    register(ModerationDetector())
    register(CustomLabelsDetector())
