"""Checks on an image before it is sent: botocore sends an empty, oversized or
GIF image as it is, and the service's answer (after a round trip, possibly
billed) says less than we can say here.

Pixel limits are checked from the PNG or JPEG header alone (no Pillow): when
the header cannot be read, the image goes to Rekognition, which decides.

An image with bytes is sent as ``Image.Bytes``; one known only by an
``s3://`` URI as ``Image.S3Object``, read by Rekognition itself (never
downloaded here, so only its known size is checked: the service checks the
rest).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from policy_engine import DetectorError, Image
from policy_engine.image import PNG_SIGNATURE, hides_its_default_image, sniff_format
from policy_engine_rekognition.s3_inputs import S3InputError, parse_s3_uri

ACCEPTED_FORMATS = "JPEG or PNG"
S3_MAX_BYTES = 15_728_640
"""Rekognition's limit on an S3 object, for both operations."""


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """What one operation accepts (API_FACTS.md's image limits)."""

    max_bytes: int
    min_side: int
    max_side: int
    max_aspect_ratio: float | None = None


MODERATION_LIMITS = ImageLimits(max_bytes=5_242_880, min_side=80, max_side=10_000)
CUSTOM_LABELS_LIMITS = ImageLimits(
    max_bytes=4_194_304, min_side=64, max_side=4096, max_aspect_ratio=20.0
)


def check_bytes(data: bytes, *, name: str, detector: str, max_bytes: int) -> None:
    """Raise :class:`DetectorError` unless ``data`` is a non-empty JPEG or PNG
    of at most ``max_bytes`` bytes."""
    accepted = f"{detector} accepts {ACCEPTED_FORMATS} images of 1 to {max_bytes:,} bytes"
    size = len(data)
    if size == 0:
        raise DetectorError(f"image {name!r} is empty; {accepted}", code="empty-image")
    if size > max_bytes:
        raise DetectorError(
            f"image {name!r} is {size:,} bytes, over the limit; {accepted} "
            f"(upload it to S3 and check s3://bucket/key instead: S3 objects may be up "
            f"to {S3_MAX_BYTES:,} bytes; or resize it, or set `convert: true`)",
            code="image-too-large",
        )
    image_format = sniff_format(data)
    if image_format not in ("JPEG", "PNG"):
        what = image_format or "not a recognised image format"
        raise DetectorError(
            f"image {name!r} is {what}; {accepted} (or set `convert: true` to convert "
            "other formats with Pillow)",
            code="unsupported-image-format",
        )


class PixelSize(NamedTuple):
    width: int
    height: int


# PNG's first chunk must be IHDR, 13 bytes long: its length and type, then the
# width and height (big-endian, 1 to 2**31 - 1 each).
_PNG_IHDR_START = (13).to_bytes(4, "big") + b"IHDR"
_PNG_MAX_SIDE = 2**31 - 1
# JPEG start-of-frame markers, whose segment holds the frame's size; C4 (DHT),
# C8 (JPG) and CC (DAC) share the range but are not frames.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-7, SOI.
_JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD9)})
# Smallest frame header we read: length (2), precision (1), height (2), width (2).
_JPEG_FRAME_HEADER_BYTES = 7


def read_pixel_size(data: bytes) -> PixelSize | None:
    """Width and height from a PNG's IHDR chunk or a JPEG's first frame header;
    None when ``data`` is neither or its header is truncated or malformed."""
    if data.startswith(PNG_SIGNATURE):
        return _png_pixel_size(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_pixel_size(data)
    return None


def _png_pixel_size(data: bytes) -> PixelSize | None:
    if data[8:16] != _PNG_IHDR_START or len(data) < 24:
        return None
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    if not (0 < width <= _PNG_MAX_SIDE and 0 < height <= _PNG_MAX_SIDE):
        return None
    return PixelSize(width, height)


def _jpeg_pixel_size(data: bytes) -> PixelSize | None:
    """Walks the marker segments after SOI up to the first frame header. Stops
    (None) at anything a JPEG decoder would not accept there, and at the scan
    or the end of the image, which come after the frame header."""
    end = len(data)
    position = 2  # after SOI
    while position < end:
        if data[position] != 0xFF:
            return None
        while position < end and data[position] == 0xFF:  # fill bytes
            position += 1
        if position >= end:
            return None
        marker = data[position]
        position += 1
        if marker in _JPEG_STANDALONE_MARKERS:
            continue
        # Below C0 only TEM is defined; DHP (DE) opens a hierarchical image whose
        # first frame may be smaller than the image: not ours to judge.
        if marker < 0xC0 or marker in (0xD9, 0xDA, 0xDE):
            return None
        if position + 2 > end:
            return None
        length = int.from_bytes(data[position : position + 2], "big")  # counts itself
        if length < 2:
            return None
        if marker in _JPEG_FRAME_MARKERS:
            if length < _JPEG_FRAME_HEADER_BYTES or position + _JPEG_FRAME_HEADER_BYTES > end:
                return None
            height = int.from_bytes(data[position + 3 : position + 5], "big")
            width = int.from_bytes(data[position + 5 : position + 7], "big")
            # Height 0 means a DNL marker gives it after the first scan.
            return PixelSize(width, height) if width and height else None
        position += length
    return None


def check_pixels(data: bytes, *, name: str, detector: str, limits: ImageLimits) -> None:
    """Raise :class:`DetectorError` when ``data``'s header gives its size and
    that size is outside ``limits``; an unreadable header passes (Rekognition
    decides)."""
    size = read_pixel_size(data)
    if size is not None:
        check_pixel_size(size, name=name, detector=detector, limits=limits)


def check_pixel_size(
    size: PixelSize, *, name: str, detector: str, limits: ImageLimits, downscaling: bool = False
) -> None:
    """Raise :class:`DetectorError` for a size outside ``limits``; with
    ``downscaling`` (Pillow will scale it down), a side over the maximum is fine."""
    width, height = size
    shorter, longer = min(size), max(size)
    described = f"image {name!r} is {width}x{height} pixels"
    if shorter < limits.min_side:
        raise DetectorError(
            f"{described}, under {detector}'s minimum of {limits.min_side}x{limits.min_side}; "
            "send a larger image (`convert: true` does not enlarge images)",
            code="image-too-small",
        )
    max_ratio = limits.max_aspect_ratio
    if max_ratio is not None and longer > max_ratio * shorter:
        raise DetectorError(
            f"{described}, an aspect ratio of {longer / shorter:.2f}:1, over {detector}'s "
            f"{max_ratio:g}:1; crop it first",
            code="invalid-aspect-ratio",
        )
    if longer > limits.max_side and not downscaling:
        raise DetectorError(
            f"{described}, over {detector}'s maximum of {limits.max_side:,} pixels a side; "
            "resize it, or set `convert: true` to scale it down with Pillow",
            code="image-too-large",
        )


def s3_object(image: Image, *, detector: str) -> dict[str, str]:
    """``Image.S3Object`` for an image known by its ``s3://`` URI only, or a
    :class:`DetectorError` saying why it cannot be sent."""
    if image.uri is None:
        raise DetectorError(f"image {image.name!r} has neither bytes nor a URI", code="no-image")
    try:
        location = parse_s3_uri(image.uri)
    except S3InputError as exc:
        raise DetectorError(
            f"{detector} cannot send image {image.name!r}: {exc}; an image without bytes "
            "must be an S3 object, s3://bucket/key or s3://bucket/key?versionId=V",
            code="invalid-image-uri",
        ) from exc
    if image.size is not None and image.size > S3_MAX_BYTES:
        raise DetectorError(
            f"image {image.name!r} is {image.size:,} bytes, over Rekognition's "
            f"{S3_MAX_BYTES:,}-byte limit for S3 objects; resize or recompress it "
            "(and upload the smaller copy)",
            code="image-too-large",
        )
    return location.s3_object()


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """The request's ``Image`` and, when Pillow converted the image, what it did."""

    request: Mapping[str, Any]
    converted: Mapping[str, Any] | None = None


def prepare_image(
    image: Image, *, detector: str, limits: ImageLimits, convert: bool = False
) -> PreparedImage:
    """The ``Image`` to send for ``image``, checked against ``limits``:
    ``S3Object`` for an image without bytes, else ``Bytes``, converted first
    with Pillow when ``convert`` is set and the image needs it (conversion
    checks the pixels itself, after decoding, and scales down what it can)."""
    if image.data is None:
        return PreparedImage({"S3Object": s3_object(image, detector=detector)})
    if convert:
        from policy_engine_rekognition.convert import convert_image

        data, converted = convert_image(
            image.data, name=image.name, detector=detector, limits=limits
        )
        return PreparedImage({"Bytes": data}, converted)
    check_bytes(image.data, name=image.name, detector=detector, max_bytes=limits.max_bytes)
    check_pixels(image.data, name=image.name, detector=detector, limits=limits)
    if hides_its_default_image(image.data):
        # Rekognition would judge the decoy, not what a browser shows
        raise DetectorError(
            f"image {image.name!r} is an animated PNG whose default image is not "
            "part of its animation, or whose animation chunks are malformed: browsers "
            f"show the animation, while {detector} would see only the default image; "
            "set `convert: true` to send the first frame a browser shows",
            code="hidden-default-image",
        )
    return PreparedImage({"Bytes": image.data})
