"""The image a detector looks at (policy_engine.image): what its bytes say it is,
and what identifies it."""

from __future__ import annotations

import io

import pytest

from policy_engine.image import PNG_SIGNATURE, Image, hides_its_default_image, sniff_format


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PNG_SIGNATURE + b"rest", "PNG"),
        (b"\xff\xd8\xff\xe0", "JPEG"),
        (b"GIF89a...", "GIF"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "WebP"),
        (b"\0\0\0\x18ftypheic", "HEIF/AVIF"),
        (b"\0\0\0\x18ftypisom", None),  # an MP4 is no image
        (b"%PDF-1.7", "PDF"),
        (b"", None),
        (b"just text", None),
    ],
)
def test_the_magic_bytes_name_the_format(data: bytes, expected: str | None) -> None:
    assert sniff_format(data) == expected


def test_an_image_is_identified_by_its_bytes_or_a_version_never_a_uri_alone() -> None:
    assert Image("a", b"x").identified
    assert Image("b", uri="s3://bucket/key", version='"etag"').identified
    bare = Image("c", uri="s3://bucket/key")
    assert not bare.identified
    assert bare.key != Image("c", uri="s3://bucket/key", version='"etag"').key


def _png(*, frames: int = 1, hidden_default: bool = False) -> bytes:
    from PIL import Image as Pillow

    pictures = [Pillow.new("RGB", (6, 4), (40 * i, 0, 0)) for i in range(frames)]
    out = io.BytesIO()
    options = {"save_all": True, "append_images": pictures[1:]} if frames > 1 else {}
    pictures[0].save(out, format="PNG", default_image=hidden_default, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "hides"),
    [
        (_png(frames=2, hidden_default=True), True),  # browsers show frame 2 only
        (_png(frames=3, hidden_default=False), False),  # the default image is frame 1
        (_png(), False),
        (b"\xff\xd8\xff\xe0 a JPEG", False),
        (_png(frames=2, hidden_default=True)[:40], False),  # cut before the IDAT
        (PNG_SIGNATURE + b"\xff\xff\xff\xffacTL", False),  # a chunk longer than the file
    ],
    ids=["hidden", "first-frame", "still", "jpeg", "truncated", "bogus-length"],
)
def test_an_apng_hiding_its_default_image_is_told_from_its_chunks(data: bytes, hides: bool) -> None:
    assert hides_its_default_image(data) is hides
