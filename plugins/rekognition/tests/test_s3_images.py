"""Images known by an ``s3://`` URI only: parsing the URI, and both detectors
sending ``Image.S3Object`` (never downloading) through boto3's real stack to
:class:`~policy_engine_rekognition.testing.FakeRekognition`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy_engine.detectors import DetectContext, Detector
from policy_engine.errors import DetectorError
from policy_engine.image import Image
from policy_engine_rekognition.custom_labels import CustomLabelsDetector
from policy_engine_rekognition.images import S3_MAX_BYTES
from policy_engine_rekognition.moderation import ModerationDetector
from policy_engine_rekognition.s3_inputs import S3InputError, S3Location, parse_s3_uri
from policy_engine_rekognition.testing import FakeRekognition

Context = Callable[..., DetectContext]
MODEL_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/version/logos.1/1"


# --- parsing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "bucket", "key", "version"),
    [
        ("s3://photos/cat.jpg", "photos", "cat.jpg", None),
        ("s3://photos/a/b/c.png", "photos", "a/b/c.png", None),
        ("S3://photos/cat.jpg", "photos", "cat.jpg", None),
        ("s3://photos/my%20cat.jpg", "photos", "my cat.jpg", None),
        ("s3://photos/my cat.jpg", "photos", "my cat.jpg", None),  # written as is
        ("s3://photos/1+1=2.jpg", "photos", "1+1=2.jpg", None),  # + is a plus, not a space
        ("s3://photos/1%2B1.jpg", "photos", "1+1.jpg", None),
        ("s3://photos/caf%C3%A9.jpg", "photos", "café.jpg", None),
        ("s3://photos/café/日本.jpg", "photos", "café/日本.jpg", None),
        ("s3://photos/100%25.jpg", "photos", "100%.jpg", None),
        ("s3://photos/what%3F.jpg", "photos", "what?.jpg", None),
        ("s3://photos/tag%23.jpg", "photos", "tag#.jpg", None),
        ("s3://photos//double.jpg", "photos", "/double.jpg", None),
        ("s3://photos/cat.jpg?versionId=3HL4kqtJ", "photos", "cat.jpg", "3HL4kqtJ"),
        ("s3://photos/cat.jpg?versionId=a%2Bb.c_d", "photos", "cat.jpg", "a+b.c_d"),
        ("s3://Old_Bucket.1/x", "Old_Bucket.1", "x", None),
    ],
)
def test_parse_s3_uri_decodes_the_key(uri: str, bucket: str, key: str, version: str | None) -> None:
    assert parse_s3_uri(uri) == S3Location(bucket, key, version)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://photos.s3.amazonaws.com/cat.jpg", "not an s3:// URI"),
        ("/tmp/cat.jpg", "not an s3:// URI"),
        ("https://photos.s3.amazonaws.com/cat.jpg?versionId=1", "not an s3:// URI"),
        ("s3:/photos/cat.jpg", "not an s3:// URI"),
        ("s3:///cat.jpg", "names no bucket"),
        ("s3://ab/cat.jpg", "not a valid bucket name"),
        ("s3://user@photos/cat.jpg", "not a valid bucket name"),
        ("s3://photos:443/cat.jpg", "not a valid bucket name"),
        ("s3://photos", "names a folder"),
        ("s3://photos/", "names a folder"),
        ("s3://photos/dir/", "names a folder"),
        ("s3://photos/dir/?versionId=1", "names a folder"),
        ("s3://photos/cat.jpg?v=1", "the only query"),
        ("s3://photos/cat.jpg?versionId=", "versionId must be"),
        ("s3://photos/cat.jpg?versionId=1&versionId=2", "the only query"),
        ("s3://photos/what?.jpg", "the only query"),
        ("s3://photos/cat.jpg#top", "fragment"),
        ("s3://photos/bad%FF.jpg", "not a valid URI"),
        ("s3://photos/tab\there.jpg", "control character"),
        ("s3://photos/cat.jpg ", "control character"),
        ("s3://photos/" + "k" * 1025, "over S3's 1024 bytes"),
    ],
)
def test_malformed_s3_uris_say_what_is_wrong(uri: str, message: str) -> None:
    with pytest.raises(S3InputError, match=message):
        parse_s3_uri(uri)


def test_prefixes_are_allowed_only_where_asked() -> None:
    assert parse_s3_uri("s3://photos", prefix_allowed=True) == S3Location("photos", "")
    assert parse_s3_uri("s3://photos/a/", prefix_allowed=True).is_prefix


@given(
    key=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60).filter(
        lambda key: not key.endswith("/")
    ),
    version=st.none() | st.text(st.characters(blacklist_categories=("Cs",)), min_size=1),
)
def test_a_location_survives_the_trip_through_its_uri(key: str, version: str | None) -> None:
    location = S3Location("photos", key, version)
    assert parse_s3_uri(location.uri) == location


@pytest.mark.parametrize("key", ["ideographic space\u3000", "\u3000lead", " x ", "\x85", "a\r\nb"])
def test_awkward_keys_survive_the_trip(key: str) -> None:
    location = S3Location("photos", key)
    assert parse_s3_uri(location.uri) == location


def test_uri_encodes_only_what_must_be_encoded() -> None:
    assert S3Location("b", "café/1+1 = 2?#%.jpg").uri == "s3://b/café/1+1%20=%202%3F%23%25.jpg"
    assert S3Location("b", "k.jpg", "v+1/2").uri == "s3://b/k.jpg?versionId=v%2B1%2F2"


# --- both detectors send S3Object -----------------------------------------------------


def settings_for(fake: FakeRekognition, **more: Any) -> dict[str, Any]:
    # what is sent, not the screening read before it (test_s3_screen.py, with S3)
    return {
        "endpoint_url": fake.endpoint_url,
        "retry_mode": "standard",
        "max_attempts": 1,
        "screen_s3": False,
        **more,
    }


def both(fake: FakeRekognition) -> list[tuple[Detector, dict[str, Any]]]:
    return [
        (ModerationDetector(), settings_for(fake)),
        (CustomLabelsDetector(), settings_for(fake, project_version_arn=MODEL_ARN)),
    ]


@pytest.mark.parametrize(
    ("uri", "s3_object", "fake_key"),
    [
        (
            "s3://photos/uploads/my%20cat+dog/caf%C3%A9.jpg",
            {"Bucket": "photos", "Name": "uploads/my cat+dog/café.jpg"},
            "s3://photos/uploads/my cat+dog/café.jpg",
        ),
        (
            "s3://photos/cat.jpg?versionId=3HL4kqtJ",
            {"Bucket": "photos", "Name": "cat.jpg", "Version": "3HL4kqtJ"},
            "s3://photos/cat.jpg?versionId=3HL4kqtJ",
        ),
        # No suffix and no magic bytes to check: the service decides.
        ("s3://photos/blob", {"Bucket": "photos", "Name": "blob"}, "s3://photos/blob"),
    ],
)
def test_both_detectors_send_an_uri_image_as_s3_object(
    fake: FakeRekognition, context: Context, uri: str, s3_object: dict[str, str], fake_key: str
) -> None:
    fake.respond(
        fake_key,
        {"ModerationLabels": [{"Name": "Violence", "ParentName": "", "Confidence": 91.0}]},
    )
    fake.respond(fake_key, {"CustomLabels": [{"Name": "Logo", "Confidence": 88.0}]})
    image = Image(name=uri, uri=uri, size=1234, version='"etag"')

    for detector, settings in both(fake):
        result = detector.detect(image, context(detector, settings))
        assert len(result.labels) == 1

    assert [call.request["Image"] for call in fake.calls] == [{"S3Object": s3_object}] * 2
    assert [call.image for call in fake.calls] == [fake_key] * 2
    assert all(call.image_sha256 is None for call in fake.calls)


@pytest.mark.parametrize(
    "uri",
    ["https://example.com/cat.jpg", "file:///tmp/cat.jpg", "s3://photos/", "s3:///cat.jpg"],
)
def test_an_uri_image_that_is_not_an_s3_object_is_a_detector_error(
    fake: FakeRekognition, context: Context, uri: str
) -> None:
    image = Image(name="upload-7", uri=uri)
    for detector, settings in both(fake):
        with pytest.raises(DetectorError) as raised:
            detector.detect(image, context(detector, settings))
        assert raised.value.code == "invalid-image-uri"
        assert "upload-7" in str(raised.value) and "s3://bucket/key" in str(raised.value)
    assert fake.call_count() == 0


def test_an_s3_object_over_15_mb_is_refused_before_the_call(
    fake: FakeRekognition, context: Context
) -> None:
    for detector, settings in both(fake):
        at_limit = Image(name="s3://photos/big.jpg", uri="s3://photos/big.jpg", size=S3_MAX_BYTES)
        detector.detect(at_limit, context(detector, settings))
        over = Image(name="s3://photos/big.jpg", uri="s3://photos/big.jpg", size=S3_MAX_BYTES + 1)
        with pytest.raises(DetectorError) as raised:
            detector.detect(over, context(detector, settings))
        assert raised.value.code == "image-too-large"
        assert "15,728,640" in str(raised.value) and "resize" in str(raised.value)
    assert fake.call_count() == 2  # the two at the limit


def test_an_s3_object_of_unknown_size_and_over_the_bytes_limit_is_sent(
    fake: FakeRekognition, context: Context
) -> None:
    # 6 MB is over the Bytes limit of both operations, not over the S3 limit.
    for detector, settings in both(fake):
        image = Image(name="s3://photos/6mb.jpg", uri="s3://photos/6mb.jpg", size=6_000_000)
        detector.detect(image, context(detector, settings))
        unknown = Image(name="s3://photos/x.gif", uri="s3://photos/x.gif")
        detector.detect(unknown, context(detector, settings))
    assert fake.call_count() == 4


def test_an_s3_object_is_never_converted(fake: FakeRekognition, context: Context) -> None:
    image = Image(name="s3://photos/anim.gif", uri="s3://photos/anim.gif", size=10)
    for detector, settings in both(fake):
        result = detector.detect(image, context(detector, {**settings, "convert": True}))
        assert "converted" not in result.metadata
    assert [call.request["Image"] for call in fake.calls] == [
        {"S3Object": {"Bucket": "photos", "Name": "anim.gif"}}
    ] * 2


def test_the_service_refusing_the_s3_object_says_what_to_check(
    fake: FakeRekognition, context: Context
) -> None:
    fake.fail(code="InvalidS3ObjectException", message="Unable to get object metadata from S3")
    detector = ModerationDetector()
    image = Image(name="s3://photos/cat.jpg", uri="s3://photos/cat.jpg")

    with pytest.raises(DetectorError) as raised:
        detector.detect(image, context(detector, settings_for(fake)))

    assert raised.value.code == "InvalidS3ObjectException"
    assert "s3:GetObject" in str(raised.value) and "region" in str(raised.value)


def test_bytes_images_keep_their_checks(
    fake: FakeRekognition, context: Context, gif: Image
) -> None:
    for detector, settings in both(fake):
        with pytest.raises(DetectorError) as raised:
            detector.detect(gif, context(detector, settings))
        assert raised.value.code == "unsupported-image-format"
        with pytest.raises(DetectorError) as raised:
            detector.detect(Image(name="empty.jpg", data=b""), context(detector, settings))
        assert raised.value.code == "empty-image"
    assert fake.call_count() == 0
