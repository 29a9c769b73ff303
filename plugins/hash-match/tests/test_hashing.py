from __future__ import annotations

import io
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hash_match_helpers import encoded, picture
from PIL import Image as PILImage

from policy_engine_hash_match.errors import UndecodableImage
from policy_engine_hash_match.hashing import DIHEDRAL_VARIANTS, hash_image, sha256_hex
from policy_engine_hash_match.index import distances_to

TRANSPOSES = [
    PILImage.Transpose.ROTATE_90,
    PILImage.Transpose.ROTATE_180,
    PILImage.Transpose.ROTATE_270,
    PILImage.Transpose.FLIP_LEFT_RIGHT,
    PILImage.Transpose.FLIP_TOP_BOTTOM,
    PILImage.Transpose.TRANSPOSE,
    PILImage.Transpose.TRANSVERSE,
]


@pytest.mark.parametrize("transpose", TRANSPOSES, ids=lambda t: t.name)
def test_a_rotated_or_mirrored_copy_hashes_to_one_of_the_originals_variants(
    transpose: PILImage.Transpose,
) -> None:
    original = hash_image(encoded(picture(1)))
    copy = hash_image(encoded(picture(1).transpose(transpose)))
    # the copy's own hash is close to one of the original's eight, and far from its own
    distances = distances_to(original.pdq, copy.pdq[0])
    assert distances.min() <= 8 < distances[0]


def test_a_re_encoded_copy_is_near_and_a_different_picture_is_far() -> None:
    original = hash_image(encoded(picture(1)))
    jpeg = hash_image(encoded(picture(1), "JPEG"))
    other = hash_image(encoded(picture(2)))
    assert distances_to(original.pdq[:1], jpeg.pdq[0])[0] <= 16
    assert distances_to(original.pdq, other.pdq[0]).min() > 64
    assert jpeg.sha256 != original.sha256


def test_the_hashes_of_an_image() -> None:
    data = encoded(picture(3))
    hashes = hash_image(data)
    assert hashes.sha256 == sha256_hex(data)
    assert hashes.pdq.shape == (len(DIHEDRAL_VARIANTS), 32) and hashes.pdq.dtype == np.uint8
    assert hashes.quality >= 50
    flat = hash_image(encoded(PILImage.new("RGB", (64, 64), "grey")))
    assert flat.quality < 50  # nothing to hash: PDQ says so


@pytest.mark.parametrize("data", [b"", b"not an image", encoded(picture(1))[:40]])
def test_bytes_that_do_not_decode_are_a_typed_error(data: bytes) -> None:
    with pytest.raises(UndecodableImage, match=r"upload\.png: cannot decode the image") as info:
        hash_image(data, name="upload.png")
    assert info.value.code == "undecodable-image" and info.value.sent is False
    assert "BytesIO" not in str(info.value)  # what the user reads names no buffer


def test_a_16_bit_re_save_of_a_banked_picture_still_matches() -> None:
    # a plain convert("RGB") clips 16-bit grey to white: a re-save that would evade the bank
    grey = picture(1).convert("L")
    widened = PILImage.fromarray(np.asarray(grey).astype(np.uint16) * 257)

    original = hash_image(encoded(grey))
    copy = hash_image(encoded(widened))

    assert copy.sha256 != original.sha256
    assert distances_to(original.pdq[:1], copy.pdq[0])[0] == 0


@pytest.mark.parametrize("size", [(256, 256), (512, 384), (800, 600)], ids=str)
@pytest.mark.parametrize("transpose", TRANSPOSES, ids=lambda t: t.name)
def test_a_turned_copy_of_a_small_picture_is_within_a_few_bits(
    transpose: PILImage.Transpose, size: tuple[int, int]
) -> None:
    # compute_dihedral's variants of a 256 x 256 image were 18 to 44 bits off;
    # up to 640 x 640 pixels the variants are hashed from the turned pixels
    original = hash_image(encoded(picture(3, size), "JPEG"))
    copy = hash_image(encoded(picture(3, size).transpose(transpose), "JPEG"))
    assert distances_to(original.pdq[:1], copy.pdq).min() <= 8


def test_an_apng_hiding_a_picture_behind_a_blank_default_image_hashes_as_the_picture() -> None:
    # browsers never show an APNG's default image when it is not part of the animation:
    # a blank one in front of a one-frame animation would evade a bank that Pillow reads
    shown = picture(1)
    out = io.BytesIO()
    blank = PILImage.new("RGB", shown.size, (255, 255, 255))
    blank.save(out, format="PNG", save_all=True, append_images=[shown], default_image=True)

    hidden = hash_image(out.getvalue())
    assert hidden.quality == hash_image(encoded(shown)).quality
    assert (hidden.pdq == hash_image(encoded(shown)).pdq).all()


def test_an_integer_grey_tiff_of_a_banked_picture_matches_it() -> None:
    # convert("I") keeps 0-255: read as 16-bit, it was black (quality 0, never PDQ-matched)
    grey = picture(1).convert("L")
    copy = hash_image(encoded(grey.convert("I"), "TIFF"))
    assert copy.quality == hash_image(encoded(grey)).quality
    assert int(distances_to(hash_image(encoded(grey)).pdq, copy.pdq[0]).min()) == 0


@pytest.mark.filterwarnings("ignore:Invalid APNG")  # Pillow's, for the second acTL
def test_an_apng_with_malformed_animation_chunks_is_not_hashed() -> None:
    # a second acTL: Pillow reads the default image, browsers play the animation
    out = io.BytesIO()
    blank = PILImage.new("RGB", (64, 64), (255, 255, 255))
    blank.save(out, format="PNG", save_all=True, append_images=[picture(1)], default_image=True)
    body = (1).to_bytes(4, "big") + bytes(4)
    actl = (
        len(body).to_bytes(4, "big")
        + b"acTL"
        + body
        + zlib.crc32(b"acTL" + body).to_bytes(4, "big")
    )
    data = out.getvalue()[:33] + actl + out.getvalue()[33:]

    with pytest.raises(UndecodableImage, match="animation chunks are malformed"):
        hash_image(data)


def test_hashing_from_many_threads_leaves_the_warning_filters_as_they_were() -> None:
    # check --concurrency hashes on many threads; the filters are the whole process's
    data = encoded(picture(1))
    before = list(warnings.filters)

    with ThreadPoolExecutor(8) as pool:
        hashed = list(pool.map(lambda _: hash_image(data), range(200)))

    assert warnings.filters == before
    assert all((each.pdq == hashed[0].pdq).all() for each in hashed)
