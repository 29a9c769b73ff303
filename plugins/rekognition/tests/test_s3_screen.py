"""An S3 object is screened before Rekognition reads it: an animated PNG whose
default image is a decoy (browsers show only the animation) is refused without
a call, whatever metadata comes before its image data; anything else is sent as
before. S3 through moto, Rekognition through FakeRekognition."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from policy_engine.detectors import DetectContext
from policy_engine.errors import DetectorError
from policy_engine.image import PNG_SIGNATURE, Image
from policy_engine_rekognition.moderation import ModerationDetector
from policy_engine_rekognition.s3_screen import FIRST_READ, MORE_READS
from policy_engine_rekognition.testing import FakeRekognition

PIL = pytest.importorskip("PIL.Image")

Context = Callable[..., DetectContext]
BUCKET = "uploads"


@pytest.fixture
def s3() -> Iterator[Any]:
    """moto's S3 with a versioned bucket (FakeRekognition's 127.0.0.1 endpoint is
    no AWS endpoint: moto lets those requests through)."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def png(*, hidden_default: bool, frames: int = 2) -> bytes:
    """An APNG, blank then red; with ``hidden_default`` the blank default image
    is not part of the animation (browsers show only red)."""
    pictures = [PIL.new("RGB", (100, 100), colour) for colour in ("white", "red")][:frames]
    out = io.BytesIO()
    extra = {"save_all": True, "append_images": pictures[1:]} if frames > 1 else {}
    pictures[0].save(out, format="PNG", default_image=hidden_default, **extra)
    return out.getvalue()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def with_metadata(data: bytes, *chunks: bytes) -> bytes:
    """``data`` with ``chunks`` right after its IHDR (before acTL and IDAT)."""
    after_ihdr = len(PNG_SIGNATURE) + 25
    return data[:after_ihdr] + b"".join(chunks) + data[after_ihdr:]


def upload(s3: Any, key: str, body: bytes) -> Image:
    version = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["VersionId"]
    uri = f"s3://{BUCKET}/{key}?versionId={version}"
    return Image(name=uri, uri=uri, size=len(body), version='"etag"')


def detect(fake: FakeRekognition, context: Context, image: Image, **settings: Any) -> Any:
    fake.set_default({"ModerationLabels": [], "ModerationModelVersion": "7.0"})
    detector = ModerationDetector()
    given = {"endpoint_url": fake.endpoint_url, "max_attempts": 1, **settings}
    return detector.detect(image, context(detector, given))


LONG_TEXT = chunk(b"tEXt", b"Comment\0" + b"x" * (FIRST_READ + 100))


@pytest.mark.parametrize(
    "body",
    [
        png(hidden_default=True),
        with_metadata(png(hidden_default=True), LONG_TEXT),  # the IDAT past the first read
    ],
    ids=["decoy", "decoy-after-long-metadata"],
)
def test_a_decoy_apng_in_s3_is_refused_without_a_call(
    s3: Any, fake: FakeRekognition, context: Context, body: bytes
) -> None:
    image = upload(s3, "decoy.png", body)

    with pytest.raises(DetectorError) as raised:
        detect(fake, context, image)

    assert raised.value.code == "hidden-default-image" and raised.value.sent is False
    assert "animated PNG" in str(raised.value)
    assert fake.call_count() == 0


@pytest.mark.parametrize(
    "body",
    [
        png(hidden_default=False),  # the default image is the first frame
        png(hidden_default=False, frames=1),
        with_metadata(png(hidden_default=False), LONG_TEXT),
        b"\xff\xd8\xff\xe0 a JPEG",
        b"",  # an empty object: Rekognition refuses it itself
    ],
    ids=["apng", "png", "png-after-long-metadata", "jpeg", "empty"],
)
def test_anything_else_is_sent_as_the_version_screened(
    s3: Any, fake: FakeRekognition, context: Context, body: bytes
) -> None:
    image = upload(s3, "upload", body)

    detect(fake, context, image)

    (call,) = fake.calls
    version = image.uri.split("versionId=")[1] if image.uri else ""
    assert call.request["Image"] == {
        "S3Object": {"Bucket": BUCKET, "Name": "upload", "Version": version}
    }


def test_a_png_whose_image_data_cannot_be_found_is_refused(
    s3: Any, fake: FakeRekognition, context: Context
) -> None:
    # more chunks past the first read than the screen reads: it may hide a decoy
    filler = [chunk(b"tEXt", b"k\0" + b"y" * FIRST_READ) for _ in range(MORE_READS + 2)]
    image = upload(s3, "endless.png", with_metadata(png(hidden_default=False), *filler))

    with pytest.raises(DetectorError) as raised:
        detect(fake, context, image)

    assert raised.value.code == "hidden-default-image" and "not found" in str(raised.value)
    assert fake.call_count() == 0


def test_an_object_that_cannot_be_read_is_not_sent(
    s3: Any, fake: FakeRekognition, context: Context
) -> None:
    missing = f"s3://{BUCKET}/gone.png"

    with pytest.raises(DetectorError) as raised:
        detect(fake, context, Image(name=missing, uri=missing))

    assert raised.value.code == "s3-screen-failed" and "no such object" in str(raised.value)
    assert fake.call_count() == 0


def test_screening_can_be_turned_off(s3: Any, fake: FakeRekognition, context: Context) -> None:
    image = upload(s3, "decoy.png", png(hidden_default=True))

    detect(fake, context, image, screen_s3=False)

    assert fake.call_count() == 1


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(503, "SlowDown", True), (500, "InternalError", True), (403, "AccessDenied", False)],
)
def test_a_busy_s3_is_a_failure_to_retry_a_refusal_is_not(
    fake: FakeRekognition,
    context: Context,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    code: str,
    retryable: bool,
) -> None:
    from botocore.exceptions import ClientError

    from policy_engine_rekognition import detector_base

    class Failing:
        def get_object(self, **request: Any) -> Any:
            error = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
            raise ClientError(error, "GetObject")  # type: ignore[arg-type]

    monkeypatch.setattr(detector_base, "build_s3_client", lambda settings=None: Failing())
    image = Image(name="s3://uploads/a.png", uri="s3://uploads/a.png?versionId=v1")

    with pytest.raises(DetectorError) as raised:
        detect(fake, context, image)

    assert raised.value.code == "s3-screen-failed" and raised.value.retryable is retryable
    assert fake.call_count() == 0
