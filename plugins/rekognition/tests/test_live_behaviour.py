"""The connection pool sized to the run's concurrency, LimitExceededException
never retried, clearer throttling and not-ready messages, and an expired
adapter's fallback recorded: through boto3's real stack to FakeRekognition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from policy_engine.detectors import DetectContext, Detector
from policy_engine.errors import DetectorError
from policy_engine.image import Image
from policy_engine_rekognition.client import (
    ClientCache,
    ClientSettings,
    build_client,
    call_rekognition,
)
from policy_engine_rekognition.custom_labels import CustomLabelsDetector
from policy_engine_rekognition.errors import to_detector_error
from policy_engine_rekognition.moderation import ADAPTER_NOT_USED, ModerationDetector
from policy_engine_rekognition.testing import FakeRekognition

Context = Callable[..., DetectContext]
ADAPTER_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/mod/version/mod.1/1"
MODEL_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/version/logos.1/1"
LABELS = {
    "ModerationModelVersion": "7.0",
    "ModerationLabels": [{"Name": "Violence", "ParentName": "", "Confidence": 90.0}],
}


def settings_for(fake: FakeRekognition, **more: Any) -> dict[str, Any]:
    return {"endpoint_url": fake.endpoint_url, "retry_mode": "standard", "max_attempts": 1, **more}


def with_concurrency(detector: Detector, settings: dict[str, Any], concurrency: int) -> Any:
    return DetectContext(
        settings=settings,
        min_confidence=50,
        base_dir=".",
        parse_response=detector.parse,
        concurrency=concurrency,
    )


# --- connection pool ------------------------------------------------------------------

both_detectors = pytest.mark.parametrize(
    ("detector", "extra"),
    [(ModerationDetector, {}), (CustomLabelsDetector, {"project_version_arn": MODEL_ARN})],
)


@both_detectors
def test_the_pool_is_sized_to_the_concurrency(
    fake: FakeRekognition, jpeg: Image, detector: type[Detector], extra: dict[str, Any]
) -> None:
    built: list[Any] = []

    def recording_factory(settings: ClientSettings) -> Any:
        client = build_client(settings)
        built.append(client)
        return client

    instance = detector(client_factory=recording_factory)  # type: ignore[call-arg]
    settings = settings_for(fake, **extra)
    for concurrency in (32, 32, 1, 4, 10, 11):
        instance.detect(jpeg, with_concurrency(instance, settings, concurrency))

    # One client per pool size (the cache key includes it); 1, 4 and 10 share botocore's 10.
    assert [client.meta.config.max_pool_connections for client in built] == [32, 10, 11]


@both_detectors
def test_prepare_builds_the_client_the_calls_then_use(
    fake: FakeRekognition, jpeg: Image, detector: type[Detector], extra: dict[str, Any]
) -> None:
    """The engine prepares a detector before its first rate-limited slot, so
    that building the client (about a second) never delays a call past it."""
    built: list[ClientSettings] = []

    def recording_factory(settings: ClientSettings) -> Any:
        built.append(settings)
        return build_client(settings)

    instance = detector(client_factory=recording_factory)  # type: ignore[call-arg]
    context = with_concurrency(instance, settings_for(fake, **extra), 4)

    instance.prepare(context)
    assert len(built) == 1 and fake.call_count() == 0  # built, nothing sent
    instance.detect(jpeg, context)
    assert len(built) == 1 and fake.call_count() == 1


def test_client_settings_carry_the_pool_size() -> None:
    assert ClientSettings.from_settings({}).max_pool_connections == 10
    assert ClientSettings.from_settings({}, concurrency=64).max_pool_connections == 64
    assert ClientSettings.from_settings({}, concurrency=64) != ClientSettings.from_settings({})
    assert (
        build_client(ClientSettings(max_pool_connections=50)).meta.config.max_pool_connections == 50
    )


# --- retries ---------------------------------------------------------------------------


@pytest.mark.usefixtures("instant_retries")
@pytest.mark.parametrize("retry_mode", ["standard", "adaptive", "legacy"])
def test_limit_exceeded_is_never_retried(
    fake: FakeRekognition, jpeg: Image, context: Context, retry_mode: str
) -> None:
    fake.fail(code="LimitExceededException", times=1)
    detector = CustomLabelsDetector()
    settings = settings_for(
        fake, project_version_arn=MODEL_ARN, retry_mode=retry_mode, max_attempts=3
    )

    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings))

    assert raised.value.code == "LimitExceededException"
    assert raised.value.retryable is False
    assert fake.call_count() == 1
    # The veto is for that code only: a throttle is still retried, then succeeds.
    fake.throttle(times=1)
    detector.detect(jpeg, context(detector, settings))
    assert [call.outcome for call in fake.calls] == [
        "LimitExceededException",
        "ThrottlingException",
        "ok",
    ]


def test_throttling_with_one_attempt_says_one_attempt(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    fake.throttle(times=1)
    detector = ModerationDetector()

    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings_for(fake)))

    message = str(raised.value)
    assert "throttled after 1 attempt;" in message
    assert "retries ran out" not in message
    assert "--rate" in message and "quota" in message


@pytest.mark.usefixtures("instant_retries")
def test_provisioned_throughput_exceeded_counts_attempts(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    fake.fail(code="ProvisionedThroughputExceededException", times=2)
    detector = ModerationDetector()

    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings_for(fake, max_attempts=2)))

    assert "throttled after 2 attempts;" in str(raised.value)


def test_a_stubbed_throttle_without_retry_count_names_no_count(
    stubbed: Any, jpeg: Image, context: Context
) -> None:
    stubbed.stubber.add_client_error(
        "detect_moderation_labels", service_error_code="ThrottlingException", http_status_code=400
    )
    detector = ModerationDetector(client_factory=stubbed.factory)

    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector))

    message = str(raised.value)
    assert "attempt" not in message and "retries ran out" not in message
    assert "throttling this account" in message


# --- ResourceNotReadyException -------------------------------------------------------------


def test_not_ready_without_an_adapter_does_not_talk_about_one(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    fake.fail(code="ResourceNotReadyException", times=1)
    detector = ModerationDetector()

    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings_for(fake)))

    message = str(raised.value)
    assert "adapter" not in message
    assert "not ready" in message and "base moderation model" in message


def test_not_ready_with_an_adapter_names_it(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    fake.fail(code="ResourceNotReadyException", times=1)
    detector = ModerationDetector()

    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings_for(fake, adapter_arn=ADAPTER_ARN)))

    assert "adapter named in adapter_arn is not ready" in str(raised.value)


# A model in another region than the client's (us-east-1, from the environment).
EU_MODEL_ARN = (
    "arn:aws:rekognition:eu-west-1:123456789012:project/logos/version/"
    "logos.2024-05-01T10.00.00/1714557600000"
)


def test_a_model_not_running_gets_the_commands_to_start_it(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    fake.fail(code="ResourceNotReadyException", operation="DetectCustomLabels", times=1)
    detector = CustomLabelsDetector()
    settings = settings_for(fake, project_version_arn=EU_MODEL_ARN)

    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings))

    error = raised.value
    assert (error.code, error.retryable) == ("ResourceNotReadyException", False)
    message = str(error)
    assert "the model is not running: start it with" in message
    # The model's region comes from its ARN, not from the client's.
    assert (
        f"`aws rekognition start-project-version --project-version-arn {EU_MODEL_ARN} "
        "--min-inference-units 1 --region eu-west-1`"
    ) in message
    assert (
        "`aws rekognition wait project-version-running --project-arn <project_arn> "
        "--version-names logos.2024-05-01T10.00.00 --region eu-west-1`"
    ) in message
    assert (
        "<project_arn>: the model's project, listed by `aws rekognition describe-projects "
        "--region eu-west-1`" in message
    )
    assert (
        f"`aws rekognition stop-project-version --project-version-arn {EU_MODEL_ARN} "
        "--region eu-west-1`"
    ) in message
    assert "billed per hour" in message
    assert "<project_version_arn>" not in message and "<version_name>" not in message
    assert fake.calls[0].request["ProjectVersionArn"] == EU_MODEL_ARN


def test_without_a_model_arn_the_commands_keep_placeholders() -> None:
    from botocore.exceptions import ClientError

    not_running = ClientError(
        {"Error": {"Code": "ResourceNotReadyException", "Message": "not running"}},
        "DetectCustomLabels",
    )
    error = to_detector_error(
        not_running,
        detector="rekognition-custom-labels",
        operation="DetectCustomLabels",
        image_name="a.jpg",
    )

    assert error is not None
    message = str(error)
    assert "--project-version-arn <project_version_arn> --min-inference-units 1`" in message
    assert "--project-arn <project_arn> --version-names <version_name>`" in message
    assert "--region" not in message


def test_call_rekognition_reads_the_model_from_the_request(
    fake: FakeRekognition, jpeg: Image
) -> None:
    fake.fail(code="ResourceNotReadyException")
    settings = ClientSettings(endpoint_url=fake.endpoint_url, retry_mode="standard", max_attempts=1)

    def call(**model: str) -> str:
        with pytest.raises(DetectorError) as raised:
            call_rekognition(
                ClientCache(build_client),
                settings,
                "DetectModerationLabels",
                {"Image": {"Bytes": jpeg.data}, **model},
                detector="rekognition-moderation",
                image=jpeg,
            )
        return str(raised.value)

    assert "adapter named in adapter_arn is not ready" in call(ProjectVersion=ADAPTER_ARN)
    assert "base moderation model" in call()


# --- expired adapter -------------------------------------------------------------------------


def test_an_adapter_that_was_not_used_is_recorded_with_a_warning(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    fake.respond(jpeg.data or b"", LABELS)  # no ProjectVersion: the base model answered
    detector = ModerationDetector()

    result = detector.detect(jpeg, context(detector, settings_for(fake, adapter_arn=ADAPTER_ARN)))

    assert fake.calls[0].request["ProjectVersion"] == ADAPTER_ARN
    assert result.metadata["adapter"] is None
    assert result.metadata["adapter_requested"] == ADAPTER_ARN
    assert result.metadata["warning"] == ADAPTER_NOT_USED
    assert "not used" in ADAPTER_NOT_USED and "expired" in ADAPTER_NOT_USED
    assert "base moderation model" in ADAPTER_NOT_USED
    assert [label.name for label in result.labels] == ["Violence"]


def test_an_adapter_that_was_used_has_no_warning(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    fake.respond(jpeg.data or b"", {**LABELS, "ProjectVersion": ADAPTER_ARN})
    detector = ModerationDetector()

    result = detector.detect(jpeg, context(detector, settings_for(fake, adapter_arn=ADAPTER_ARN)))

    assert result.metadata["adapter"] == ADAPTER_ARN
    assert "warning" not in result.metadata and "adapter_requested" not in result.metadata


def test_no_adapter_requested_no_adapter_metadata(
    fake: FakeRekognition, jpeg: Image, context: Context
) -> None:
    detector = ModerationDetector()

    result = detector.detect(jpeg, context(detector, settings_for(fake)))

    assert not {"adapter", "adapter_requested", "warning"} & set(result.metadata)
