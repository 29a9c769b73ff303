"""``--record`` and ``--cache`` with both detectors, through boto3 to FakeRekognition:
a cache hit gives the record a live call would (what the settings tell
included), and settings that only change how Rekognition is reached do not
make the cache miss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policy_engine import Detector, Image, parse_policy
from policy_engine.engine import Engine
from policy_engine.plugins import DetectorRegistry, RegisteredDetector
from policy_engine.recordings import RecordingStore
from policy_engine_rekognition.custom_labels import CustomLabelsDetector
from policy_engine_rekognition.moderation import ADAPTER_NOT_USED, ModerationDetector
from policy_engine_rekognition.testing import FakeRekognition

ADAPTER_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/mod/version/mod.1/1"
MODEL_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/version/logos.1/1"
MODERATION = {
    "ModerationModelVersion": "7.0",
    "ModerationLabels": [{"Name": "Violence", "ParentName": "", "Confidence": 90.0}],
}
CUSTOM_LABELS = {"CustomLabels": [{"Name": "Acme Logo", "Confidence": 91.5}]}


def engine(detector: Detector, settings: dict[str, Any], **options: Any) -> Engine:
    registry = DetectorRegistry([RegisteredDetector(detector, "test")])
    body = ", ".join(f"{key}: {value!r}" for key, value in settings.items())
    policy = parse_policy(
        f"version: 1\nname: cache\ndetectors:\n  {detector.name}: {{{body}}}\n"
        "rules:\n  - id: v\n    match: {name: Violence}\n    review_at: 60\n    block_at: 95\n",
        registry=registry,
    )
    return Engine(policy, registry, **options)


def reached_otherwise(fake: FakeRekognition) -> dict[str, Any]:
    """Another region, retry mode, attempt count and timeouts: the same question."""
    return {
        "endpoint_url": fake.endpoint_url,
        "region": "eu-west-1",
        "retry_mode": "legacy",
        "max_attempts": 5,
        "connect_timeout": 7,
        "read_timeout": 30,
    }


@pytest.mark.parametrize(
    ("detector_type", "asked", "response"),
    [
        (ModerationDetector, {"adapter_arn": ADAPTER_ARN}, MODERATION),
        (CustomLabelsDetector, {"project_version_arn": MODEL_ARN}, CUSTOM_LABELS),
    ],
)
def test_a_cache_hit_records_what_the_live_call_did(
    fake: FakeRekognition,
    jpeg: Image,
    tmp_path: Path,
    detector_type: type[Detector],
    asked: dict[str, Any],
    response: dict[str, Any],
) -> None:
    fake.respond(jpeg.data or b"", response)  # for moderation: no ProjectVersion, a fallback
    store = RecordingStore(tmp_path)
    live_settings = {"endpoint_url": fake.endpoint_url, "retry_mode": "standard", **asked}
    live = engine(detector_type(), live_settings, record=store).check(jpeg)

    cached_engine = engine(detector_type(), {**reached_otherwise(fake), **asked}, cache=store)
    cached = cached_engine.check(jpeg)

    assert fake.call_count() == 1, "region, retries and timeouts do not change the answer"
    assert cached_engine.counter.cached == 1
    (live_meta,) = live.to_dict()["detectors"].values()
    (cached_meta,) = cached.to_dict()["detectors"].values()
    assert cached_meta.pop("from_cache") is True
    assert "request_id" in live_meta and "request_id" not in cached_meta
    del live_meta["request_id"]
    assert cached_meta == live_meta
    assert cached.to_dict()["labels"] == live.to_dict()["labels"]


def test_the_expired_adapter_warning_survives_the_cache(
    fake: FakeRekognition, jpeg: Image, tmp_path: Path
) -> None:
    fake.respond(jpeg.data or b"", MODERATION)
    store = RecordingStore(tmp_path)
    settings = {"endpoint_url": fake.endpoint_url, "adapter_arn": ADAPTER_ARN}
    engine(ModerationDetector(), settings, record=store).check(jpeg)

    cached = engine(ModerationDetector(), settings, cache=store).check(jpeg)

    (meta,) = cached.to_dict()["detectors"].values()
    assert meta["adapter"] is None and meta["adapter_requested"] == ADAPTER_ARN
    assert meta["warning"] == ADAPTER_NOT_USED


@pytest.mark.parametrize(
    ("detector_type", "first", "second"),
    [
        (ModerationDetector, {}, {"adapter_arn": ADAPTER_ARN}),
        (
            CustomLabelsDetector,
            {"project_version_arn": MODEL_ARN},
            {"project_version_arn": MODEL_ARN, "max_results": 5},
        ),
        (
            CustomLabelsDetector,
            {"project_version_arn": MODEL_ARN},
            {"project_version_arn": MODEL_ARN + "0"},
        ),
    ],
)
def test_settings_that_change_the_question_miss_the_cache(
    fake: FakeRekognition,
    jpeg: Image,
    tmp_path: Path,
    detector_type: type[Detector],
    first: dict[str, Any],
    second: dict[str, Any],
) -> None:
    store = RecordingStore(tmp_path)
    reach = {"endpoint_url": fake.endpoint_url}
    engine(detector_type(), {**reach, **first}, record=store).check(jpeg)

    again = engine(detector_type(), {**reach, **second}, cache=store)
    again.check(jpeg)

    assert fake.call_count() == 2 and again.counter.cached == 0
