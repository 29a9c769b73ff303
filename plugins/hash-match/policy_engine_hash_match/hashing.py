"""Hashing an image: SHA-256 of its bytes, and PDQ (with its quality and its
eight dihedral variants) of its pixels."""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from policy_engine.image import AMBIGUOUS, default_image_verdict
from policy_engine.pixels import eight_bit_rgb, shown_frame
from policy_engine_hash_match.errors import UndecodableImage

HASH_BYTES = 32
"""A PDQ hash is 256 bits; a SHA-256 digest is 256 bits too."""
HEX_DIGITS = 2 * HASH_BYTES

DIHEDRAL_VARIANTS = (
    "original",
    "rotate-90",
    "rotate-180",
    "rotate-270",
    "flip-x",
    "flip-y",
    "flip-plus",
    "flip-minus",
)
"""The transforms ``pdqhash.compute_dihedral`` hashes, in its order: the hash of
a rotated or mirrored copy equals (up to noise) one of these of the original."""

EXACT_VARIANTS_MAX_PIXELS = 640 * 640
"""Up to this many pixels, the rotated and mirrored variants are hashed from
the transformed pixels themselves (eight PDQ runs, about 50 ms at the limit)
unless ``compute_dihedral``'s are close for the image's size (see
:func:`_dct_variants_close`). Measured on 256 x 256 pictures, its variants
were 18 to 44 bits from the hash of the actual mirrored copy, so most mirrored
small uploads missed the default distance of 31 (8 runs: 0 to 2 bits); at
1024 x 768, 0 to 22 bits; above the limit they are used as they are."""

HashArray = npt.NDArray[np.uint8]
"""PDQ hashes as rows of 32 bytes, the first bit the most significant (the
order of the hex form hash exchanges use)."""


@dataclass(frozen=True, slots=True, eq=False)
class ImageHashes:
    sha256: str
    """The hex SHA-256 of the image's bytes."""
    pdq: HashArray
    """The image's PDQ hash and its dihedral variants, shape (8, 32), in
    :data:`DIHEDRAL_VARIANTS` order."""
    quality: int
    """PDQ's quality score, 0 to 100: low for flat or featureless images, whose
    hashes match unrelated images."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack_bits(bits: npt.ArrayLike) -> HashArray:
    """PDQ's 256 bits (0/1, most significant first) as 32 bytes."""
    return np.packbits(np.asarray(bits, dtype=np.uint8), axis=-1)


_OPENING = threading.Lock()


def hash_image(data: bytes, *, name: str = "image") -> ImageHashes:
    """The hashes of the encoded image ``data``; :class:`UndecodableImage` if
    Pillow cannot decode it."""
    import pdqhash  # type: ignore[import-untyped]  # no stubs; MIT, C++ bindings
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    if default_image_verdict(data) == AMBIGUOUS:
        raise UndecodableImage(
            f"{name}: an animated PNG whose animation chunks are malformed: decoders "
            "disagree on which frame it shows, so no hash can stand for it"
        )
    try:
        # Pillow warns of a bomb when it reads the header: an error here. The
        # filters are the process's, so one thread at a time changes them
        # (interleaved, catch_warnings leaves a filter behind); decoding runs in parallel
        with _OPENING, warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            opened = PILImage.open(io.BytesIO(data))
        with opened:
            pixels = np.asarray(eight_bit_rgb(shown_frame(opened)))
    except UnidentifiedImageError as exc:
        # Pillow's message names an in-memory buffer, which tells the user nothing
        why = "no image format Pillow knows"
        raise UndecodableImage(f"{name}: cannot decode the image to hash it: {why}") from exc
    except Exception as exc:  # Pillow raises many kinds for bad or hostile input
        raise UndecodableImage(f"{name}: cannot decode the image to hash it: {exc}") from exc
    height, width = pixels.shape[:2]
    if height * width <= EXACT_VARIANTS_MAX_PIXELS and not _dct_variants_close(height, width):
        hashed = [pdqhash.compute(np.ascontiguousarray(each)) for each in _dihedral(pixels)]
        variants, quality = [bits for bits, _ in hashed], hashed[0][1]
    else:
        variants, quality = pdqhash.compute_dihedral(pixels)
    return ImageHashes(sha256_hex(data), pack_bits(np.stack(variants)), int(quality))


def _dct_variants_close(height: int, width: int) -> bool:
    """Whether ``compute_dihedral``'s variants are within a few bits of the
    hashes of the turned and mirrored pixels (0 to 8 measured at 640 x 640 and
    800 x 600): PDQ downsamples to 64 x 64 with box filters ``(side + 127) //
    128`` pixels wide, and only an odd width is centred, so that a mirrored
    image is filtered as the original mirrored."""
    return all((side + 127) // 128 % 2 == 1 for side in (height, width))


def _dihedral(pixels: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], ...]:
    """The image turned and mirrored, in :data:`DIHEDRAL_VARIANTS` order (as
    ``compute_dihedral`` names them: flip-x mirrors top to bottom, flip-plus
    is the transpose)."""
    half_turn = np.rot90(pixels, 2)
    return (
        pixels,
        np.rot90(pixels, 1),
        half_turn,
        np.rot90(pixels, 3),
        pixels[::-1],
        pixels[:, ::-1],
        pixels.transpose(1, 0, 2),
        half_turn.transpose(1, 0, 2),
    )


def pdq_hex(row: HashArray) -> str:
    return bytes(row).hex()


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def parse_hex(text: str) -> bytes | None:
    """The 32 bytes that 64 hex digits spell, or None if ``text`` is not that
    (``bytes.fromhex`` alone skips whitespace: 64 characters with two spaces
    would be 31 bytes, shifting every later hash of a bank by one byte)."""
    if len(text) != HEX_DIGITS or not _HEX_DIGITS.issuperset(text):
        return None
    return bytes.fromhex(text)
