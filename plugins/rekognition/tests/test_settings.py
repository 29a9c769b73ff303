"""The detectors' settings schemas."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import pytest

from policy_engine_rekognition.custom_labels import CustomLabelsDetector
from policy_engine_rekognition.moderation import ModerationDetector

ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/version/logos.1/1"
SCHEMAS = {
    "moderation": ModerationDetector.settings_schema,
    "custom-labels": CustomLabelsDetector.settings_schema,
}
CLIENT_SETTINGS = {
    "region",
    "profile",
    "endpoint_url",
    "retry_mode",
    "max_attempts",
    "connect_timeout",
    "read_timeout",
}


def _objects(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    if "properties" in schema:
        yield path or "(root)", schema
        for name, sub in schema["properties"].items():
            yield from _objects(sub, f"{path}.{name}")


def _validator(schema: Mapping[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
def test_schema_is_valid_draft_2020_12_and_json_serialisable(schema: Mapping[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json.loads(json.dumps(schema)) == schema


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
def test_every_object_is_closed_and_every_property_described(schema: Mapping[str, Any]) -> None:
    objects = list(_objects(schema))
    assert objects
    for path, obj in objects:
        assert obj.get("additionalProperties") is False, path
        for name, prop in obj["properties"].items():
            assert isinstance(prop.get("description"), str) and prop["description"], (
                f"{path}.{name}"
            )


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
def test_client_settings_are_shared(schema: Mapping[str, Any]) -> None:
    assert set(schema["properties"]) >= CLIENT_SETTINGS
    assert (
        ModerationDetector.settings_schema["properties"]["retry_mode"]
        == CustomLabelsDetector.settings_schema["properties"]["retry_mode"]
    )


VALID_MODERATION = [
    {},
    {"region": "eu-west-1", "profile": "moderation", "retry_mode": "standard", "max_attempts": 1},
    {"endpoint_url": "http://127.0.0.1:4566", "connect_timeout": 0.5, "read_timeout": 10},
    {"adapter_arn": ARN},
    {
        "human_loop": {
            "HumanLoopName": "review-1",
            "FlowDefinitionArn": "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/f",
            "DataAttributes": {"ContentClassifiers": ["FreeOfAdultContent"]},
        }
    },
]
INVALID_MODERATION = [
    pytest.param({"regoin": "eu-west-1"}, id="typo"),
    pytest.param({"retry_mode": "fast"}, id="retry-mode"),
    pytest.param({"max_attempts": 0}, id="max-attempts-zero"),
    pytest.param({"max_attempts": 2.5}, id="max-attempts-float"),
    pytest.param({"connect_timeout": 0}, id="timeout-zero"),
    pytest.param({"read_timeout": -1}, id="timeout-negative"),
    pytest.param({"endpoint_url": "localhost:4566"}, id="endpoint-no-scheme"),
    pytest.param(
        {"human_loop": {"HumanLoopName": "Review_1", "FlowDefinitionArn": "x"}}, id="loop-name"
    ),
    pytest.param({"human_loop": {"HumanLoopName": "review"}}, id="loop-no-flow"),
    pytest.param(
        {"human_loop": {"HumanLoopName": "r", "FlowDefinitionArn": "x", "Extra": 1}},
        id="loop-extra-key",
    ),
    pytest.param({"project_version_arn": ARN}, id="custom-labels-setting"),
]


@pytest.mark.parametrize("settings", VALID_MODERATION)
def test_valid_moderation_settings_pass(settings: dict[str, Any]) -> None:
    _validator(ModerationDetector.settings_schema).validate(settings)


@pytest.mark.parametrize("settings", INVALID_MODERATION)
def test_invalid_moderation_settings_fail(settings: dict[str, Any]) -> None:
    assert not _validator(ModerationDetector.settings_schema).is_valid(settings)


VALID_CUSTOM_LABELS = [
    {"project_version_arn": ARN},
    {"project_version_arn": ARN, "max_results": 0, "min_confidence": 0},
    {"project_version_arn": ARN, "max_results": 5, "min_confidence": 100},
    {"project_version_arn": ARN, "min_confidence": "model", "region": "us-west-2"},
]
INVALID_CUSTOM_LABELS = [
    pytest.param({}, id="arn-missing"),
    pytest.param({"project_version_arn": ARN, "max_results": -1}, id="max-results-negative"),
    pytest.param({"project_version_arn": ARN, "min_confidence": 100.5}, id="min-confidence-101"),
    pytest.param(
        {"project_version_arn": ARN, "min_confidence": -0.1}, id="min-confidence-negative"
    ),
    pytest.param({"project_version_arn": ARN, "min_confidence": "auto"}, id="min-confidence-word"),
    pytest.param({"project_version_arn": ARN, "adapter_arn": ARN}, id="moderation-setting"),
]


@pytest.mark.parametrize("settings", VALID_CUSTOM_LABELS)
def test_valid_custom_labels_settings_pass(settings: dict[str, Any]) -> None:
    _validator(CustomLabelsDetector.settings_schema).validate(settings)


@pytest.mark.parametrize("settings", INVALID_CUSTOM_LABELS)
def test_invalid_custom_labels_settings_fail(settings: dict[str, Any]) -> None:
    assert not _validator(CustomLabelsDetector.settings_schema).is_valid(settings)


# -- the settings check when a policy loads (Detector.lint_settings) ------------------

DETECTORS = [ModerationDetector(), CustomLabelsDetector()]


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
@pytest.mark.parametrize(
    ("region", "guess"),
    [
        ("us-esat-1", "(did you mean us-east-1?)"),
        ("eu-west-9", "eu-west-1 or eu-west-2"),
        ("mars-north-1", ""),
    ],
)
def test_a_region_botocore_does_not_know_is_warned_about(
    detector: ModerationDetector | CustomLabelsDetector, region: str, guess: str
) -> None:
    (finding,) = detector.lint_settings({"region": region, "project_version_arn": ARN})
    assert (finding.path, finding.code) == (("region",), "unknown-region")
    assert f"region '{region}' is not a Rekognition region botocore knows" in finding.message
    assert guess in finding.message
    assert ("did you mean" in finding.message) == bool(guess)


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
@pytest.mark.parametrize(
    "settings",
    [
        {"region": "eu-west-1"},
        {"region": "US-GOV-WEST-1"},  # another partition, another case
        {},
        {"region": "us-esat-1", "endpoint_url": "http://127.0.0.1:9"},  # the region only signs
    ],
)
def test_known_regions_and_endpoint_urls_are_not_warned_about(
    detector: ModerationDetector | CustomLabelsDetector, settings: dict[str, Any]
) -> None:
    assert detector.lint_settings(settings) == ()


def test_the_known_regions_are_botocores() -> None:
    import botocore.session

    from policy_engine_rekognition.errors import _known_rekognition_regions

    session = botocore.session.Session()
    assert _known_rekognition_regions() == {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("rekognition", partition_name=partition)
    }


def test_checking_a_region_imports_no_botocore() -> None:
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import sys
        from policy_engine.loader import check_policy_text
        from policy_engine.plugins import DetectorRegistry
        registry = DetectorRegistry.installed(environ={"POLICY_ENGINE_PLUGINS": "rekognition"})
        text = (
            "version: 1\\nname: p\\ndetectors: {rekognition-moderation: {region: us-esat-1}}\\n"
            "rules: []\\n"
        )
        codes = [d.code for d in check_policy_text(text, registry=registry).diagnostics]
        loaded = [m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore")]
        print(codes, loaded)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert completed.stdout.strip() == "['unknown-region'] []", completed
