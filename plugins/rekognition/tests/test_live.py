"""Live calls through a real botocore client with a Stubber (no network):
request shapes, results, pre-call checks and error mapping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from policy_engine.detectors import DetectContext, Detector
from policy_engine.errors import DetectorError, InvalidDetectorResult
from policy_engine.image import Image
from policy_engine_rekognition.client import ClientSettings
from policy_engine_rekognition.custom_labels import CustomLabelsDetector
from policy_engine_rekognition.moderation import ModerationDetector

ADAPTER_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/mod/version/mod.1/1"
MODEL_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/version/logos.1/1"
HUMAN_LOOP = {
    "HumanLoopName": "review-1",
    "FlowDefinitionArn": "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/review",
    "DataAttributes": {"ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]},
}
MODERATION_RESPONSE = {
    "ModerationModelVersion": "7.0",
    "ModerationLabels": [
        {"Name": "Weapons", "ParentName": "Violence", "Confidence": 93.5, "TaxonomyLevel": 2},
        {"Name": "Violence", "ParentName": "", "Confidence": 93.5, "TaxonomyLevel": 1},
    ],
    "ResponseMetadata": {"RequestId": "req-1234", "HTTPStatusCode": 200},
}
CUSTOM_LABELS_RESPONSE = {
    "CustomLabels": [
        {"Name": "MyLogo", "Confidence": 88.0, "Geometry": {"BoundingBox": {"Width": 0.5}}},
    ],
    "ResponseMetadata": {"RequestId": "req-5678", "HTTPStatusCode": 200},
}

Context = Callable[..., DetectContext]


def _returning(client: object) -> Callable[[ClientSettings], Any]:
    """A client_factory handing out a hand-written client (which need not
    implement both operations)."""
    return lambda settings: client


def _never_called(settings: ClientSettings) -> Any:
    raise AssertionError("the client must not be built for an image that fails the checks")


# --- request shapes ---------------------------------------------------------


def test_moderation_sends_bytes_and_the_policy_floor(
    stubbed: Any, jpeg: Image, context: Context
) -> None:
    detector = ModerationDetector(client_factory=stubbed.factory)
    stubbed.stubber.add_response(
        "detect_moderation_labels",
        MODERATION_RESPONSE,
        expected_params={"Image": {"Bytes": jpeg.data}, "MinConfidence": 60.0},
    )

    result = detector.detect(jpeg, context(detector, {}, min_confidence=60))

    assert [(label.name, label.parent, label.confidence) for label in result.labels] == [
        ("Weapons", "Violence", 93.5),
        ("Violence", "", 93.5),
    ]
    assert dict(result.metadata) == {"model_version": "7.0", "request_id": "req-1234"}
    assert result.raw is not None and "ResponseMetadata" not in result.raw
    assert detector.parse(result.raw).labels == result.labels


def test_moderation_sends_adapter_and_human_loop_when_set(
    stubbed: Any, png: Image, context: Context
) -> None:
    detector = ModerationDetector(client_factory=stubbed.factory)
    stubbed.stubber.add_response(
        "detect_moderation_labels",
        {**MODERATION_RESPONSE, "ProjectVersion": ADAPTER_ARN},
        expected_params={
            "Image": {"Bytes": png.data},
            "MinConfidence": 50.0,
            "ProjectVersion": ADAPTER_ARN,
            "HumanLoopConfig": HUMAN_LOOP,
        },
    )
    settings = {"adapter_arn": ADAPTER_ARN, "human_loop": HUMAN_LOOP}

    result = detector.detect(png, context(detector, settings))

    assert result.metadata["adapter"] == ADAPTER_ARN


def test_custom_labels_sends_arn_max_results_and_the_policy_floor(
    stubbed: Any, jpeg: Image, context: Context
) -> None:
    detector = CustomLabelsDetector(client_factory=stubbed.factory)
    stubbed.stubber.add_response(
        "detect_custom_labels",
        CUSTOM_LABELS_RESPONSE,
        expected_params={
            "ProjectVersionArn": MODEL_ARN,
            "Image": {"Bytes": jpeg.data},
            "MaxResults": 10,
            "MinConfidence": 70.0,
        },
    )
    settings = {"project_version_arn": MODEL_ARN, "max_results": 10}

    result = detector.detect(jpeg, context(detector, settings, min_confidence=70))

    (label,) = result.labels
    assert (label.name, label.parent, label.confidence) == ("MyLogo", "", 88.0)
    assert label.extra["geometry"] == {"BoundingBox": {"Width": 0.5}}
    assert dict(result.metadata) == {"project_version_arn": MODEL_ARN, "request_id": "req-5678"}


def test_custom_labels_min_confidence_setting_overrides_the_policy_floor(
    stubbed: Any, jpeg: Image, context: Context
) -> None:
    detector = CustomLabelsDetector(client_factory=stubbed.factory)
    stubbed.stubber.add_response(
        "detect_custom_labels",
        CUSTOM_LABELS_RESPONSE,
        expected_params={
            "ProjectVersionArn": MODEL_ARN,
            "Image": {"Bytes": jpeg.data},
            "MinConfidence": 0.0,
        },
    )
    detector.detect(
        jpeg, context(detector, {"project_version_arn": MODEL_ARN, "min_confidence": 0})
    )


def test_custom_labels_min_confidence_model_omits_min_confidence(
    stubbed: Any, jpeg: Image, context: Context
) -> None:
    detector = CustomLabelsDetector(client_factory=stubbed.factory)
    # expected_params must match exactly, so MinConfidence and MaxResults are absent.
    stubbed.stubber.add_response(
        "detect_custom_labels",
        CUSTOM_LABELS_RESPONSE,
        expected_params={"ProjectVersionArn": MODEL_ARN, "Image": {"Bytes": jpeg.data}},
    )
    settings = {"project_version_arn": MODEL_ARN, "min_confidence": "model"}
    assert detector.detect(jpeg, context(detector, settings)).labels


def test_custom_labels_without_project_version_arn_is_a_clear_error(
    jpeg: Image, context: Context
) -> None:
    detector = CustomLabelsDetector(client_factory=_never_called)
    with pytest.raises(DetectorError, match="project_version_arn") as raised:
        detector.detect(jpeg, context(detector, {}))
    assert raised.value.code == "invalid-settings"


def test_invalid_live_response_is_an_invalid_result(
    stubbed: Any, jpeg: Image, context: Context
) -> None:
    # The Stubber validates responses against the model, so the bad confidence
    # comes from a hand-written client instead.
    class BadClient:
        def detect_moderation_labels(self, **request: Any) -> dict[str, Any]:
            return {"ModerationLabels": [{"Name": "Violence", "Confidence": float("nan")}]}

    detector = ModerationDetector(client_factory=_returning(BadClient()))
    with pytest.raises(InvalidDetectorResult) as raised:
        detector.detect(jpeg, context(detector))
    assert raised.value.field == "ModerationLabels[0].Confidence"


# --- pre-call checks --------------------------------------------------------

DETECTORS: list[tuple[Callable[..., Detector], dict[str, Any], int]] = [
    (ModerationDetector, {}, 5_242_880),
    (CustomLabelsDetector, {"project_version_arn": MODEL_ARN}, 4_194_304),
]
DETECTOR_IDS = ["moderation", "custom-labels"]


@pytest.mark.parametrize(("make", "settings", "limit"), DETECTORS, ids=DETECTOR_IDS)
def test_empty_image_is_refused_before_calling(
    make: Callable[..., Detector], settings: dict[str, Any], limit: int, context: Context
) -> None:
    detector = make(client_factory=_never_called)
    with pytest.raises(DetectorError) as raised:
        detector.detect(Image(name="uploads/empty.jpg", data=b""), context(detector, settings))
    message = str(raised.value)
    assert raised.value.code == "empty-image"
    assert "'uploads/empty.jpg'" in message and "empty" in message and "JPEG or PNG" in message


@pytest.mark.parametrize(("make", "settings", "limit"), DETECTORS, ids=DETECTOR_IDS)
def test_image_over_the_byte_limit_is_refused_before_calling(
    make: Callable[..., Detector], settings: dict[str, Any], limit: int, context: Context
) -> None:
    detector = make(client_factory=_never_called)
    image = Image(name="big.jpg", data=b"\xff\xd8\xff" + b"\x00" * (limit - 2))
    with pytest.raises(DetectorError) as raised:
        detector.detect(image, context(detector, settings))
    assert raised.value.code == "image-too-large"
    assert f"{limit:,}" in str(raised.value) and "'big.jpg'" in str(raised.value)


@pytest.mark.parametrize(("make", "settings", "limit"), DETECTORS, ids=DETECTOR_IDS)
def test_image_at_the_byte_limit_is_sent(
    make: Callable[..., Detector], settings: dict[str, Any], limit: int, context: Context
) -> None:
    image = Image(name="exact.jpg", data=b"\xff\xd8\xff" + b"\x00" * (limit - 3))
    sent: list[int] = []

    class RecordingClient:
        def detect_moderation_labels(self, **request: Any) -> dict[str, Any]:
            sent.append(len(request["Image"]["Bytes"]))
            return {"ModerationLabels": []}

        def detect_custom_labels(self, **request: Any) -> dict[str, Any]:
            sent.append(len(request["Image"]["Bytes"]))
            return {"CustomLabels": []}

    detector = make(client_factory=_returning(RecordingClient()))
    assert detector.detect(image, context(detector, settings)).labels == ()
    assert sent == [limit]


@pytest.mark.parametrize(("make", "settings", "limit"), DETECTORS, ids=DETECTOR_IDS)
def test_gif_is_refused_before_calling(
    make: Callable[..., Detector],
    settings: dict[str, Any],
    limit: int,
    gif: Image,
    context: Context,
) -> None:
    detector = make(client_factory=_never_called)
    with pytest.raises(DetectorError) as raised:
        detector.detect(gif, context(detector, settings))
    message = str(raised.value)
    assert raised.value.code == "unsupported-image-format"
    assert "'photos/cat.gif'" in message and "GIF" in message and "JPEG or PNG" in message


def test_unknown_bytes_are_refused_as_not_an_image(context: Context) -> None:
    detector = ModerationDetector(client_factory=_never_called)
    with pytest.raises(DetectorError, match="not a recognised image format"):
        detector.detect(Image(name="notes.txt", data=b"hello"), context(detector))


# --- error mapping ----------------------------------------------------------

# API_FACTS.md's error table: code, HTTP status, operations, retryable.
ERROR_TABLE = [
    ("ThrottlingException", 500, "both", True),
    ("ThrottlingException", 400, "both", True),
    ("ProvisionedThroughputExceededException", 400, "both", True),
    ("InternalServerError", 500, "both", True),
    ("LimitExceededException", 400, "custom", False),
    ("InvalidImageFormatException", 400, "both", False),
    ("ImageTooLargeException", 400, "both", False),
    ("InvalidParameterException", 400, "both", False),
    ("InvalidS3ObjectException", 400, "both", False),
    ("AccessDeniedException", 400, "both", False),
    ("ResourceNotFoundException", 400, "both", False),
    ("ResourceNotReadyException", 400, "both", False),
    ("HumanLoopQuotaExceededException", 400, "moderation", False),
]
CASES = [
    pytest.param(code, status, operation, retryable, id=f"{operation}-{code}-{status}")
    for code, status, operations, retryable in ERROR_TABLE
    for operation in ("moderation", "custom")
    if operations in ("both", operation)
]


def _failing_call(
    stubbed: Any, operation: str, code: str, status: int, **error: Any
) -> tuple[Detector, dict[str, Any], str]:
    make: Callable[..., Detector]
    if operation == "moderation":
        method, make, settings = "detect_moderation_labels", ModerationDetector, {}
    else:
        method, make, settings = (
            "detect_custom_labels",
            CustomLabelsDetector,
            {"project_version_arn": MODEL_ARN},
        )
    stubbed.stubber.add_client_error(
        method,
        service_error_code=code,
        service_message=error.pop("message", f"stubbed {code}"),
        http_status_code=status,
        **error,
    )
    return make(client_factory=stubbed.factory), settings, method


@pytest.mark.parametrize(("code", "status", "operation", "retryable"), CASES)
def test_service_error_maps_to_a_detector_error(
    code: str,
    status: int,
    operation: str,
    retryable: bool,
    stubbed: Any,
    jpeg: Image,
    context: Context,
) -> None:
    detector, settings, _ = _failing_call(stubbed, operation, code, status)

    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings))

    error = raised.value
    assert type(error) is DetectorError
    assert error.code == code
    assert error.retryable is retryable
    message = str(error)
    assert code in message and f"stubbed {code}" in message
    assert detector.name in message and "'photos/cat.jpg'" in message
    assert isinstance(error.__cause__, Exception)


def test_model_not_running_says_how_to_start_it(
    stubbed: Any, jpeg: Image, context: Context
) -> None:
    detector, settings, _ = _failing_call(stubbed, "custom", "ResourceNotReadyException", 400)
    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings))
    assert "not running" in str(raised.value)
    assert "aws rekognition start-project-version" in str(raised.value)


def test_human_loop_quota_error_names_the_quota(
    stubbed: Any, jpeg: Image, context: Context
) -> None:
    detector, settings, _ = _failing_call(
        stubbed,
        "moderation",
        "HumanLoopQuotaExceededException",
        400,
        modeled_fields={
            "ResourceType": "human-loop",
            "QuotaCode": "L-123",
            "ServiceCode": "sagemaker",
        },
    )
    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings))
    assert "QuotaCode L-123" in str(raised.value)
    assert "ResourceType human-loop" in str(raised.value)


@pytest.mark.parametrize(
    ("code", "retryable"), [("500", True), ("503", True), ("SomethingNew", False)]
)
def test_unknown_error_codes_are_retryable_only_when_server_side(
    code: str, retryable: bool, stubbed: Any, jpeg: Image, context: Context
) -> None:
    status = int(code) if code.isdigit() else 400
    detector, settings, _ = _failing_call(stubbed, "moderation", code, status)
    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings))
    assert raised.value.code == code
    assert raised.value.retryable is retryable


def test_rejected_credentials_get_advice(stubbed: Any, jpeg: Image, context: Context) -> None:
    detector, settings, _ = _failing_call(
        stubbed,
        "moderation",
        "UnrecognizedClientException",
        400,
        message="The security token included in the request is invalid.",
    )
    with pytest.raises(DetectorError, match="credentials in use were rejected"):
        detector.detect(jpeg, context(detector, settings))


def test_access_key_ids_never_appear_in_messages(
    stubbed: Any, jpeg: Image, context: Context
) -> None:
    detector, settings, _ = _failing_call(
        stubbed,
        "moderation",
        "AccessDeniedException",
        400,
        message="Key AKIAIOSFODNN7EXAMPLE may not call rekognition:DetectModerationLabels",
    )
    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings))
    assert "AKIAIOSFODNN7EXAMPLE" not in str(raised.value)
    assert "rekognition:DetectModerationLabels" in str(raised.value)


def test_other_exceptions_pass_through_unchanged(jpeg: Image, context: Context) -> None:
    class BrokenClient:
        def detect_moderation_labels(self, **request: Any) -> dict[str, Any]:
            raise ZeroDivisionError("bug")

    detector = ModerationDetector(client_factory=_returning(BrokenClient()))
    with pytest.raises(ZeroDivisionError):
        detector.detect(jpeg, context(detector))
