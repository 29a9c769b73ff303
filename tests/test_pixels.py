"""eight_bit_rgb: every mode a detector may decode reads as the 8-bit RGB a
viewer would see, so that a 16-bit or float re-save of an image is not a
white (or black) image to a hash bank or a classifier."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image as Pillow

from policy_engine.pixels import eight_bit_rgb, shown_frame

grey_8_bit = hnp.arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)))


def rgb_of(picture: Pillow.Image) -> npt.NDArray[np.uint8]:
    converted = eight_bit_rgb(picture)
    assert converted.mode == "RGB"
    return np.asarray(converted)


def reloaded(picture: Pillow.Image, format: str) -> Pillow.Image:
    out = io.BytesIO()
    picture.save(out, format=format)
    return Pillow.open(io.BytesIO(out.getvalue()))


@settings(max_examples=60, deadline=None)
@given(grey_8_bit)
def test_a_16_bit_copy_of_a_grey_image_reads_as_the_original(grey: npt.NDArray[np.uint8]) -> None:
    original = rgb_of(Pillow.fromarray(grey, "L"))
    widened = grey.astype(np.uint16) * 257  # how an editor widens 8 bits to 16

    assert (rgb_of(reloaded(Pillow.fromarray(widened), "PNG")) == original).all()
    assert (rgb_of(Pillow.fromarray(widened.astype(np.int32), "I")) == original).all()


@settings(max_examples=60, deadline=None)
@given(grey_8_bit)
def test_32_bit_integer_grey_reads_as_the_original_whatever_its_range(
    grey: npt.NDArray[np.uint8],
) -> None:
    original = rgb_of(Pillow.fromarray(grey, "L"))
    # convert("I") keeps 0-255: read as 16-bit, the picture would come out black
    assert (rgb_of(reloaded(Pillow.fromarray(grey, "L").convert("I"), "TIFF")) == original).all()
    # 16-bit values (an 8-bit one widened is 0 or at least 257) are scaled by 1/257
    widened = Pillow.fromarray(grey.astype(np.int32) * 257, "I")
    assert (rgb_of(reloaded(widened, "TIFF")) == original).all()


@settings(max_examples=60, deadline=None)
@given(grey_8_bit, st.sampled_from([1 / 255, 1.0, 257.0]))
def test_float_grey_reads_as_the_original_whatever_its_range(
    grey: npt.NDArray[np.uint8], scale: float
) -> None:
    floats = Pillow.fromarray(grey.astype(np.float32) * np.float32(scale), "F")
    # a nearly black image in 0-255 floats is read as if in 0-1: only its brightest pixel tells
    assume(grey.max() > 1 or scale != 1.0)
    assert (rgb_of(reloaded(floats, "TIFF")) == rgb_of(Pillow.fromarray(grey, "L"))).all()


def test_rgb_is_returned_as_it_is() -> None:
    picture = Pillow.new("RGB", (3, 2), (10, 20, 30))
    assert eight_bit_rgb(picture) is picture


def test_what_transparency_hides_is_kept_not_painted_over() -> None:
    # a re-encode without alpha (a JPEG thumbnail) shows the hidden colour: detectors must see it
    hidden = Pillow.new("RGBA", (4, 4), (200, 30, 40, 0))
    assert (rgb_of(hidden) == (200, 30, 40)).all()


def apng(
    default: Pillow.Image, frames: list[Pillow.Image], *, hidden_default: bool
) -> Pillow.Image:
    out = io.BytesIO()
    default.save(
        out, format="PNG", save_all=True, append_images=frames, default_image=hidden_default
    )
    return Pillow.open(io.BytesIO(out.getvalue()))


def test_an_apng_is_read_at_the_first_frame_a_viewer_shows() -> None:
    blank = Pillow.new("RGB", (8, 6), (255, 255, 255))
    shown = Pillow.new("RGB", (8, 6), (200, 30, 40))
    # the default image is not part of the animation: browsers show only `shown`
    hidden = apng(blank, [shown], hidden_default=True)
    assert (rgb_of(shown_frame(hidden)) == (200, 30, 40)).all()
    # the default image is the animation's first frame: it is what is shown first
    first = apng(shown, [blank], hidden_default=False)
    assert (rgb_of(shown_frame(first)) == (200, 30, 40)).all()
    still = Pillow.new("L", (3, 3), 7)
    assert shown_frame(still) is still
