"""Checks on an image before it is sent: botocore sends an empty, oversized or
GIF image as it is, and the service's answer (after a round trip, possibly
billed) says less than we can say here."""

from __future__ import annotations

from policy_engine.errors import DetectorError
from policy_engine.image import Image

ACCEPTED_FORMATS = "JPEG or PNG"

_ACCEPTED_SIGNATURES = (
    ("JPEG", b"\xff\xd8\xff"),
    ("PNG", b"\x89PNG\r\n\x1a\n"),
)
# Only to name what the user sent; none of these is accepted.
_OTHER_SIGNATURES = (
    ("GIF", b"GIF87a"),
    ("GIF", b"GIF89a"),
    ("BMP", b"BM"),
    ("TIFF", b"II*\x00"),
    ("TIFF", b"MM\x00*"),
    ("PDF", b"%PDF"),
)


def sniff_format(data: bytes) -> str | None:
    """The image format named by ``data``'s magic bytes, or None if unknown."""
    for name, signature in _ACCEPTED_SIGNATURES + _OTHER_SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "HEIF/AVIF"
    return None


def check_image(image: Image, *, detector: str, max_bytes: int) -> None:
    """Raise :class:`DetectorError` unless ``image`` is a non-empty JPEG or PNG
    of at most ``max_bytes`` bytes."""
    accepted = f"{detector} accepts {ACCEPTED_FORMATS} images of 1 to {max_bytes:,} bytes"
    size = len(image.data)
    if size == 0:
        raise DetectorError(f"image {image.name!r} is empty; {accepted}", code="empty-image")
    if size > max_bytes:
        raise DetectorError(
            f"image {image.name!r} is {size:,} bytes, over the limit; {accepted} "
            f"(resize or recompress it first)",
            code="image-too-large",
        )
    image_format = sniff_format(image.data)
    if image_format not in ("JPEG", "PNG"):
        what = image_format or "not a recognised image format"
        raise DetectorError(
            f"image {image.name!r} is {what}; {accepted}",
            code="unsupported-image-format",
        )
