"""``convert: true``: other formats to JPEG and oversized images scaled down
with Pillow before sending; through FakeRekognition, which checks what it
receives as Rekognition does (JPEG or PNG, within the byte limits)."""

from __future__ import annotations

import hashlib
import io
import random
import sys
from collections.abc import Callable
from typing import Any

import pytest

from policy_engine.detectors import DetectContext, Detector
from policy_engine.errors import DetectorError
from policy_engine.image import Image
from policy_engine_rekognition.custom_labels import CustomLabelsDetector
from policy_engine_rekognition.images import CUSTOM_LABELS_LIMITS, MODERATION_LIMITS
from policy_engine_rekognition.moderation import ModerationDetector
from policy_engine_rekognition.testing import FakeRekognition

PIL = pytest.importorskip("PIL.Image")

Context = Callable[..., DetectContext]
MODEL_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/version/logos.1/1"


def encode(picture: Any, image_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def plain(size: tuple[int, int], mode: str = "RGB", color: Any = (200, 30, 30)) -> Any:
    return PIL.new(mode, size, color)


def noise(size: tuple[int, int], seed: int = 0) -> Any:
    """Incompressible pixels: the bytes stay large in any format."""
    data = random.Random(seed).randbytes(size[0] * size[1] * 3)
    return PIL.frombytes("RGB", size, data)


def settings_for(fake: FakeRekognition, **more: Any) -> dict[str, Any]:
    return {
        "endpoint_url": fake.endpoint_url,
        "retry_mode": "standard",
        "max_attempts": 1,
        "convert": True,
        **more,
    }


def moderation(fake: FakeRekognition) -> tuple[Detector, dict[str, Any]]:
    return ModerationDetector(), settings_for(fake)


def custom_labels(fake: FakeRekognition) -> tuple[Detector, dict[str, Any]]:
    return CustomLabelsDetector(), settings_for(fake, project_version_arn=MODEL_ARN)


def sent(fake: FakeRekognition) -> tuple[str, int]:
    """The sha256 and size of the last image the fake received."""
    image = fake.calls[-1].request["Image"]
    return image["Sha256"], image["Size"]


def opened(data: bytes) -> Any:
    return PIL.open(io.BytesIO(data))


@pytest.mark.parametrize(
    ("image_format", "options", "mode"),
    [
        ("GIF", {}, "P"),
        ("WEBP", {"quality": 80}, "RGB"),
        ("WEBP", {"lossless": True}, "RGBA"),
        ("BMP", {}, "RGB"),
        ("TIFF", {}, "RGB"),
        ("TIFF", {}, "CMYK"),
    ],
)
@pytest.mark.parametrize("which", [moderation, custom_labels])
def test_other_formats_become_jpeg(
    fake: FakeRekognition,
    context: Context,
    image_format: str,
    options: dict[str, Any],
    mode: str,
    which: Callable[[FakeRekognition], tuple[Detector, dict[str, Any]]],
) -> None:
    color: Any = (10, 20, 30, 128) if mode == "RGBA" else (0, 0, 0, 0) if mode == "CMYK" else 1
    picture = plain((200, 120), mode, color) if mode != "RGB" else plain((200, 120))
    data = encode(picture, image_format, **options)
    detector, settings = which(fake)

    result = detector.detect(Image(name="upload", data=data), context(detector, settings))

    converted = result.metadata["converted"]
    assert converted["from_format"] == image_format
    assert converted["from_bytes"] == len(data)
    assert converted["from_pixels"] == [200, 120]
    assert converted["to_format"] == "JPEG" and converted["to_pixels"] == [200, 120]
    assert fake.calls[-1].ok  # the fake accepted it: a JPEG within the limits
    assert sent(fake)[1] == converted["to_bytes"]


def test_without_convert_other_formats_are_still_refused(
    fake: FakeRekognition, context: Context
) -> None:
    data = encode(plain((200, 120)), "WEBP")
    detector = ModerationDetector()
    settings = {**settings_for(fake), "convert": False}

    with pytest.raises(DetectorError) as raised:
        detector.detect(Image(name="upload.webp", data=data), context(detector, settings))

    assert raised.value.code == "unsupported-image-format"
    assert "WebP" in str(raised.value) and "convert: true" in str(raised.value)
    assert fake.call_count() == 0


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_an_acceptable_image_is_sent_untouched(
    fake: FakeRekognition, context: Context, image_format: str
) -> None:
    data = encode(plain((300, 200), "RGBA" if image_format == "PNG" else "RGB"), image_format)
    detector, settings = moderation(fake)

    result = detector.detect(Image(name="ok", data=data), context(detector, settings))

    assert "converted" not in result.metadata
    assert sent(fake) == (hashlib.sha256(data).hexdigest(), len(data))


def test_a_png_over_the_byte_limit_becomes_a_jpeg_under_it(
    fake: FakeRekognition, context: Context
) -> None:
    data = encode(noise((1400, 1400)), "PNG", compress_level=1)
    assert len(data) > MODERATION_LIMITS.max_bytes
    detector, settings = moderation(fake)

    result = detector.detect(Image(name="huge.png", data=data), context(detector, settings))

    converted = result.metadata["converted"]
    assert converted["from_format"] == "PNG" and converted["from_bytes"] == len(data)
    assert converted["to_bytes"] <= MODERATION_LIMITS.max_bytes
    assert fake.calls[-1].ok


def test_a_jpeg_over_custom_labels_bytes_is_scaled_down_until_it_fits(
    fake: FakeRekognition, context: Context
) -> None:
    data = encode(noise((2000, 2000), seed=1), "JPEG", quality=100)
    assert len(data) > CUSTOM_LABELS_LIMITS.max_bytes
    detector, settings = custom_labels(fake)

    result = detector.detect(Image(name="noisy.jpg", data=data), context(detector, settings))

    converted = result.metadata["converted"]
    assert converted["to_bytes"] <= CUSTOM_LABELS_LIMITS.max_bytes
    width, height = converted["to_pixels"]
    assert width == height and 64 <= width <= 2000
    assert fake.calls[-1].ok


def test_over_the_pixel_limit_is_scaled_down_keeping_the_aspect_ratio(
    fake: FakeRekognition, context: Context
) -> None:
    data = encode(plain((4200, 300)), "PNG")
    assert len(data) < CUSTOM_LABELS_LIMITS.max_bytes  # only the pixels are over
    detector, settings = custom_labels(fake)

    result = detector.detect(Image(name="banner.png", data=data), context(detector, settings))

    assert result.metadata["converted"]["to_pixels"] == [4096, 292]
    (received,) = [call for call in fake.calls if call.ok]
    assert received.request["Image"]["Size"] == result.metadata["converted"]["to_bytes"]
    # Moderation allows 10,000 pixels a side: the same PNG goes as it is.
    detector, settings = moderation(fake)
    assert (
        "converted"
        not in detector.detect(
            Image(name="banner.png", data=data), context(detector, settings)
        ).metadata
    )


def test_exif_orientation_is_applied_before_the_exif_is_dropped(
    fake: FakeRekognition, context: Context
) -> None:
    exif = PIL.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(plain((300, 100)), "WEBP", exif=exif)
    detector, settings = moderation(fake)

    result = detector.detect(Image(name="phone.webp", data=data), context(detector, settings))

    assert result.metadata["converted"]["to_pixels"] == [100, 300]


def test_an_animated_gif_sends_its_first_frame(fake: FakeRekognition, context: Context) -> None:
    frames = [plain((120, 90), color=color) for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    detector, settings = moderation(fake)

    result = detector.detect(Image(name="anim.gif", data=data), context(detector, settings))

    assert result.metadata["converted"]["frames"] == 3


@pytest.mark.parametrize(
    ("which", "size", "code", "phrase"),
    [
        (moderation, (79, 200), "image-too-small", "minimum of 80x80"),
        (custom_labels, (63, 200), "image-too-small", "minimum of 64x64"),
        (custom_labels, (2100, 100), "invalid-aspect-ratio", "21.00:1"),
    ],
)
def test_what_scaling_down_cannot_fix_is_an_error(
    fake: FakeRekognition,
    context: Context,
    which: Callable[[FakeRekognition], tuple[Detector, dict[str, Any]]],
    size: tuple[int, int],
    code: str,
    phrase: str,
) -> None:
    data = encode(plain(size), "GIF")
    detector, settings = which(fake)

    with pytest.raises(DetectorError) as raised:
        detector.detect(Image(name="odd.gif", data=data), context(detector, settings))

    assert raised.value.code == code and phrase in str(raised.value)
    assert fake.call_count() == 0


@pytest.mark.parametrize(
    ("data", "code", "phrase"),
    [
        (b"", "empty-image", "is empty"),
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64, "unsupported-image-format", "pillow-heif"),
        (b"%PDF-1.7 not an image", "unsupported-image-format", "Pillow cannot read"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "unsupported-image-format", "Pillow cannot read"),
    ],
)
def test_what_pillow_cannot_read_is_an_error(
    fake: FakeRekognition, context: Context, data: bytes, code: str, phrase: str
) -> None:
    detector, settings = moderation(fake)

    with pytest.raises(DetectorError) as raised:
        detector.detect(Image(name="odd", data=data), context(detector, settings))

    assert raised.value.code == code and phrase in str(raised.value)
    assert fake.call_count() == 0


def test_a_truncated_image_is_an_error(fake: FakeRekognition, context: Context) -> None:
    data = encode(noise((300, 300)), "WEBP")[:2000]
    detector, settings = moderation(fake)

    with pytest.raises(DetectorError) as raised:
        detector.detect(Image(name="cut.webp", data=data), context(detector, settings))

    assert raised.value.code in ("invalid-image", "unsupported-image-format")
    assert fake.call_count() == 0


@pytest.mark.parametrize("which", [moderation, custom_labels])
def test_convert_without_pillow_says_how_to_install_it(
    fake: FakeRekognition,
    context: Context,
    monkeypatch: pytest.MonkeyPatch,
    which: Callable[[FakeRekognition], tuple[Detector, dict[str, Any]]],
) -> None:
    data = encode(plain((100, 100)), "GIF")
    for module in [name for name in sys.modules if name == "PIL" or name.startswith("PIL.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now fails
    detector, settings = which(fake)

    with pytest.raises(DetectorError) as raised:
        detector.detect(Image(name="anim.gif", data=data), context(detector, settings))

    message = str(raised.value)
    assert raised.value.code == "missing-dependency"
    assert "pip install pillow" in message and "policy-engine-rekognition[convert]" in message
    assert fake.call_count() == 0


def test_convert_is_in_both_schemas() -> None:
    for detector in (ModerationDetector(), CustomLabelsDetector()):
        schema = detector.settings_schema["properties"]["convert"]
        assert schema["type"] == "boolean" and schema["default"] is False


def decoy_apng() -> bytes:
    """An APNG whose default image (blank) is not part of its animation (red):
    browsers show red, a decoder without APNG support shows blank."""
    blank, red = plain((120, 90), color=(255, 255, 255)), plain((120, 90), color=(220, 20, 20))
    return encode(blank, "PNG", save_all=True, append_images=[red], default_image=True)


def test_an_apng_hiding_its_animation_behind_a_decoy_sends_the_shown_frame(
    fake: FakeRekognition, context: Context
) -> None:
    from policy_engine_rekognition.convert import convert_image

    data = decoy_apng()
    detector, settings = moderation(fake)

    result = detector.detect(Image(name="decoy.png", data=data), context(detector, settings))
    out, _ = convert_image(
        data, name="decoy.png", detector="rekognition-moderation", limits=MODERATION_LIMITS
    )

    assert result.metadata["converted"]["to_format"] == "JPEG"
    assert sent(fake) == (hashlib.sha256(out).hexdigest(), len(out))
    red, green, blue = opened(out).convert("RGB").getpixel((60, 45))
    assert red > 200 and green < 60 and blue < 60  # the frame a browser shows


def test_without_convert_a_decoy_apng_is_refused_not_sent(
    fake: FakeRekognition, context: Context
) -> None:
    detector, settings = moderation(fake)
    settings["convert"] = False

    with pytest.raises(DetectorError) as raised:
        detector.detect(Image(name="decoy.png", data=decoy_apng()), context(detector, settings))

    assert raised.value.code == "hidden-default-image" and "convert: true" in str(raised.value)
    assert fake.call_count() == 0


def test_an_apng_whose_default_image_is_its_first_frame_is_sent_untouched(
    fake: FakeRekognition, context: Context
) -> None:
    red, blank = plain((120, 90), color=(220, 20, 20)), plain((120, 90), color=(255, 255, 255))
    data = encode(red, "PNG", save_all=True, append_images=[blank], default_image=False)
    detector, settings = moderation(fake)
    settings["convert"] = False

    detector.detect(Image(name="anim.png", data=data), context(detector, settings))

    assert sent(fake) == (hashlib.sha256(data).hexdigest(), len(data))


def _inserted_after_ihdr(data: bytes, kind: bytes, body: bytes) -> bytes:
    import zlib

    chunk = len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
    return data[:33] + chunk + data[33:]


@pytest.mark.filterwarnings("ignore:Invalid APNG")  # Pillow's, for the second acTL
def test_a_decoy_with_a_second_actl_is_refused_not_converted(
    fake: FakeRekognition, context: Context
) -> None:
    # Pillow reads it as a still picture of the decoy; browsers play the animation
    data = _inserted_after_ihdr(decoy_apng(), b"acTL", (1).to_bytes(4, "big") + bytes(4))
    detector, settings = moderation(fake)

    with pytest.raises(DetectorError) as raised:
        detector.detect(Image(name="decoy.png", data=data), context(detector, settings))

    assert raised.value.code == "hidden-default-image" and "malformed" in str(raised.value)
    assert fake.call_count() == 0


def test_an_apng_whose_frame_is_missing_is_an_invalid_image(
    fake: FakeRekognition, context: Context
) -> None:
    # an acTL announcing a frame that never comes: seeking to it fails in Pillow
    still = encode(plain((120, 90)), "PNG")
    data = _inserted_after_ihdr(still, b"acTL", (1).to_bytes(4, "big") + bytes(4))
    detector, settings = moderation(fake)

    with pytest.raises(DetectorError) as raised:
        detector.detect(Image(name="short.png", data=data), context(detector, settings))

    assert raised.value.code == "invalid-image"
    assert fake.call_count() == 0
