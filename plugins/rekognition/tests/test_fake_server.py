"""FakeRekognition as a server: what a plain boto3 client (its real HTTP stack,
``endpoint_url``) sees, its scripting and recording API, its validation, and
that it leaves no port or thread behind."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest

from policy_engine_rekognition.testing import ANY, DEFAULT_RESPONSES, FakeRekognition

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 32
PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 32
GIF = b"GIF89a" + b"\x03" * 32
MODEL_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/version/logos.1/1"
LABELS = {
    "ModerationModelVersion": "7.0",
    "ModerationLabels": [
        {"Name": "Alcohol", "ParentName": "", "Confidence": 91.2, "TaxonomyLevel": 1}
    ],
}


def rekognition(fake: FakeRekognition, **config: Any) -> Any:
    """A plain boto3 client for ``fake``: no retries unless ``retries`` is given."""
    import boto3
    from botocore.config import Config

    config.setdefault("retries", {"mode": "standard", "total_max_attempts": 1})
    return boto3.client("rekognition", endpoint_url=fake.endpoint_url, config=Config(**config))


def aws_error(call: Any) -> tuple[str, int, str]:
    """(code, HTTP status, message) of the ClientError ``call()`` raises."""
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"].get("Message", ""),
    )


def post(fake: FakeRekognition, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """A hand-made request, for what boto3 will not send."""
    address = urlsplit(fake.endpoint_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


SIGNED = {
    "Authorization": "AWS4-HMAC-SHA256 "
    "Credential=testing/20240101/us-east-1/rekognition/aws4_request, "
    "SignedHeaders=host;x-amz-target, Signature=00",
    "Content-Type": "application/x-amz-json-1.1",
}


@pytest.fixture
def client(fake: FakeRekognition) -> Any:
    return rekognition(fake)


# --- answers --------------------------------------------------------------------


def test_default_responses_for_both_operations(fake: FakeRekognition, client: Any) -> None:
    moderation = client.detect_moderation_labels(Image={"Bytes": JPEG})
    custom = client.detect_custom_labels(ProjectVersionArn=MODEL_ARN, Image={"Bytes": PNG})

    assert moderation["ModerationLabels"] == [] and moderation["ModerationModelVersion"] == "7.0"
    assert custom["CustomLabels"] == []
    assert dict(DEFAULT_RESPONSES["DetectCustomLabels"]) == {"CustomLabels": []}
    assert moderation["ResponseMetadata"]["RequestId"] == fake.calls[0].request_id


def test_set_default_changes_what_unscripted_images_get(fake: FakeRekognition, client: Any) -> None:
    fake.set_default({"ModerationLabels": [], "ModerationModelVersion": "6.1"})
    fake.set_default({"CustomLabels": [{"Name": "Logo", "Confidence": 99.0}]})

    assert client.detect_moderation_labels(Image={"Bytes": JPEG})["ModerationModelVersion"] == "6.1"
    custom = client.detect_custom_labels(ProjectVersionArn=MODEL_ARN, Image={"Bytes": JPEG})
    assert custom["CustomLabels"] == [{"Name": "Logo", "Confidence": 99.0}]

    fake.reset()
    assert client.detect_moderation_labels(Image={"Bytes": JPEG})["ModerationModelVersion"] == "7.0"
    assert fake.call_count() == 1  # reset cleared the calls too


def test_respond_by_bytes_by_sha256_and_per_operation(fake: FakeRekognition, client: Any) -> None:
    fake.respond(JPEG, LABELS)
    fake.respond(hashlib.sha256(PNG).hexdigest().upper(), {"ModerationLabels": []})
    fake.respond(PNG, {"CustomLabels": [{"Name": "Logo", "Confidence": 80.0}]})

    assert (
        client.detect_moderation_labels(Image={"Bytes": JPEG})["ModerationLabels"][0]["Name"]
        == "Alcohol"
    )
    assert client.detect_moderation_labels(Image={"Bytes": PNG})["ModerationLabels"] == []
    assert (
        client.detect_custom_labels(ProjectVersionArn=MODEL_ARN, Image={"Bytes": JPEG})[
            "CustomLabels"
        ]
        == []
    )  # JPEG's script was for moderation only
    assert client.detect_custom_labels(ProjectVersionArn=MODEL_ARN, Image={"Bytes": PNG})[
        "CustomLabels"
    ] == [{"Name": "Logo", "Confidence": 80.0}]


def test_respond_replaces_the_earlier_script_for_an_image(
    fake: FakeRekognition, client: Any
) -> None:
    fake.respond(JPEG, LABELS)
    fake.respond(JPEG, {"ModerationLabels": [], "ModerationModelVersion": "7.1"})

    assert client.detect_moderation_labels(Image={"Bytes": JPEG})["ModerationModelVersion"] == "7.1"


def test_s3_images_are_keyed_by_uri_and_version(fake: FakeRekognition, client: Any) -> None:
    fake.respond("s3://uploads/a.jpg", LABELS)
    fake.respond(
        "s3://uploads/a.jpg?versionId=v2", {"ModerationLabels": [], "ModerationModelVersion": "7.2"}
    )

    latest = client.detect_moderation_labels(
        Image={"S3Object": {"Bucket": "uploads", "Name": "a.jpg"}}
    )
    versioned = client.detect_moderation_labels(
        Image={"S3Object": {"Bucket": "uploads", "Name": "a.jpg", "Version": "v2"}}
    )
    other = client.detect_moderation_labels(
        Image={"S3Object": {"Bucket": "uploads", "Name": "b.jpg"}}
    )

    assert latest["ModerationLabels"][0]["Name"] == "Alcohol"
    assert versioned["ModerationModelVersion"] == "7.2"
    assert other["ModerationLabels"] == []
    first = fake.calls[0]
    assert (first.image, first.image_sha256) == ("s3://uploads/a.jpg", None)
    assert first.request == {"Image": {"S3Object": {"Bucket": "uploads", "Name": "a.jpg"}}}
    assert fake.calls[1].image == "s3://uploads/a.jpg?versionId=v2"


def test_unknown_fields_in_a_scripted_response_are_dropped_by_botocore(
    fake: FakeRekognition, client: Any
) -> None:
    fake.respond(JPEG, {**LABELS, "SomethingNew": 1})

    assert "SomethingNew" not in client.detect_moderation_labels(Image={"Bytes": JPEG})


# --- scripted failures -------------------------------------------------------------


def test_fail_times_then_scripted_response_and_order_of_scripts(
    fake: FakeRekognition, client: Any
) -> None:
    fake.respond(JPEG, LABELS)
    fake.fail(JPEG, code="InternalServerError", status=500, times=2)
    fake.fail(ANY, code="AccessDeniedException", times=1)

    codes = [
        aws_error(lambda: client.detect_moderation_labels(Image={"Bytes": JPEG}))[:2]
        for _ in range(3)
    ]

    assert codes == [
        ("InternalServerError", 500),
        ("InternalServerError", 500),
        ("AccessDeniedException", 400),
    ]
    assert (
        client.detect_moderation_labels(Image={"Bytes": JPEG})["ModerationLabels"][0]["Name"]
        == "Alcohol"
    )
    assert [call.outcome for call in fake.calls] == [
        "InternalServerError",
        "InternalServerError",
        "AccessDeniedException",
        "ok",
    ]


def test_fail_always_for_one_image_and_operation_only(fake: FakeRekognition, client: Any) -> None:
    fake.fail(
        PNG,
        code="InvalidImageFormatException",
        message="corrupt",
        operation="DetectModerationLabels",
    )

    for _ in range(3):
        assert aws_error(lambda: client.detect_moderation_labels(Image={"Bytes": PNG})) == (
            "InvalidImageFormatException",
            400,
            "corrupt",
        )
    client.detect_moderation_labels(Image={"Bytes": JPEG})
    client.detect_custom_labels(ProjectVersionArn=MODEL_ARN, Image={"Bytes": PNG})
    assert [call.ok for call in fake.calls] == [False, False, False, True, True]


def test_scripted_failure_comes_before_validation(fake: FakeRekognition, client: Any) -> None:
    fake.fail(code="AccessDeniedException", times=1)

    # An invalid request still gets the scripted failure first, then the service's check.
    assert (
        aws_error(lambda: client.detect_moderation_labels(Image={"Bytes": GIF}))[0]
        == "AccessDeniedException"
    )
    assert aws_error(lambda: client.detect_moderation_labels(Image={"Bytes": GIF}))[0] == (
        "InvalidImageFormatException"
    )


def test_throttle_then_answers_once_then_falls_back(fake: FakeRekognition, client: Any) -> None:
    fake.throttle(times=2, then=LABELS)

    for _ in range(2):
        assert aws_error(lambda: client.detect_moderation_labels(Image={"Bytes": JPEG})) == (
            "ThrottlingException",
            400,
            "Rate exceeded",
        )
    assert (
        client.detect_moderation_labels(Image={"Bytes": JPEG})["ModerationLabels"][0]["Name"]
        == "Alcohol"
    )
    assert client.detect_moderation_labels(Image={"Bytes": JPEG})["ModerationLabels"] == []


def test_throttle_status_is_configurable() -> None:
    with FakeRekognition(throttle_status=500) as fake:
        fake.throttle()
        assert aws_error(lambda: rekognition(fake).detect_moderation_labels(Image={"Bytes": JPEG}))[
            :2
        ] == (
            "ThrottlingException",
            500,
        )
        fake.throttle_status = 400
        fake.throttle(status=503)
        assert (
            aws_error(lambda: rekognition(fake).detect_moderation_labels(Image={"Bytes": JPEG}))[1]
            == 503
        )


@pytest.mark.usefixtures("instant_retries")
def test_botocore_retries_a_throttle_and_the_fake_counts_every_attempt(
    fake: FakeRekognition,
) -> None:
    fake.throttle(times=2)
    client = rekognition(fake, retries={"mode": "standard", "max_attempts": 2})  # 2 retries

    response = client.detect_moderation_labels(Image={"Bytes": JPEG})

    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert fake.call_count() == 3


def test_human_loop_quota_error_carries_its_fields(fake: FakeRekognition, client: Any) -> None:
    from botocore.exceptions import ClientError

    fake.fail(code="HumanLoopQuotaExceededException")
    with pytest.raises(ClientError) as raised:
        client.detect_moderation_labels(Image={"Bytes": JPEG})

    response = raised.value.response
    assert response["Error"]["Code"] == "HumanLoopQuotaExceededException"
    assert {key: response[key] for key in ("ResourceType", "QuotaCode", "ServiceCode")} == {
        "ResourceType": "HumanLoop",
        "QuotaCode": "L-FAKE0001",
        "ServiceCode": "sagemaker",
    }


def test_raw_bodies_become_status_named_errors(fake: FakeRekognition, client: Any) -> None:
    fake.fail(status=500, body=b"", times=1)
    fake.fail(status=503, body="<html><body>Service Unavailable</body></html>", times=1)

    assert aws_error(lambda: client.detect_moderation_labels(Image={"Bytes": JPEG}))[:2] == (
        "500",
        500,
    )
    assert aws_error(lambda: client.detect_moderation_labels(Image={"Bytes": JPEG}))[:2] == (
        "503",
        503,
    )
    assert [call.outcome for call in fake.calls] == ["500", "503"]


# --- the service's own checks -------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        pytest.param(
            {"Image": {"Bytes": JPEG}, "MinConfidence": 150.0},
            "InvalidParameterException",
            id="150",
        ),
        pytest.param({"Image": {"Bytes": b""}}, "InvalidParameterException", id="empty"),
        pytest.param({"Image": {"Bytes": GIF}}, "InvalidImageFormatException", id="gif"),
        pytest.param(
            {"Image": {"Bytes": b"\xff\xd8"}}, "InvalidImageFormatException", id="short-jpeg"
        ),
        pytest.param(
            {"Image": {"Bytes": JPEG[:3] + b"\x00" * (5_242_881 - 3)}},
            "ImageTooLargeException",
            id="5242881-bytes",
        ),
    ],
)
def test_moderation_checks_what_botocore_does_not(
    fake: FakeRekognition, client: Any, request_: dict[str, Any], code: str
) -> None:
    error_code, status, message = aws_error(lambda: client.detect_moderation_labels(**request_))

    assert (error_code, status) == (code, 400)
    assert message
    assert fake.calls[0].outcome == code


def test_negative_min_confidence_is_refused_by_the_fake_too(fake: FakeRekognition) -> None:
    client = rekognition(fake, parameter_validation=False)  # botocore checks minimums itself

    error = aws_error(
        lambda: client.detect_moderation_labels(Image={"Bytes": JPEG}, MinConfidence=-1)
    )

    assert error == (
        "InvalidParameterException",
        400,
        "MinConfidence must be between 0 and 100, got -1",
    )
    assert (
        aws_error(
            lambda: client.detect_custom_labels(
                ProjectVersionArn=MODEL_ARN, Image={"Bytes": JPEG}, MaxResults=-1
            )
        )[0]
        == "InvalidParameterException"
    )


def test_moderation_accepts_the_limits_themselves(fake: FakeRekognition, client: Any) -> None:
    client.detect_moderation_labels(Image={"Bytes": JPEG}, MinConfidence=0.0)
    client.detect_moderation_labels(Image={"Bytes": PNG}, MinConfidence=100.0)
    largest = JPEG[:3] + b"\x00" * (5_242_880 - 3)
    client.detect_moderation_labels(Image={"Bytes": largest})

    assert [call.outcome for call in fake.calls] == ["ok", "ok", "ok"]
    assert fake.calls[2].request["Image"]["Size"] == 5_242_880


def png_of(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk: all the fake reads of an image's size."""
    size = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return PNG[:8] + (13).to_bytes(4, "big") + b"IHDR" + size + b"\x08\x02\x00\x00\x00" * 2


@pytest.mark.parametrize(
    ("operation", "width", "height", "code"),
    [
        ("DetectModerationLabels", 80, 10_000, None),
        ("DetectModerationLabels", 79, 500, "InvalidParameterException"),
        ("DetectModerationLabels", 10_001, 500, "ImageTooLargeException"),
        ("DetectModerationLabels", 20_000, 50, "InvalidParameterException"),  # as the detector
        ("DetectCustomLabels", 64, 1280, None),  # 20:1 exactly
        ("DetectCustomLabels", 64, 1281, "InvalidParameterException"),
        ("DetectCustomLabels", 63, 63, "InvalidParameterException"),
        ("DetectCustomLabels", 4097, 300, "ImageTooLargeException"),
    ],
)
def test_pixel_limits_are_checked_from_a_readable_header(
    fake: FakeRekognition, client: Any, operation: str, width: int, height: int, code: str | None
) -> None:
    """As Rekognition does, for clients that send images without our detectors' checks."""
    image = {"Bytes": png_of(width, height)}
    call = {
        "DetectModerationLabels": lambda: client.detect_moderation_labels(Image=image),
        "DetectCustomLabels": lambda: client.detect_custom_labels(
            ProjectVersionArn=MODEL_ARN, Image=image
        ),
    }[operation]
    if code is None:
        call()
    else:
        assert aws_error(call)[:2] == (code, 400)
    assert fake.calls[0].outcome == (code or "ok")


def test_custom_labels_image_limit_is_4_mib(fake: FakeRekognition, client: Any) -> None:
    largest = PNG + b"\x00" * (4_194_304 - len(PNG))

    client.detect_custom_labels(ProjectVersionArn=MODEL_ARN, Image={"Bytes": largest})
    assert (
        aws_error(
            lambda: client.detect_custom_labels(
                ProjectVersionArn=MODEL_ARN, Image={"Bytes": largest + b"\x00"}
            )
        )[0]
        == "ImageTooLargeException"
    )
    # The same 4 MiB + 1 image is fine for moderation.
    client.detect_moderation_labels(Image={"Bytes": largest + b"\x00"})


def test_custom_labels_without_project_version_arn(fake: FakeRekognition) -> None:
    client = rekognition(fake, parameter_validation=False)  # botocore would refuse to send it

    assert aws_error(lambda: client.detect_custom_labels(Image={"Bytes": JPEG}))[:2] == (
        "InvalidParameterException",
        400,
    )
    assert (
        aws_error(lambda: client.detect_moderation_labels(Image={}))[0]
        == "InvalidParameterException"
    )
    assert (
        aws_error(
            lambda: client.detect_moderation_labels(
                Image={"Bytes": JPEG, "S3Object": {"Bucket": "b", "Name": "n"}}
            )
        )[0]
        == "InvalidParameterException"
    )


def test_unknown_operation(fake: FakeRekognition, client: Any) -> None:
    code, status, message = aws_error(lambda: client.detect_faces(Image={"Bytes": JPEG}))

    assert (code, status) == ("UnknownOperationException", 400)
    assert "RekognitionService.DetectFaces" in message
    assert fake.calls[0].operation == "DetectFaces"
    status, body = post(fake, b"{}", SIGNED)  # no X-Amz-Target at all
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    headers = {**SIGNED, "X-Amz-Target": "DetectModerationLabels"}  # no service prefix
    assert post(fake, b"{}", headers)[1]["__type"] == "UnknownOperationException"


def test_unsigned_requests_are_refused(fake: FakeRekognition) -> None:
    from botocore import UNSIGNED

    unsigned = rekognition(fake, signature_version=UNSIGNED)

    assert aws_error(lambda: unsigned.detect_moderation_labels(Image={"Bytes": JPEG}))[:2] == (
        "MissingAuthenticationTokenException",
        403,
    )
    assert fake.calls[0].status == 403


def test_a_body_that_is_not_json(fake: FakeRekognition) -> None:
    headers = {**SIGNED, "X-Amz-Target": "RekognitionService.DetectModerationLabels"}

    status, body = post(fake, b"{not json", headers)

    assert (status, body["__type"]) == (400, "SerializationException")
    status, body = post(fake, json.dumps({"Image": {"Bytes": "!!"}}).encode(), headers)
    assert (status, body["__type"]) == (400, "InvalidParameterException")
    status, body = post(
        fake, json.dumps({"Image": {"Bytes": base64.b64encode(JPEG).decode()}}).encode(), headers
    )
    assert (status, body) == (200, {"ModerationLabels": [], "ModerationModelVersion": "7.0"})


# --- recording ------------------------------------------------------------------------


def test_calls_record_the_request_without_the_bytes(fake: FakeRekognition, client: Any) -> None:
    before = time.time()
    client.detect_custom_labels(ProjectVersionArn=MODEL_ARN, Image={"Bytes": PNG}, MaxResults=3)
    after = time.time()

    (call,) = fake.calls
    assert call.operation == "DetectCustomLabels"
    assert call.request == {
        "ProjectVersionArn": MODEL_ARN,
        "Image": {"Sha256": hashlib.sha256(PNG).hexdigest(), "Size": len(PNG)},
        "MaxResults": 3,
    }
    assert call.image == call.image_sha256 == hashlib.sha256(PNG).hexdigest()
    assert before <= call.timestamp <= after
    assert (call.status, call.outcome, call.ok) == (200, "ok", True)
    assert base64.b64encode(PNG).decode() not in json.dumps(call.request)


def test_call_count_by_operation_and_thread_safety(fake: FakeRekognition, client: Any) -> None:
    def one(index: int) -> str:
        if index % 2:
            response = client.detect_custom_labels(
                ProjectVersionArn=MODEL_ARN, Image={"Bytes": JPEG}
            )
        else:
            response = client.detect_moderation_labels(Image={"Bytes": JPEG})
        request_id: str = response["ResponseMetadata"]["RequestId"]
        return request_id

    with ThreadPoolExecutor(max_workers=4) as pool:
        request_ids = list(pool.map(one, range(40)))

    assert fake.call_count() == 40
    assert fake.call_count("DetectModerationLabels") == fake.call_count("DetectCustomLabels") == 20
    assert fake.call_count("DetectFaces") == 0
    assert sorted(request_ids) == sorted(call.request_id for call in fake.calls)
    assert len(set(request_ids)) == 40


def test_calls_is_a_snapshot(fake: FakeRekognition, client: Any) -> None:
    snapshot = fake.calls
    client.detect_moderation_labels(Image={"Bytes": JPEG})

    assert snapshot == [] and len(fake.calls) == 1


def test_tps_window_slides() -> None:
    now = [50.0]
    with FakeRekognition(tps=2, clock=lambda: now[0]) as limited:
        client = rekognition(limited)
        client.detect_moderation_labels(Image={"Bytes": JPEG})
        now[0] = 50.6
        client.detect_moderation_labels(Image={"Bytes": JPEG})
        now[0] = 50.9
        assert aws_error(lambda: client.detect_moderation_labels(Image={"Bytes": JPEG}))[0] == (
            "ThrottlingException"
        )
        now[0] = 51.0  # the call at 50.0 has left the window, the one at 50.6 has not
        client.detect_moderation_labels(Image={"Bytes": JPEG})
        assert aws_error(lambda: client.detect_moderation_labels(Image={"Bytes": JPEG}))[0] == (
            "ThrottlingException"
        )
        limited.tps = None
        client.detect_moderation_labels(Image={"Bytes": JPEG})
        assert [call.ok for call in limited.calls] == [True, True, False, True, False, True]


# --- arguments --------------------------------------------------------------------------


def test_arguments_are_checked_when_scripting() -> None:
    fake = FakeRekognition()
    with pytest.raises(ValueError, match="cannot tell the operation"):
        fake.respond(JPEG, {"Labels": []})
    with pytest.raises(ValueError, match="operation must be one of"):
        fake.respond(JPEG, LABELS, operation="DetectFaces")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hex sha256"):
        fake.respond("cat.jpg", LABELS)
    with pytest.raises(TypeError, match="JSON-serialisable"):
        fake.respond(JPEG, {"ModerationLabels": [object()]})
    with pytest.raises(ValueError, match="status"):
        fake.fail(code="AccessDeniedException", status=200)
    with pytest.raises(ValueError, match="times"):
        fake.fail(times=0)
    with pytest.raises(ValueError, match="times"):
        fake.throttle(times=0)
    with pytest.raises(ValueError, match="latency"):
        fake.latency = -1
    with pytest.raises(ValueError, match="tps"):
        FakeRekognition(tps=0)
    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.endpoint_url


def test_scripts_are_copies(fake: FakeRekognition, client: Any) -> None:
    response: dict[str, Any] = {"ModerationLabels": [], "ModerationModelVersion": "7.0"}
    fake.respond(JPEG, response)
    response["ModerationModelVersion"] = "changed"

    assert client.detect_moderation_labels(Image={"Bytes": JPEG})["ModerationModelVersion"] == "7.0"


# --- lifecycle and hygiene ------------------------------------------------------------------


def port_of(fake: FakeRekognition) -> int:
    port = urlsplit(fake.endpoint_url).port
    assert port is not None
    return port


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def threads_before() -> Iterator[set[threading.Thread]]:
    yield set(threading.enumerate())


def test_with_closes_the_port_and_joins_every_thread(threads_before: set[threading.Thread]) -> None:
    with FakeRekognition(latency=0.01) as fake:
        port = port_of(fake)
        assert fake.endpoint_url == f"http://127.0.0.1:{port}"
        client = rekognition(fake)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(
                pool.map(lambda _: client.detect_moderation_labels(Image={"Bytes": JPEG}), range(8))
            )
        # boto3 keeps its connections open (keep-alive): the fake holds threads for them.
        assert len(set(threading.enumerate()) - threads_before) >= 2
        assert not refuses_connections(port)

    assert not fake.running
    assert refuses_connections(port)
    assert set(threading.enumerate()) - threads_before == set()


def test_stop_cuts_a_slow_answer_short(threads_before: set[threading.Thread]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    fake = FakeRekognition(latency=60).start()
    client = rekognition(fake)
    outcome: list[BaseException] = []

    def slow_call() -> None:
        try:
            client.detect_moderation_labels(Image={"Bytes": JPEG})
        except (BotoCoreError, ClientError) as error:
            outcome.append(error)

    caller = threading.Thread(target=slow_call)
    caller.start()
    deadline = time.monotonic() + 10
    while not any(t.name.startswith("FakeRekognition request") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the call never reached the fake"
        time.sleep(0.01)
    fake.stop()
    caller.join(timeout=30)

    assert not caller.is_alive()
    assert outcome, "the client must see the connection end, not a response"
    assert fake.calls == []  # unanswered, unrecorded
    assert set(threading.enumerate()) - threads_before == set()


def test_start_stop_and_restart() -> None:
    fake = FakeRekognition()
    fake.stop()  # stopping a fake that never started is fine
    fake.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            fake.start()
        first_port = port_of(fake)
        rekognition(fake).detect_moderation_labels(Image={"Bytes": JPEG})
    finally:
        fake.stop()
    fake.stop()  # twice too
    assert refuses_connections(first_port)

    with fake:  # again, keeping what was recorded and scripted
        rekognition(fake).detect_moderation_labels(Image={"Bytes": JPEG})
        assert fake.call_count() == 2


def test_endpoint_url_environment_variable_reaches_the_fake(
    fake: FakeRekognition, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_REKOGNITION", fake.endpoint_url)

    boto3.client("rekognition").detect_moderation_labels(Image={"Bytes": JPEG})

    assert fake.call_count() == 1


def test_a_whole_connection_pool_is_queued_while_the_fake_is_busy() -> None:
    """Sixty-four connections opened before the fake accepts any all connect at
    once. With socketserver's default backlog of 5 the kernel dropped the rest,
    and they started a second late (the SYN retransmit): 16 threads opening
    their pool together lost about 10% of a benchmark's throughput."""
    from policy_engine_rekognition.testing.server import FakeServer

    server = FakeServer(FakeRekognition()._handle, threading.Event())  # listening, not accepting
    connected: list[socket.socket] = []
    try:
        port = server.server_address[1]
        for _ in range(64):
            connected.append(socket.create_connection(("127.0.0.1", port), timeout=0.5))
        assert len(connected) == 64
    finally:
        for connection in connected:
            connection.close()
        server.server_close()
