"""Pixel limits checked from the PNG or JPEG header before any call, without
Pillow: the header parser on hand-built headers (and on Pillow's files, for
comparison), its properties under hypothesis, the limits of API_FACTS.md for
each operation, and a refused image through the engine, boto3 and
FakeRekognition costing no call."""

from __future__ import annotations

import io
import sys
import zlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy_engine import DetectorRegistry, Engine, parse_policy
from policy_engine.errors import DetectorError
from policy_engine.image import Image
from policy_engine_rekognition.images import (
    CUSTOM_LABELS_LIMITS,
    MODERATION_LIMITS,
    ImageLimits,
    PixelSize,
    check_pixels,
    prepare_image,
    read_pixel_size,
)
from policy_engine_rekognition.testing import FakeRekognition

MODEL_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/version/logos.1/1"

SOI = b"\xff\xd8"
JFIF_APP0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
FRAME_MARKERS = [0xC0 + n for n in range(16) if 0xC0 + n not in (0xC4, 0xC8, 0xCC)]


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk (8-bit RGB), CRC included: what Pillow
    would write first."""
    body = b"IHDR" + width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    crc = zlib.crc32(body).to_bytes(4, "big")
    return b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + body + crc


def segment(marker: int, payload: bytes) -> bytes:
    """A JPEG marker segment; its length counts itself, not the marker."""
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def frame_header(width: int, height: int, marker: int = 0xC0) -> bytes:
    """SOFn with three components, as a colour JPEG has."""
    components = b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    payload = b"\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x03" + components
    return segment(marker, payload)


def jpeg_header(width: int, height: int, marker: int = 0xC0, before: bytes = JFIF_APP0) -> bytes:
    """SOI, ``before`` (segments a JPEG may carry ahead of its frame), SOFn,
    and the start of a scan."""
    return SOI + before + frame_header(width, height, marker) + segment(0xDA, b"\x01\x01\x00")


# --- the header parser -------------------------------------------------------------------


def test_png_size_comes_from_ihdr() -> None:
    assert read_pixel_size(png_header(640, 480)) == PixelSize(640, 480)
    assert read_pixel_size(png_header(640, 480) + b"\x00" * 100) == (640, 480)


@pytest.mark.parametrize("marker", FRAME_MARKERS, ids=lambda marker: f"SOF-{marker:02X}")
def test_every_frame_marker_gives_the_size(marker: int) -> None:
    assert read_pixel_size(jpeg_header(1024, 768, marker)) == PixelSize(1024, 768)


def test_jpeg_segments_before_the_frame_are_skipped_by_their_length() -> None:
    # Each segment's payload holds bytes that look like a frame header: read
    # as markers instead of skipped, they would give 9x9.
    decoy = frame_header(9, 9)
    exif_with_thumbnail = b"Exif\x00\x00" + SOI + decoy + b"\xff\xd9"
    before = (
        JFIF_APP0
        + segment(0xE1, exif_with_thumbnail)  # APP1, a thumbnail JPEG inside
        + segment(0xC4, decoy)  # DHT
        + segment(0xC8, decoy)  # JPG, reserved
        + segment(0xCC, decoy)  # DAC
        + segment(0xDB, b"\x00" + bytes(64))  # DQT
        + segment(0xFE, b"made by hand " + decoy)  # COM
    )
    assert read_pixel_size(jpeg_header(300, 200, before=before)) == PixelSize(300, 200)


def test_fill_bytes_and_standalone_markers_are_skipped() -> None:
    before = JFIF_APP0 + b"\xff\xff\xff" + b"\xff\x01" + b"\xff\xd0" + b"\xff\xff\xd7"
    assert read_pixel_size(jpeg_header(120, 90, before=before)) == PixelSize(120, 90)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"GIF89a" + bytes(64), id="gif"),
        pytest.param(b"\xff\xd8\xff\xe0" + b"\x00" * 100, id="readme-upload"),
        pytest.param(png_header(640, 480)[:23], id="png-cut-in-height"),
        pytest.param(png_header(640, 480).replace(b"IHDR", b"IHDX"), id="png-not-ihdr-first"),
        pytest.param(
            png_header(640, 480).replace(b"\x00\x00\x00\x0d", b"\x00\x00\x00\x0c"),
            id="png-ihdr-length",
        ),
        pytest.param(png_header(0, 480), id="png-zero-width"),
        pytest.param(png_header(2**31, 480), id="png-width-over-2**31-1"),
        pytest.param(SOI, id="jpeg-soi-only"),
        pytest.param(SOI + JFIF_APP0, id="jpeg-ends-before-frame"),
        pytest.param(SOI + JFIF_APP0[:10], id="jpeg-cut-in-segment"),
        pytest.param(jpeg_header(120, 90)[: len(SOI + JFIF_APP0) + 8], id="jpeg-cut-in-width"),
        pytest.param(SOI + b"\xff\xe0\x00\x01" + jpeg_header(120, 90)[2:], id="length-under-2"),
        pytest.param(SOI + b"\x00" + jpeg_header(120, 90)[2:], id="no-marker-where-due"),
        pytest.param(SOI + b"\xff\x00" + jpeg_header(120, 90)[2:], id="stuffed-zero-as-marker"),
        pytest.param(SOI + b"\xff\x02" + jpeg_header(120, 90)[2:], id="reserved-marker"),
        pytest.param(SOI + segment(0xDA, b"\x00") + frame_header(120, 90), id="scan-first"),
        pytest.param(SOI + b"\xff\xd9" + frame_header(120, 90), id="end-of-image-first"),
        pytest.param(SOI + segment(0xDE, bytes(5)) + frame_header(120, 90), id="hierarchical"),
        pytest.param(jpeg_header(120, 0), id="height-from-dnl"),
        pytest.param(SOI + segment(0xC0, b"\x08\x00"), id="frame-header-too-short"),
    ],
)
def test_unreadable_headers_give_none(data: bytes) -> None:
    assert read_pixel_size(data) is None


def test_the_fixtures_magic_bytes_are_unreadable_and_pass(jpeg: Image, png: Image) -> None:
    # Many tests send magic bytes and zeros: no size, so no refusal.
    for image in (jpeg, png):
        assert image.data is not None and read_pixel_size(image.data) is None
        for limits in (MODERATION_LIMITS, CUSTOM_LABELS_LIMITS):
            assert prepare_image(image, detector="d", limits=limits).request == {
                "Bytes": image.data
            }


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "JPEG-progressive", "JPEG-exif"])
def test_the_parser_agrees_with_pillow(image_format: str) -> None:
    pil = pytest.importorskip("PIL.Image")
    picture = pil.new("RGB", (333, 97), (10, 200, 30))
    buffer = io.BytesIO()
    if image_format == "PNG":
        picture.save(buffer, format="PNG")
    elif image_format == "JPEG-progressive":
        picture.save(buffer, format="JPEG", progressive=True)
    elif image_format == "JPEG-exif":
        exif = pil.Exif()
        exif[0x010F] = "camera"
        picture.save(buffer, format="JPEG", exif=exif)
    else:
        picture.save(buffer, format="JPEG")
    data = buffer.getvalue()
    assert read_pixel_size(data) == pil.open(io.BytesIO(data)).size == (333, 97)


def test_limits_are_checked_without_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in [name for name in sys.modules if name == "PIL" or name.startswith("PIL.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now fails

    with pytest.raises(DetectorError) as raised:
        prepare_image(Image("tiny.png", png_header(40, 40)), detector="d", limits=MODERATION_LIMITS)

    assert raised.value.code == "image-too-small"


# --- properties ------------------------------------------------------------------------

png_sides = st.integers(min_value=1, max_value=2**31 - 1)
jpeg_sides = st.integers(min_value=1, max_value=65_535)
app_segments = st.lists(
    st.tuples(st.integers(min_value=0xE0, max_value=0xEF), st.binary(max_size=300)).map(
        lambda marker_payload: segment(*marker_payload)
    ),
    max_size=4,
).map(b"".join)
fills = st.integers(min_value=0, max_value=5).map(lambda count: b"\xff" * count)


@given(width=png_sides, height=png_sides)
def test_png_round_trip(width: int, height: int) -> None:
    assert read_pixel_size(png_header(width, height)) == PixelSize(width, height)


@given(
    width=jpeg_sides,
    height=jpeg_sides,
    marker=st.sampled_from(FRAME_MARKERS),
    before=app_segments,
    fill=fills,
)
def test_jpeg_round_trip(width: int, height: int, marker: int, before: bytes, fill: bytes) -> None:
    data = jpeg_header(width, height, marker, before=before + fill)
    assert read_pixel_size(data) == PixelSize(width, height)


@given(width=jpeg_sides, height=jpeg_sides, before=app_segments, data=st.data())
def test_a_truncated_header_gives_none_or_the_true_size(
    width: int, height: int, before: bytes, data: st.DataObject
) -> None:
    for whole in (png_header(width, height), jpeg_header(width, height, before=before)):
        cut = data.draw(st.integers(min_value=0, max_value=len(whole)), label="cut")
        # The size is complete once the width field (the last one read) is.
        size_ends = 24 if whole.startswith(b"\x89PNG") else len(SOI + before) + 9
        expected = PixelSize(width, height) if cut >= size_ends else None
        assert read_pixel_size(whole[:cut]) == expected


@given(
    prefix=st.sampled_from([b"", SOI, b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"]),
    garbage=st.binary(max_size=400),
)
def test_garbage_never_raises(prefix: bytes, garbage: bytes) -> None:
    size = read_pixel_size(prefix + garbage)
    assert size is None or (size.width > 0 and size.height > 0)
    for limits in (MODERATION_LIMITS, CUSTOM_LABELS_LIMITS):
        try:
            check_pixels(prefix + garbage, name="junk", detector="d", limits=limits)
        except DetectorError as error:  # the only failure allowed, and only with a size
            assert size is not None and error.retryable is False


@given(width=jpeg_sides, height=jpeg_sides, before=app_segments, flips=st.data())
def test_corrupted_jpeg_never_raises(
    width: int, height: int, before: bytes, flips: st.DataObject
) -> None:
    data = bytearray(jpeg_header(width, height, before=before))
    for _ in range(flips.draw(st.integers(min_value=1, max_value=4), label="flips")):
        index = flips.draw(st.integers(min_value=0, max_value=len(data) - 1), label="index")
        data[index] = flips.draw(st.integers(min_value=0, max_value=255), label="byte")
    size = read_pixel_size(bytes(data))
    assert size is None or (size.width > 0 and size.height > 0)


# --- the limits of each operation ------------------------------------------------------

MODERATION = ("rekognition-moderation", MODERATION_LIMITS)
CUSTOM_LABELS = ("rekognition-custom-labels", CUSTOM_LABELS_LIMITS)
Operation = tuple[str, ImageLimits]


@pytest.mark.parametrize(
    ("operation", "size"),
    [
        (MODERATION, (80, 80)),
        (MODERATION, (10_000, 10_000)),
        (MODERATION, (4000, 80)),  # 50:1: no aspect ratio limit for moderation
        (CUSTOM_LABELS, (64, 64)),
        (CUSTOM_LABELS, (4096, 4096)),
        (CUSTOM_LABELS, (1280, 64)),  # exactly 20:1
    ],
)
@pytest.mark.parametrize("encode", [png_header, jpeg_header])
def test_sizes_within_the_limits_pass(
    operation: Operation, size: tuple[int, int], encode: Callable[[int, int], bytes]
) -> None:
    detector, limits = operation
    prepared = prepare_image(Image("ok", encode(*size)), detector=detector, limits=limits)
    assert prepared.request == {"Bytes": encode(*size)}


@pytest.mark.parametrize(
    ("operation", "size", "code", "phrases"),
    [
        (MODERATION, (79, 200), "image-too-small", ["79x200 pixels", "minimum of 80x80"]),
        (MODERATION, (200, 79), "image-too-small", ["200x79 pixels", "minimum of 80x80"]),
        (MODERATION, (10_001, 500), "image-too-large", ["10001x500", "10,000 pixels a side"]),
        (CUSTOM_LABELS, (63, 100), "image-too-small", ["63x100 pixels", "minimum of 64x64"]),
        (CUSTOM_LABELS, (300, 4097), "image-too-large", ["300x4097", "4,096 pixels a side"]),
        (CUSTOM_LABELS, (1281, 64), "invalid-aspect-ratio", ["1281x64", "20.02:1", "over", "20:1"]),
        (CUSTOM_LABELS, (100, 2100), "invalid-aspect-ratio", ["100x2100", "21.00:1"]),
        # Too small wins: scaling down (convert) could never fix it.
        (CUSTOM_LABELS, (5000, 10), "image-too-small", ["5000x10", "minimum of 64x64"]),
    ],
)
@pytest.mark.parametrize("encode", [png_header, jpeg_header])
def test_sizes_outside_the_limits_are_refused(
    operation: Operation,
    size: tuple[int, int],
    code: str,
    phrases: list[str],
    encode: Callable[[int, int], bytes],
) -> None:
    detector, limits = operation
    with pytest.raises(DetectorError) as raised:
        prepare_image(Image("uploads/odd.img", encode(*size)), detector=detector, limits=limits)

    error = raised.value
    assert (error.code, error.retryable) == (code, False)
    message = str(error)
    assert "'uploads/odd.img'" in message and detector in message
    for phrase in phrases:
        assert phrase in message


def test_too_large_in_pixels_suggests_convert() -> None:
    with pytest.raises(DetectorError) as raised:
        prepare_image(
            Image("huge.png", png_header(12_000, 9_000)), detector="d", limits=MODERATION_LIMITS
        )
    assert "`convert: true`" in str(raised.value)


def test_s3_images_are_not_read() -> None:
    prepared = prepare_image(
        Image("s3://bucket/tiny.png", uri="s3://bucket/tiny.png"),
        detector="d",
        limits=MODERATION_LIMITS,
    )
    assert prepared.request == {"S3Object": {"Bucket": "bucket", "Name": "tiny.png"}}


# --- through the engine, boto3 and FakeRekognition ---------------------------------------

POLICY = """
version: 1
name: pixels
on_error: block
detectors:
  {detector}: {{endpoint_url: {endpoint_url}, retry_mode: standard, max_attempts: 1{extra}}}
rules:
  - {{id: violence, match: {{name: Violence}}, block_at: 90}}
"""


def engine_for(fake: FakeRekognition, detector: str, extra: str = "") -> Engine:
    registry = DetectorRegistry.installed()
    text = POLICY.format(detector=detector, endpoint_url=fake.endpoint_url, extra=extra)
    return Engine(parse_policy(text, registry=registry), registry)


@pytest.mark.parametrize(
    ("detector", "extra", "size", "code"),
    [
        ("rekognition-moderation", "", (60, 60), "image-too-small"),
        (
            "rekognition-custom-labels",
            f", project_version_arn: '{MODEL_ARN}'",
            (5000, 200),
            "invalid-aspect-ratio",
        ),
    ],
)
def test_a_refused_image_costs_no_call_and_gets_on_error(
    fake: FakeRekognition, jpeg: Image, detector: str, extra: str, size: tuple[int, int], code: str
) -> None:
    engine = engine_for(fake, detector, extra)

    decision = engine.check(Image("uploads/odd.jpg", jpeg_header(*size)))

    assert fake.call_count() == 0
    assert decision.verdict == decision.on_error == "block"
    (failure,) = decision.failures
    assert (failure.source, failure.code, failure.retryable) == (detector, code, False)
    assert f"{size[0]}x{size[1]} pixels" in failure.error
    # An unreadable header goes to Rekognition, which decides.
    assert engine.check(jpeg).verdict == "allow"
    assert fake.call_count() == 1


def test_convert_scales_down_what_is_too_large_in_pixels(fake: FakeRekognition) -> None:
    pil = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    pil.new("RGB", (4200, 300), (200, 30, 30)).save(buffer, format="PNG")
    extra = f", project_version_arn: '{MODEL_ARN}', convert: true"
    engine = engine_for(fake, "rekognition-custom-labels", extra)

    decision = engine.check(Image("banner.png", buffer.getvalue()))

    assert decision.failures == ()
    (call,) = fake.calls
    assert call.ok
    converted = decision.detectors["rekognition-custom-labels"]["converted"]
    assert converted["from_pixels"] == [4200, 300] and converted["to_pixels"] == [4096, 292]
