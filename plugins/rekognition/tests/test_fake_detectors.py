"""Both detectors end to end through boto3's real HTTP stack against
:class:`~policy_engine_rekognition.testing.FakeRekognition`: the requests the
service sees, the labels parsed from its answers, every error code of
API_FACTS.md, botocore's retries and the tps limit."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from policy_engine.detectors import DetectContext, Detector, DetectorResult
from policy_engine.errors import DetectorError
from policy_engine.image import Image
from policy_engine_rekognition.custom_labels import CustomLabelsDetector
from policy_engine_rekognition.moderation import ModerationDetector
from policy_engine_rekognition.testing import FakeRekognition

Context = Callable[..., DetectContext]

ADAPTER_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/mod/version/mod.1/1"
MODEL_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/version/logos.1/1"
HUMAN_LOOP = {
    "HumanLoopName": "review-1",
    "FlowDefinitionArn": "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/review",
    "DataAttributes": {"ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]},
}
HUMAN_LOOP_OUTPUT = {
    "HumanLoopArn": "arn:aws:sagemaker:us-east-1:123456789012:human-loop/review-1",
    "HumanLoopActivationReasons": ["ConditionsEvaluation"],
    "HumanLoopActivationConditionsEvaluationResults": '{"Conditions": []}',
}
MODERATION_RESPONSE: dict[str, Any] = {
    "ModerationModelVersion": "7.0",
    "ModerationLabels": [
        {
            "Name": "Weapon Violence",
            "ParentName": "Graphic Violence",
            "Confidence": 97.3,
            "TaxonomyLevel": 3,
        },
        {
            "Name": "Graphic Violence",
            "ParentName": "Violence",
            "Confidence": 97.3,
            "TaxonomyLevel": 2,
        },
        {"Name": "Violence", "ParentName": "", "Confidence": 97.3, "TaxonomyLevel": 1},
    ],
    "ContentTypes": [{"Name": "Illustrated", "Confidence": 88.1}],
}
GEOMETRY = {
    "BoundingBox": {"Width": 0.25, "Height": 0.5, "Left": 0.125, "Top": 0.0625},
    "Polygon": [{"X": 0.125, "Y": 0.0625}, {"X": 0.375, "Y": 0.0625}, {"X": 0.375, "Y": 0.5625}],
}
CUSTOM_LABELS_RESPONSE: dict[str, Any] = {
    "CustomLabels": [
        {"Name": "Acme Logo", "Confidence": 91.5, "Geometry": GEOMETRY},
        {"Name": "Counterfeit Tag", "Confidence": 72.0},
    ]
}


def settings_for(fake: FakeRekognition, **more: Any) -> dict[str, Any]:
    """Detector settings that reach ``fake``: standard retries, one attempt
    unless the test says otherwise. Region and credentials come from the
    environment (conftest's isolated_aws_environment)."""
    return {"endpoint_url": fake.endpoint_url, "retry_mode": "standard", "max_attempts": 1, **more}


def plain(value: Any) -> Any:
    """``value`` with every mapping a dict and every sequence a list, so that
    comparisons do not depend on how results freeze what they hold."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def data_of(image: Image) -> bytes:
    assert image.data is not None
    return image.data


def sha256(image: Image) -> str:
    return hashlib.sha256(data_of(image)).hexdigest()


# --- DetectModerationLabels end to end -----------------------------------------


def test_moderation_request_and_result_with_every_optional_field(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    fake.respond(
        data_of(jpeg),
        {
            **MODERATION_RESPONSE,
            "ProjectVersion": ADAPTER_ARN,
            "HumanLoopActivationOutput": HUMAN_LOOP_OUTPUT,
        },
    )
    detector = ModerationDetector()
    settings = settings_for(fake, adapter_arn=ADAPTER_ARN, human_loop=HUMAN_LOOP)

    result = detector.detect(jpeg, context(detector, settings, min_confidence=62.5))

    (call,) = fake.calls
    assert call.operation == "DetectModerationLabels"
    assert call.outcome == "ok" and call.status == 200
    assert call.image_sha256 == sha256(jpeg)
    assert call.request == {
        "Image": {"Sha256": sha256(jpeg), "Size": len(data_of(jpeg))},
        "MinConfidence": 62.5,
        "ProjectVersion": ADAPTER_ARN,
        "HumanLoopConfig": HUMAN_LOOP,
    }
    assert [
        (label.name, label.parent, label.confidence, label.model_version, plain(label.extra))
        for label in result.labels
    ] == [
        ("Weapon Violence", "Graphic Violence", 97.3, "7.0", {"taxonomy_level": 3}),
        ("Graphic Violence", "Violence", 97.3, "7.0", {"taxonomy_level": 2}),
        ("Violence", "", 97.3, "7.0", {"taxonomy_level": 1}),
    ]
    assert plain(result.metadata) == {
        "model_version": "7.0",
        "content_types": [{"Name": "Illustrated", "Confidence": 88.1}],
        "adapter": ADAPTER_ARN,
        "human_loop": HUMAN_LOOP_OUTPUT,
        "request_id": call.request_id,
    }


def test_moderation_sends_only_image_and_floor_without_optional_settings(
    fake: FakeRekognition, png: Image, context: Context
) -> None:
    detector = ModerationDetector()

    result = detector.detect(png, context(detector, settings_for(fake), min_confidence=50))

    assert fake.calls[0].request == {
        "Image": {"Sha256": sha256(png), "Size": len(data_of(png))},
        "MinConfidence": 50.0,
    }
    assert result.labels == ()  # the fake's default response
    assert result.metadata["model_version"] == "7.0"


def test_moderation_model_6_labels_have_no_taxonomy_level(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    fake.respond(
        data_of(jpeg),
        {
            "ModerationModelVersion": "6.1",
            "ModerationLabels": [
                {"Name": "Weapon Violence", "ParentName": "Violence", "Confidence": 80.0}
            ],
        },
    )
    detector = ModerationDetector()

    (label,) = detector.detect(jpeg, context(detector, settings_for(fake))).labels

    assert (label.name, label.parent, label.model_version, plain(label.extra)) == (
        "Weapon Violence",
        "Violence",
        "6.1",
        {},
    )


def test_each_image_gets_its_own_scripted_response(
    fake: FakeRekognition, jpeg: Image, png: Image, context: Context
) -> None:
    fake.respond(sha256(png), MODERATION_RESPONSE)  # by hash this time
    detector = ModerationDetector()

    assert detector.detect(jpeg, context(detector, settings_for(fake))).labels == ()
    assert len(detector.detect(png, context(detector, settings_for(fake))).labels) == 3


def test_region_from_aws_region_reaches_the_fake(
    fake: FakeRekognition, jpeg: Image, context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AWS_REGION alone (boto3 reads only AWS_DEFAULT_REGION): the detector supplies it.
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    detector = ModerationDetector()

    detector.detect(jpeg, context(detector, settings_for(fake)))

    assert fake.call_count("DetectModerationLabels") == 1


# --- DetectCustomLabels end to end ------------------------------------------------


def test_custom_labels_request_and_result(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    fake.respond(data_of(jpeg), CUSTOM_LABELS_RESPONSE)
    detector = CustomLabelsDetector()
    settings = settings_for(fake, project_version_arn=MODEL_ARN, max_results=5)

    result = detector.detect(jpeg, context(detector, settings, min_confidence=70))

    (call,) = fake.calls
    assert call.operation == "DetectCustomLabels"
    assert call.request == {
        "ProjectVersionArn": MODEL_ARN,
        "Image": {"Sha256": sha256(jpeg), "Size": len(data_of(jpeg))},
        "MaxResults": 5,
        "MinConfidence": 70.0,
    }
    assert [
        (label.name, label.parent, label.confidence, plain(label.extra)) for label in result.labels
    ] == [
        ("Acme Logo", "", 91.5, {"geometry": GEOMETRY}),
        ("Counterfeit Tag", "", 72.0, {}),
    ]
    assert plain(result.metadata) == {
        "project_version_arn": MODEL_ARN,
        "request_id": call.request_id,
    }


def test_custom_labels_model_thresholds_omit_min_confidence(
    fake: FakeRekognition, png: Image, context: Context
) -> None:
    detector = CustomLabelsDetector()
    settings = settings_for(fake, project_version_arn=MODEL_ARN, min_confidence="model")

    detector.detect(png, context(detector, settings, min_confidence=70))

    assert fake.calls[0].request == {
        "ProjectVersionArn": MODEL_ARN,
        "Image": {"Sha256": sha256(png), "Size": len(data_of(png))},
    }


def test_custom_labels_own_min_confidence_wins_over_the_policy_floor(
    fake: FakeRekognition, png: Image, context: Context
) -> None:
    detector = CustomLabelsDetector()
    settings = settings_for(fake, project_version_arn=MODEL_ARN, min_confidence=0)

    detector.detect(png, context(detector, settings, min_confidence=70))

    assert fake.calls[0].request["MinConfidence"] == 0.0
    assert "MaxResults" not in fake.calls[0].request


def test_moderation_and_custom_labels_responses_are_kept_apart(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    fake.respond(data_of(jpeg), MODERATION_RESPONSE)
    fake.respond(data_of(jpeg), CUSTOM_LABELS_RESPONSE)
    moderation, custom = ModerationDetector(), CustomLabelsDetector()

    moderation_labels = moderation.detect(jpeg, context(moderation, settings_for(fake))).labels
    custom_settings = settings_for(fake, project_version_arn=MODEL_ARN)
    custom_labels = custom.detect(jpeg, context(custom, custom_settings)).labels

    assert [label.name for label in moderation_labels] == [
        "Weapon Violence",
        "Graphic Violence",
        "Violence",
    ]
    assert [label.name for label in custom_labels] == ["Acme Logo", "Counterfeit Tag"]
    assert fake.call_count("DetectModerationLabels") == fake.call_count("DetectCustomLabels") == 1


def test_detectors_refuse_bad_images_before_the_server_sees_them(
    fake: FakeRekognition, gif: Image, context: Context
) -> None:
    detector = ModerationDetector()
    with pytest.raises(DetectorError) as raised:
        detector.detect(gif, context(detector, settings_for(fake)))
    assert raised.value.code == "unsupported-image-format"
    big = Image("big.jpg", b"\xff\xd8\xff" + b"\x00" * 4_194_302)  # 4,194,305 bytes
    custom = CustomLabelsDetector()
    with pytest.raises(DetectorError) as too_large:
        custom.detect(big, context(custom, settings_for(fake, project_version_arn=MODEL_ARN)))
    assert too_large.value.code == "image-too-large"
    assert fake.call_count() == 0


# --- every error code of API_FACTS.md, through the real stack --------------------

BOTH = ("DetectModerationLabels", "DetectCustomLabels")
# (code, HTTP status, operations, retryable as AWS documents it), API_FACTS.md's table
ERROR_TABLE: list[tuple[str, int, tuple[str, ...], bool]] = [
    ("ThrottlingException", 500, BOTH, True),
    ("ThrottlingException", 400, BOTH, True),
    ("ProvisionedThroughputExceededException", 400, BOTH, True),
    ("InternalServerError", 500, BOTH, True),
    ("LimitExceededException", 400, ("DetectCustomLabels",), False),
    ("InvalidImageFormatException", 400, BOTH, False),
    ("ImageTooLargeException", 400, BOTH, False),
    ("InvalidParameterException", 400, BOTH, False),
    ("InvalidS3ObjectException", 400, BOTH, False),
    ("AccessDeniedException", 400, BOTH, False),
    ("ResourceNotFoundException", 400, BOTH, False),
    ("ResourceNotReadyException", 400, BOTH, False),
    ("HumanLoopQuotaExceededException", 400, ("DetectModerationLabels",), False),
]
ERROR_CASES = [
    pytest.param(code, status, operation, retryable, id=f"{code}-{status}-{operation}")
    for code, status, operations, retryable in ERROR_TABLE
    for operation in operations
]
# A phrase of the advice each code's message must carry.
ADVICE = {
    "ThrottlingException": "throttled after 1 attempt;",
    "ProvisionedThroughputExceededException": "quota",
    "InternalServerError": "try again later",
    "LimitExceededException": "limit was exceeded",
    "InvalidImageFormatException": "valid JPEG or PNG",
    "ImageTooLargeException": "resize it",
    "InvalidParameterException": "check the detector settings",
    "InvalidS3ObjectException": "S3 object",
    "AccessDeniedException": "grant it the rekognition permission",
    "ResourceNotFoundException": "does not exist",
    "ResourceNotReadyException": "not ready",
    "HumanLoopQuotaExceededException": "human-loop quota",
}


def detector_and_settings(operation: str, fake: FakeRekognition) -> tuple[Detector, dict[str, Any]]:
    if operation == "DetectModerationLabels":
        return ModerationDetector(), settings_for(fake)
    return CustomLabelsDetector(), settings_for(fake, project_version_arn=MODEL_ARN)


@pytest.mark.parametrize(("code", "status", "operation", "retryable"), ERROR_CASES)
def test_every_documented_error_becomes_a_detector_error(
    fake: FakeRekognition,
    jpeg: Image,
    context: Context,
    code: str,
    status: int,
    operation: str,
    retryable: bool,
) -> None:
    fake.fail(code=code, status=status, message=f"the service says {code}")
    detector, settings = detector_and_settings(operation, fake)

    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings))

    error = raised.value
    assert error.code == code
    assert error.retryable is retryable
    message = str(error)
    assert message.startswith(
        f"{detector.name}: {operation} failed for image 'photos/cat.jpg': {code}"
    )
    assert f"(the service says {code})" in message
    if code == "ResourceNotReadyException" and operation == "DetectCustomLabels":
        assert "start-project-version" in message
    else:
        assert ADVICE[code] in message
    (call,) = fake.calls  # one attempt: max_attempts 1
    assert (call.status, call.outcome) == (status, code)


def test_human_loop_quota_error_names_the_quota(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    fake.fail(
        code="HumanLoopQuotaExceededException",
        fields={
            "ResourceType": "FlowDefinition",
            "QuotaCode": "L-1234ABCD",
            "ServiceCode": "sagemaker",
        },
    )
    detector = ModerationDetector()

    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings_for(fake, human_loop=HUMAN_LOOP)))

    assert "(ResourceType FlowDefinition, QuotaCode L-1234ABCD, ServiceCode sagemaker)" in str(
        raised.value
    )


def test_credentials_the_service_rejects_have_advice(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    fake.fail(
        code="UnrecognizedClientException", status=400, message="The security token is invalid"
    )
    detector = ModerationDetector()

    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings_for(fake)))

    assert raised.value.code == "UnrecognizedClientException"
    assert raised.value.retryable is False
    assert "credentials in use were rejected" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        pytest.param(500, b"", "500", id="empty-500"),
        pytest.param(
            503, "<html><body><b>Service Unavailable</b></body></html>", "503", id="html-503"
        ),
        pytest.param(502, "<html>Bad Gateway</html>", "502", id="html-502"),
    ],
)
def test_a_bodiless_server_error_is_a_retryable_detector_error(
    fake: FakeRekognition,
    jpeg: Image,
    context: Context,
    status: int,
    body: bytes | str,
    code: str,
) -> None:
    fake.fail(status=status, body=body)
    detector = ModerationDetector()

    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings_for(fake)))

    assert raised.value.code == code
    assert raised.value.retryable is True
    assert f"failed for image 'photos/cat.jpg': {code}" in str(raised.value)
    assert "try again later" in str(raised.value)
    assert fake.calls[0].outcome == code


# --- retries (botocore's, through the real stack) --------------------------------


@pytest.mark.usefixtures("instant_retries")
@pytest.mark.parametrize("throttle_status", [400, 500])
def test_throttled_twice_then_labels_within_three_attempts(
    jpeg: Image, context: Context, throttle_status: int
) -> None:
    with FakeRekognition(throttle_status=throttle_status) as fake:
        fake.throttle(times=2, then=MODERATION_RESPONSE)
        detector = ModerationDetector()

        result = detector.detect(jpeg, context(detector, settings_for(fake, max_attempts=3)))

        assert [label.name for label in result.labels][-1] == "Violence"
        assert fake.call_count() == 3
        assert [(call.status, call.outcome) for call in fake.calls] == [
            (throttle_status, "ThrottlingException"),
            (throttle_status, "ThrottlingException"),
            (200, "ok"),
        ]


@pytest.mark.usefixtures("instant_retries")
def test_throttling_past_max_attempts_is_a_retryable_detector_error(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    fake.throttle(times=3, then=MODERATION_RESPONSE)
    detector = ModerationDetector()

    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings_for(fake, max_attempts=3)))

    assert raised.value.code == "ThrottlingException"
    assert raised.value.retryable is True
    message = str(raised.value)
    assert "throttled after 3 attempts;" in message and "--rate" in message
    assert "retries ran out" not in message
    assert fake.call_count() == 3
    # The scripted success was never reached; the next call gets it.
    assert (
        len(detector.detect(jpeg, context(detector, settings_for(fake, max_attempts=3))).labels)
        == 3
    )


@pytest.mark.usefixtures("instant_retries")
def test_internal_server_error_is_retried(
    fake: FakeRekognition, png: Image, context: Context
) -> None:
    fake.fail(code="InternalServerError", status=500, times=1)
    fake.respond(data_of(png), MODERATION_RESPONSE)
    detector = ModerationDetector()

    result = detector.detect(png, context(detector, settings_for(fake, max_attempts=3)))

    assert len(result.labels) == 3
    assert [call.outcome for call in fake.calls] == ["InternalServerError", "ok"]


@pytest.mark.usefixtures("instant_retries")
def test_an_html_503_is_retried_then_succeeds(
    fake: FakeRekognition, png: Image, context: Context
) -> None:
    fake.fail(status=503, body="<html><body>Service Unavailable</body></html>", times=2)
    detector = ModerationDetector()

    detector.detect(png, context(detector, settings_for(fake, max_attempts=3)))

    assert [call.outcome for call in fake.calls] == ["503", "503", "ok"]


@pytest.mark.usefixtures("instant_retries")
def test_a_non_retryable_error_is_not_retried(
    fake: FakeRekognition, png: Image, context: Context
) -> None:
    fake.fail(code="AccessDeniedException", times=1)
    detector = ModerationDetector()

    with pytest.raises(DetectorError):
        detector.detect(png, context(detector, settings_for(fake, max_attempts=3)))

    assert fake.call_count() == 1


# --- the tps limit ------------------------------------------------------------------


def _burst(detector: Detector, image: Image, context: DetectContext, calls: int) -> list[Any]:
    """``calls`` detections from 4 threads; each outcome is a result or the error."""

    def one(_: int) -> DetectorResult | DetectorError:
        try:
            return detector.detect(image, context)
        except DetectorError as error:
            return error

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, range(calls)))


def test_tps_limit_throttles_a_burst_from_several_threads(jpeg: Image, context: Context) -> None:
    with FakeRekognition(tps=5) as fake:
        detector = ModerationDetector()
        outcomes = _burst(detector, jpeg, context(detector, settings_for(fake)), 20)

        errors = [outcome for outcome in outcomes if isinstance(outcome, DetectorError)]
        assert errors, "20 calls in a burst at tps=5: some must be throttled"
        assert {(error.code, error.retryable) for error in errors} == {
            ("ThrottlingException", True)
        }
        assert len(errors) <= 15  # the first 5 in any second get through
        served = [call.outcome for call in fake.calls]
        assert len(served) == 20
        assert served.count("ThrottlingException") == len(errors)
        assert {call.status for call in fake.calls if not call.ok} == {400}


def test_tps_limit_counts_exactly_within_one_second(jpeg: Image, context: Context) -> None:
    now = [1000.0]
    with FakeRekognition(tps=5, clock=lambda: now[0]) as fake:  # time stands still
        detector = ModerationDetector()
        outcomes = _burst(detector, jpeg, context(detector, settings_for(fake)), 20)

        assert sum(isinstance(outcome, DetectorResult) for outcome in outcomes) == 5
        assert [call.outcome for call in fake.calls].count("ThrottlingException") == 15

        now[0] = 1000.5  # still inside the window
        with pytest.raises(DetectorError):
            detector.detect(jpeg, context(detector, settings_for(fake)))
        now[0] = 1001.0  # the first five have left the window
        outcomes = _burst(detector, jpeg, context(detector, settings_for(fake)), 8)
        assert sum(isinstance(outcome, DetectorResult) for outcome in outcomes) == 5


# --- latency ------------------------------------------------------------------------


def test_latency_delays_every_answer(jpeg: Image, context: Context) -> None:
    with FakeRekognition() as fake:
        detector = ModerationDetector()
        detector.detect(jpeg, context(detector, settings_for(fake)))  # builds the client
        fake.latency = 0.3
        assert fake.latency == 0.3
        started = time.monotonic()
        detector.detect(jpeg, context(detector, settings_for(fake)))
        assert time.monotonic() - started >= 0.3
    with FakeRekognition(latency=0.3) as slow:
        client = boto3_client(slow)
        started = time.monotonic()
        client.detect_moderation_labels(Image={"Bytes": data_of(jpeg)})
        assert time.monotonic() - started >= 0.3


def boto3_client(fake: FakeRekognition) -> Any:
    import boto3

    client = boto3.client("rekognition", endpoint_url=fake.endpoint_url)
    return client


def test_a_read_timeout_shorter_than_the_latency_is_a_timeout_error(
    jpeg: Image, context: Context
) -> None:
    with FakeRekognition(latency=2.0) as fake:
        detector = ModerationDetector()
        with pytest.raises(DetectorError) as raised:
            detector.detect(jpeg, context(detector, settings_for(fake, read_timeout=0.2)))
        assert (raised.value.code, raised.value.retryable) == ("timeout", True)
