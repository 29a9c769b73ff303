"""The examples folder stays consistent: images, their recordings, the script."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from policy_engine.detectors import DetectContext, Detector, DetectorResult
from policy_engine.errors import NoRecordingError
from policy_engine.image import Image
from policy_engine.labels import Label
from policy_engine.plugins import DetectorRegistry, RegisteredDetector
from policy_engine_stub import StubDetector

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
IMAGES = EXAMPLES / "images"
RECORDINGS = EXAMPLES / "recordings"
UNRECORDED = "unrecorded.png"

# What README.md's table promises: the recorded labels of each image.
EXPECTED_LABELS = {
    "landscape.png": {},
    "beach.png": {"Female Swimwear or Underwear": 88.4, "Swimwear or Underwear": 88.4},
    "knife-fight.jpg": {
        "Weapon Violence": 97.3,
        "Graphic Violence": 97.3,
        "Weapons": 92.6,
        "Violence": 97.3,
    },
    "cocktail-bar.png": {"Alcoholic Beverages": 91.2, "Alcohol": 91.2},
    "party-smoking.png": {
        "Smoking": 85.4,
        "Drugs & Tobacco Paraphernalia & Use": 85.4,
        "Drugs & Tobacco": 85.4,
    },
    "explicit.png": {"Explicit Nudity": 95.1, "Explicit": 95.1},
}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def image_files() -> list[Path]:
    return sorted(IMAGES.iterdir())


def test_every_recording_is_named_after_an_image_and_every_image_but_one_has_one() -> None:
    images_by_hash = {sha256_of(path): path.name for path in image_files()}
    recorded = {path.name.removesuffix(".json") for path in RECORDINGS.iterdir()}

    assert all(path.suffix == ".json" for path in RECORDINGS.iterdir())
    assert recorded <= set(images_by_hash), "a recording matches no image"
    assert {images_by_hash[sha] for sha in recorded} == set(EXPECTED_LABELS)
    assert {path.name for path in image_files()} == {*EXPECTED_LABELS, UNRECORDED}


def test_make_examples_regenerates_byte_identical_images(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(EXAMPLES / "make_examples.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )

    regenerated = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    committed = {path.name: path.read_bytes() for path in image_files()}
    assert regenerated.keys() == committed.keys()
    for name, data in committed.items():
        assert regenerated[name] == data, f"{name} differs from what the script draws"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")
    at = 2
    while data[at + 1] != 0xC0:  # walk the segments to the baseline frame header
        at += 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
    height, width = struct.unpack(">HH", data[at + 5 : at + 9])
    return width, height


@pytest.mark.parametrize("path", image_files(), ids=lambda path: path.name)
def test_images_are_small_pngs_or_jpegs_that_rekognition_accepts(path: Path) -> None:
    data = path.read_bytes()
    width, height = _png_size(data) if path.suffix == ".png" else _jpeg_size(data)

    assert path.suffix in {".png", ".jpg"}
    assert width >= 80 and height >= 80  # Rekognition's minimum
    assert len(data) <= 4096


@pytest.mark.parametrize("path", image_files(), ids=lambda path: path.name)
def test_images_decode(path: Path) -> None:
    from PIL import Image as pillow

    with pillow.open(path) as picture:
        picture.load()
        assert picture.format == {".png": "PNG", ".jpg": "JPEG"}[path.suffix]
        assert len(picture.convert("RGB").getcolors()) >= 2  # shapes, not a blank


@pytest.mark.parametrize("path", sorted(RECORDINGS.iterdir()), ids=lambda path: path.name[:12])
def test_recordings_have_model_7_shape_with_every_ancestor_as_a_label(path: Path) -> None:
    response = json.loads(path.read_text())
    labels = {label["Name"]: label for label in response["ModerationLabels"]}

    assert response["ModerationModelVersion"] == "7.0"
    assert len(labels) == len(response["ModerationLabels"])
    for label in labels.values():
        assert set(label) == {"Name", "ParentName", "Confidence", "TaxonomyLevel"}
        assert 0 <= label["Confidence"] <= 100
        assert (label["TaxonomyLevel"] == 1) == (label["ParentName"] == "")
        if label["ParentName"]:
            parent = labels[label["ParentName"]]  # Rekognition reports ancestors too
            assert parent["TaxonomyLevel"] == label["TaxonomyLevel"] - 1
            assert parent["Confidence"] >= label["Confidence"]


class ModerationLabelsParser(Detector):
    """Just enough of a DetectModerationLabels parser to replay the examples
    without depending on the Rekognition plugin."""

    name: ClassVar[str] = "moderation"

    def recognizes(self, raw: Mapping[str, Any]) -> bool:
        return "ModerationLabels" in raw

    def parse(self, raw: Mapping[str, Any]) -> DetectorResult:
        labels = tuple(
            Label(
                name=item["Name"],
                parent=item["ParentName"],
                confidence=item["Confidence"],
                source=self.name,
            )
            for item in raw["ModerationLabels"]
        )
        return DetectorResult(source=self.name, labels=labels)


def test_the_stub_replays_the_examples_as_the_readme_says() -> None:
    registry = DetectorRegistry([RegisteredDetector(ModerationLabelsParser(), "test")])
    context = DetectContext(
        settings={"recordings": "recordings"},
        min_confidence=50.0,
        base_dir=str(EXAMPLES),
        parse_response=registry.parse_response,
    )
    detector = StubDetector()

    for name, expected in EXPECTED_LABELS.items():
        image = Image(name=name, data=(IMAGES / name).read_bytes())
        result = detector.detect(image, context)
        assert {label.name: label.confidence for label in result.labels} == expected, name
        assert result.metadata["replayed"] == ("moderation",)

    unrecorded = Image(name=UNRECORDED, data=(IMAGES / UNRECORDED).read_bytes())
    with pytest.raises(NoRecordingError, match=unrecorded.sha256):
        detector.detect(unrecorded, context)
