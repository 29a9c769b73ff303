"""Optional conversion with Pillow (the detectors' ``convert: true`` setting).

Rekognition takes JPEG and PNG only, within byte and pixel limits. With
``convert: true`` an image in another format Pillow reads (GIF, WebP, BMP,
TIFF; HEIC only with a Pillow plugin such as pillow-heif registered) is
re-encoded as JPEG, and one over the byte or pixel limits is scaled down
until it fits; an image that is already acceptable is sent untouched.
Nothing is ever enlarged, padded or cropped: an image under the minimum size
or, for custom labels, of an aspect ratio over 20:1 is an error.

Pillow is imported when an image is converted, never at import time.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from policy_engine import DetectorError
from policy_engine.image import AMBIGUOUS, HIDDEN, default_image_verdict, sniff_format
from policy_engine.pixels import eight_bit_rgb, shown_frame
from policy_engine_rekognition.images import (
    ImageLimits,
    PixelSize,
    check_bytes,
    check_pixel_size,
)

if TYPE_CHECKING:
    from PIL.Image import Image as PillowImage

CONVERT_SETTING: Mapping[str, Mapping[str, Any]] = {
    "convert": {
        "type": "boolean",
        "default": False,
        "description": "Convert images Rekognition would refuse (GIF, WebP, BMP, TIFF; over "
        "the byte or pixel limits) to a JPEG that fits, with Pillow, before sending "
        "(`pip install 'policy-engine-rekognition[convert]'`). Never applies to S3 objects. "
        "Unset: false (such images are errors).",
    }
}

INSTALL_HINT = "pip install pillow (or pip install 'policy-engine-rekognition[convert]')"
_JPEG_QUALITIES = (90, 80, 70)
_MAX_SHRINKS = 8


def convert_image(
    data: bytes, *, name: str, detector: str, limits: ImageLimits
) -> tuple[bytes, dict[str, Any] | None]:
    """``data`` as it should be sent, and what conversion did (None: nothing,
    the image was acceptable). Raises :class:`DetectorError` when Pillow is
    missing, cannot read the image, or no scaling down can make it fit."""
    if not data:
        check_bytes(data, name=name, detector=detector, max_bytes=limits.max_bytes)
    try:
        from PIL import Image as PIL
        from PIL import ImageOps, UnidentifiedImageError
    except ImportError as exc:
        raise DetectorError(
            f"{detector}: `convert: true` needs Pillow, which is not installed: {INSTALL_HINT}",
            code="missing-dependency",
        ) from exc

    sniffed = sniff_format(data)
    try:
        with PIL.open(io.BytesIO(data)) as opened:
            from_format = opened.format or sniffed or "unknown"
            width, height = opened.size
            frames = getattr(opened, "n_frames", 1)
            check_pixel_size(
                PixelSize(width, height),
                name=name,
                detector=detector,
                limits=limits,
                downscaling=True,
            )
            too_large = len(data) > limits.max_bytes or max(width, height) > limits.max_side
            # an APNG's hidden default image is a decoy: send the frame browsers show
            verdict = default_image_verdict(data)
            decoy = verdict in (HIDDEN, AMBIGUOUS)
            if sniffed in ("JPEG", "PNG") and not too_large and not decoy:
                return data, None
            if decoy and not (verdict == HIDDEN and _pillow_shows_the_animation(opened)):
                raise DetectorError(
                    f"image {name!r} is an animated PNG whose animation chunks are "
                    "malformed: decoders disagree on what it shows, so no one frame "
                    f"can stand for it; {detector} does not send it",
                    code="hidden-default-image",
                )
            scale = min(1.0, limits.max_side / max(width, height))
            if from_format == "JPEG":
                # Decode at 1/2, 1/4 or 1/8 scale when that is still large enough.
                opened.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
            opened.seek(0)
            picture = ImageOps.exif_transpose(shown_frame(opened))
            picture.load()
    except UnidentifiedImageError as exc:
        what = sniffed or "not a recognised image format"
        hint = " (HEIC needs a Pillow plugin such as pillow-heif)" if sniffed == "HEIF/AVIF" else ""
        raise DetectorError(
            f"image {name!r} is {what}, which Pillow cannot read{hint}; {detector} "
            "accepts JPEG or PNG",
            code="unsupported-image-format",
        ) from exc
    except PIL.DecompressionBombError as exc:
        raise DetectorError(
            f"image {name!r} has too many pixels to convert safely ({exc}); resize it first",
            code="image-too-large",
        ) from exc
    except (OSError, EOFError, SyntaxError, ValueError) as exc:  # EOFError: a missing frame
        raise DetectorError(
            f"image {name!r} could not be decoded for conversion ({exc}); it may be "
            "truncated or corrupt",
            code="invalid-image",
        ) from exc

    rgb = _flatten(picture)
    out, size = _encode_within(rgb, name=name, detector=detector, limits=limits)
    converted: dict[str, Any] = {
        "from_format": from_format,
        "from_bytes": len(data),
        "from_pixels": [width, height],
        "to_format": "JPEG",
        "to_bytes": len(out),
        "to_pixels": list(size),
    }
    if frames > 1:
        converted["frames"] = frames  # the first one was sent
    return out, converted


def _pillow_shows_the_animation(opened: PillowImage) -> bool:
    """Whether Pillow reads an APNG with a hidden default image as one (then
    :func:`shown_frame` moves to its first animation frame); a malformed one it
    may read as a still picture of the decoy."""
    return bool(opened.info.get("default_image")) and getattr(opened, "n_frames", 1) > 1


def _flatten(picture: PillowImage) -> PillowImage:
    """RGB, with any transparency laid over white (JPEG has no alpha)."""
    from PIL import Image as PIL

    if picture.mode.startswith("I") or picture.mode == "F":
        return eight_bit_rgb(picture)  # a tRNS grey level of 16-bit grey is not kept
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        background = PIL.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return eight_bit_rgb(picture)


def _encode_within(
    picture: PillowImage, *, name: str, detector: str, limits: ImageLimits
) -> tuple[bytes, tuple[int, int]]:
    """JPEG bytes of ``picture``, scaled down until both its pixels and its bytes fit."""
    from PIL import Image as PIL

    width, height = picture.size
    scale = min(1.0, limits.max_side / max(width, height))
    for _ in range(_MAX_SHRINKS):
        size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
        if min(size) < limits.min_side:
            break
        resized = picture if size == picture.size else picture.resize(size, PIL.Resampling.LANCZOS)
        for quality in _JPEG_QUALITIES:
            buffer = io.BytesIO()
            resized.save(buffer, format="JPEG", quality=quality, optimize=True)
            if buffer.tell() <= limits.max_bytes:
                return buffer.getvalue(), size
        # Too many bytes even at the lowest quality: fewer pixels, in proportion.
        scale *= min(0.9, math.sqrt(limits.max_bytes / buffer.tell()))
    raise DetectorError(
        f"image {name!r} ({width}x{height} pixels) could not be made to fit {detector}'s "
        f"{limits.max_bytes:,} bytes without going under {limits.min_side}x{limits.min_side} "
        "pixels; resize or recompress it yourself",
        code="image-too-large",
    )
