"""The policy-engine plugin: registers the two Rekognition detectors, and
lists ``s3://`` inputs for ``policy-engine check``.

Loaded through the ``policy_engine`` entry point ``rekognition``. Importing it
must not import boto3 (a test checks this).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from policy_engine import Detector, Image, hookimpl
from policy_engine_rekognition.custom_labels import CustomLabelsDetector
from policy_engine_rekognition.moderation import ModerationDetector
from policy_engine_rekognition.s3_inputs import expand_s3_input


@hookimpl
def policy_engine_register_detectors(register: Callable[[Detector], None]) -> None:
    register(ModerationDetector())
    register(CustomLabelsDetector())


@hookimpl
def policy_engine_expand_input(spec: str) -> Iterable[Image] | None:
    """``s3://bucket/prefix/``, ``s3://bucket/key`` and ``s3://bucket/key?versionId=V``
    as images known by URI (listed lazily); None for any other input."""
    return expand_s3_input(spec)
