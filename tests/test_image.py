"""The image a detector looks at (policy_engine.image): what its bytes say it is,
and what identifies it."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy_engine.image import (
    AMBIGUOUS,
    HIDDEN,
    PNG_SIGNATURE,
    SHOWN,
    DefaultImageScan,
    Image,
    hides_its_default_image,
    sniff_format,
)


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


CHUNK_PIECE = 8 + 26  # a chunk's header and the most data the scan needs (an fcTL's)


@given(
    variant=st.sampled_from([(2, True), (3, False), (1, False)]),
    metadata=st.integers(min_value=0, max_value=300),
    first_read=st.integers(min_value=len(PNG_SIGNATURE), max_value=400),
)
def test_reading_by_pieces_tells_what_reading_the_whole_file_tells(
    variant: tuple[int, bool], metadata: int, first_read: int
) -> None:
    # as an S3 object is screened: a first range, then one chunk header at a time
    frames, hidden_default = variant
    whole = _png(frames=frames, hidden_default=hidden_default)
    text = b"k\0" + b"m" * metadata
    chunk = len(text).to_bytes(4, "big") + b"tEXt" + text + b"\0\0\0\0"
    whole = whole[:33] + chunk + whole[33:]  # after the IHDR
    scan = DefaultImageScan().read(whole[:first_read], 0)
    while scan.verdict is None and scan.next_chunk < len(whole):
        piece = whole[scan.next_chunk : scan.next_chunk + CHUNK_PIECE]
        scan = scan.read(piece, scan.next_chunk)

    hidden = frames > 1 and hidden_default
    assert scan.verdict == (HIDDEN if hidden else SHOWN)
    assert hides_its_default_image(whole) is hidden


def _chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + b"\0\0\0\0"  # the scan reads no CRC


def _apng(*control: bytes) -> bytes:
    """A 2x2 PNG with ``control`` chunks between its IHDR and its IDAT."""
    ihdr = _chunk(b"IHDR", (2).to_bytes(4, "big") * 2 + b"\x08\x02\0\0\0")
    tail = _chunk(b"IDAT", b"blank") + _chunk(b"IEND", b"")
    return PNG_SIGNATURE + ihdr + b"".join(control) + tail


def _actl(frames: int = 1, extra: bytes = b"") -> bytes:
    return _chunk(b"acTL", frames.to_bytes(4, "big") + bytes(4) + extra)


def _fctl(
    sequence: int = 0, width: int = 2, height: int = 2, x: int = 0, extra: bytes = b""
) -> bytes:
    fields = [sequence, width, height, x, 0]
    return _chunk(b"fcTL", b"".join(v.to_bytes(4, "big") for v in fields) + bytes(6) + extra)


@pytest.mark.parametrize(
    ("data", "verdict"),
    [
        (_apng(), SHOWN),
        (_apng(_actl()), HIDDEN),
        (_apng(_actl(), _fctl()), SHOWN),
        # decoders skip an fcTL they find invalid, and then show the animation
        (_apng(_actl(), _fctl(width=1)), AMBIGUOUS),
        (_apng(_actl(), _fctl(x=1)), AMBIGUOUS),
        (_apng(_actl(), _fctl(sequence=1)), AMBIGUOUS),
        (_apng(_actl(), _fctl(extra=b"xxxx")), AMBIGUOUS),
        (_apng(_actl(), _fctl(), _fctl()), AMBIGUOUS),
        (_apng(_fctl(), _actl()), AMBIGUOUS),
        # Pillow falls back to the default image where a browser plays the animation
        (_apng(_actl(), _actl()), AMBIGUOUS),
        (_apng(_actl(frames=0)), AMBIGUOUS),
        (_apng(_actl(frames=2**31)), AMBIGUOUS),
        (_apng(_actl(extra=b"x")), AMBIGUOUS),
    ],
    ids=[
        "still",
        "hidden",
        "first-frame",
        "fctl-wrong-size",
        "fctl-offset",
        "fctl-sequence",
        "fctl-wrong-length",
        "two-fctls",
        "fctl-before-actl",
        "two-actls",
        "no-frames",
        "too-many-frames",
        "actl-wrong-length",
    ],
)
def test_malformed_animation_chunks_are_ambiguous_never_shown(data: bytes, verdict: str) -> None:
    assert DefaultImageScan().read(data, 0).verdict == verdict
    assert hides_its_default_image(data) is (verdict != SHOWN)
