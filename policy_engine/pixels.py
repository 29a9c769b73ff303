"""One 8-bit RGB reading of a decoded image, for every detector that looks
at pixels (hash banks, local models, conversion for an API).

A plain ``convert("RGB")`` clips 16-bit and float greyscale to 255, so a
16-bit copy of an image would come out white: a re-save that evades a hash
bank and blinds a classifier. Here those modes are scaled to 8 bits. The core
does not depend on Pillow: only a plugin that already decoded a picture
calls this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image as PillowImage

_SIXTEEN_BIT_TO_EIGHT = 1 / 257
"""65535 / 257 = 255 exactly: an 8-bit value v widened to 16 bits (v * 257)
comes back as v."""


def shown_frame(picture: PillowImage) -> PillowImage:
    """``picture`` at the frame a viewer shows first. Pillow opens an APNG at
    its default image (IDAT) even when that image is not part of the
    animation (``default_image`` in its info): every APNG-aware viewer (all
    current browsers) never shows it, so a blank default image in front of a
    one-frame animation would hide the picture from a detector. Such an image
    is moved to its first animation frame; any other is left as it is."""
    if picture.info.get("default_image") and getattr(picture, "n_frames", 1) > 1:
        picture.seek(1)
    return picture


def eight_bit_rgb(picture: PillowImage) -> PillowImage:
    """``picture`` as 8-bit RGB: 16-bit and float greyscale scaled to 8 bits,
    every other mode converted by Pillow. Alpha is dropped, not laid over a
    background: what is hidden under transparency is what any re-encode
    without alpha (a JPEG thumbnail) shows, so a detector must see it."""
    if picture.mode == "RGB":
        return picture
    if picture.mode.startswith("I;16"):
        picture = picture.convert("I").point(lambda value: value * _SIXTEEN_BIT_TO_EIGHT)
        return picture.convert("L").convert("RGB")
    if picture.mode == "I":
        return _int_to_eight_bit(picture).convert("RGB")
    if picture.mode == "F":
        return _float_to_eight_bit(picture).convert("RGB")
    return picture.convert("RGB")


def _int_to_eight_bit(picture: PillowImage) -> PillowImage:
    """32-bit integer greyscale (a TIFF, a 16-bit PGM, ``convert("I")``) has
    no fixed range either: 0-255 values are kept (scaling them as 16-bit
    would turn the picture black: ``convert("I")`` of an 8-bit image saved as
    TIFF evaded a bank), 16-bit ones scaled by 1/257, larger ones by the
    brightest pixel."""
    extrema = picture.getextrema()
    brightest = int(extrema[1]) if isinstance(extrema[1], (int, float)) else 0
    if brightest <= 255:
        return picture.convert("L")
    scale = _SIXTEEN_BIT_TO_EIGHT if brightest <= 65535 else 255 / brightest
    return picture.point(lambda value: value * scale).convert("L")


def _float_to_eight_bit(picture: PillowImage) -> PillowImage:
    """Float greyscale has no fixed range: 0-1 (the usual), 0-255 or 16-bit
    values are each scaled to 0-255, told apart by the brightest pixel."""
    extrema = picture.getextrema()
    brightest = float(extrema[1]) if isinstance(extrema[1], (int, float)) else 0.0
    if brightest <= 1.0:
        scale = 255.0
    elif brightest <= 255.0:
        scale = 1.0
    else:
        scale = _SIXTEEN_BIT_TO_EIGHT
    return picture.point(lambda value: value * scale).convert("L")
