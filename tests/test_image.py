"""The image a detector looks at (policy_engine.image): what its bytes say it is,
and what identifies it."""

from __future__ import annotations

import pytest

from policy_engine.image import PNG_SIGNATURE, Image, sniff_format


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
