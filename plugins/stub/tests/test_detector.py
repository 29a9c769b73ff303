from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from policy_engine.detectors import DetectContext
from policy_engine.errors import DetectorError, InvalidDetectorResult, NoRecordingError
from policy_engine.image import Image
from policy_engine.labels import Label
from policy_engine.policy_set import content_types_of
from policy_engine_stub import SETTINGS_SCHEMA, StubDetector

ContextFor = Callable[..., DetectContext]

WEAPON = {"name": "Weapon Violence", "parent": "Graphic Violence", "confidence": 97.3}
VIOLENCE = {"name": "Violence", "confidence": 97.3}


def record(folder: Path, image: Image, document: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{image.sha256}.json"
    path.write_text(json.dumps(document))
    return path


def test_the_detector_is_named_stub_and_declares_its_settings_schema() -> None:
    assert StubDetector.name == "stub"
    assert StubDetector.settings_schema is SETTINGS_SCHEMA


def test_replays_a_single_response_with_the_recording_detectors_source(
    tmp_path: Path, image: Image, context_for: ContextFor
) -> None:
    record(tmp_path / "recs", image, {"FakeLabels": [WEAPON, VIOLENCE], "model": "7.0"})

    result = StubDetector().detect(image, context_for({"recordings": str(tmp_path / "recs")}))

    assert result.source == "stub"
    assert result.labels == (
        Label(name="Weapon Violence", parent="Graphic Violence", confidence=97.3, source="fake"),
        Label(name="Violence", parent="", confidence=97.3, source="fake"),
    )
    assert dict(result.metadata) == {
        "recording": f"{image.sha256}.json",
        "replayed": ("fake",),
        "fake": {"model": "7.0"},
    }
    assert result.raw is None


def test_replays_an_array_of_responses_one_per_detector(
    tmp_path: Path, image: Image, context_for: ContextFor
) -> None:
    record(
        tmp_path / "recs",
        image,
        [
            {"FakeLabels": [VIOLENCE], "model": "f1"},
            {"OtherLabels": [{"name": "Knife", "confidence": 80}], "model": "o2"},
        ],
    )

    result = StubDetector().detect(image, context_for({"recordings": str(tmp_path / "recs")}))

    assert [(label.name, label.source) for label in result.labels] == [
        ("Violence", "fake"),
        ("Knife", "other"),
    ]
    assert result.metadata["replayed"] == ("fake", "other")
    assert result.metadata["fake"] == {"model": "f1"}
    assert result.metadata["other"] == {"model": "o2"}


def test_an_empty_array_replays_no_labels(
    tmp_path: Path, image: Image, context_for: ContextFor
) -> None:
    record(tmp_path, image, [])

    result = StubDetector().detect(image, context_for({"recordings": "."}))

    assert result.labels == ()
    assert result.metadata["recording"] == f"{image.sha256}.json"
    assert result.metadata["replayed"] == ()


def test_relative_recordings_resolve_against_the_policy_folder_not_the_working_directory(
    tmp_path: Path,
    image: Image,
    context_for: ContextFor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy_dir, elsewhere = tmp_path / "policies", tmp_path / "elsewhere"
    record(policy_dir / "recs", image, {"FakeLabels": [VIOLENCE]})
    record(elsewhere / "recs", image, {"FakeLabels": [WEAPON]})
    monkeypatch.chdir(elsewhere)

    result = StubDetector().detect(image, context_for({"recordings": "recs"}, base_dir=policy_dir))

    assert [label.name for label in result.labels] == ["Violence"]


def test_an_absolute_recordings_folder_ignores_the_policy_folder(
    tmp_path: Path, image: Image, context_for: ContextFor
) -> None:
    record(tmp_path / "recs", image, {"FakeLabels": [VIOLENCE]})

    context = context_for({"recordings": str(tmp_path / "recs")}, base_dir=tmp_path / "nowhere")
    result = StubDetector().detect(image, context)

    assert [label.name for label in result.labels] == ["Violence"]


def test_a_missing_recording_is_an_error_naming_the_image_hash_and_folder(
    tmp_path: Path, image: Image, context_for: ContextFor
) -> None:
    (tmp_path / "recs").mkdir()

    with pytest.raises(NoRecordingError) as caught:
        StubDetector().detect(image, context_for({"recordings": "recs"}))

    message = str(caught.value)
    assert image.sha256 in message
    assert image.name in message
    assert str(tmp_path / "recs") in message
    assert caught.value.code == "no-recording"
    assert isinstance(caught.value, DetectorError)  # so the policy's on_error applies


def test_missing_no_labels_gives_an_empty_result(
    tmp_path: Path, image: Image, context_for: ContextFor
) -> None:
    context = context_for({"recordings": str(tmp_path), "missing": "no-labels"})

    result = StubDetector().detect(image, context)

    assert result.source == "stub"
    assert result.labels == ()
    assert dict(result.metadata) == {"recording": None, "replayed": ()}


def test_missing_no_labels_still_returns_the_fixed_labels(
    tmp_path: Path, image: Image, context_for: ContextFor
) -> None:
    settings = {"recordings": ".", "missing": "no-labels", "labels": [VIOLENCE]}

    result = StubDetector().detect(image, context_for(settings))

    assert [(label.name, label.source) for label in result.labels] == [("Violence", "stub")]


@pytest.mark.parametrize("missing", ["error", "no-labels"])
def test_a_recordings_folder_that_does_not_exist_is_an_error_whatever_missing_says(
    tmp_path: Path, image: Image, context_for: ContextFor, missing: str
) -> None:
    context = context_for({"recordings": "no-such-folder", "missing": missing})

    with pytest.raises(DetectorError) as caught:
        StubDetector().detect(image, context)

    assert str(tmp_path / "no-such-folder") in str(caught.value)
    assert not isinstance(caught.value, NoRecordingError)


@pytest.mark.parametrize(
    "content",
    [b'{"FakeLabels": [', b"\xff\xfe not utf-8", b""],
    ids=["truncated", "not-utf-8", "empty"],
)
def test_unreadable_json_is_an_invalid_result_naming_the_file(
    tmp_path: Path, image: Image, context_for: ContextFor, content: bytes
) -> None:
    path = tmp_path / f"{image.sha256}.json"
    path.write_bytes(content)

    with pytest.raises(InvalidDetectorResult) as caught:
        StubDetector().detect(image, context_for({"recordings": "."}))

    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("document", "complaint"),
    [(42, "not a number"), ("FakeLabels", "not a string"), ([{"FakeLabels": []}, None], "null")],
)
def test_a_recording_that_is_not_objects_is_an_invalid_result_naming_the_file(
    tmp_path: Path, image: Image, context_for: ContextFor, document: Any, complaint: str
) -> None:
    path = record(tmp_path, image, document)

    with pytest.raises(InvalidDetectorResult) as caught:
        StubDetector().detect(image, context_for({"recordings": "."}))

    assert str(path) in str(caught.value)
    assert complaint in str(caught.value)


def test_a_response_no_detector_recognises_is_a_detector_error_naming_the_file(
    tmp_path: Path, image: Image, context_for: ContextFor
) -> None:
    path = record(tmp_path, image, {"ModerationLabels": []})

    with pytest.raises(DetectorError) as caught:
        StubDetector().detect(image, context_for({"recordings": "."}))

    assert str(path) in str(caught.value)
    assert "ModerationLabels" in str(caught.value)


def test_an_invalid_recorded_label_is_an_invalid_result_naming_the_file_and_response(
    tmp_path: Path, image: Image, context_for: ContextFor
) -> None:
    bad = {"name": "Violence", "confidence": float("nan")}
    path = record(tmp_path, image, [{"FakeLabels": [VIOLENCE]}, {"OtherLabels": [bad]}])

    with pytest.raises(InvalidDetectorResult) as caught:
        StubDetector().detect(image, context_for({"recordings": "."}))

    assert f"recording {path}, response 1" in str(caught.value)
    assert caught.value.field == "confidence"


def test_two_responses_from_one_detector_are_an_invalid_result(
    tmp_path: Path, image: Image, context_for: ContextFor
) -> None:
    record(tmp_path, image, [{"FakeLabels": [VIOLENCE]}, {"FakeLabels": [WEAPON]}])

    with pytest.raises(InvalidDetectorResult, match="second response from detector 'fake'"):
        StubDetector().detect(image, context_for({"recordings": "."}))


def test_fixed_labels_are_returned_for_every_image_with_source_stub(
    context_for: ContextFor,
) -> None:
    settings = {"labels": [WEAPON, {"name": "Alcohol", "confidence": 0}]}
    expected = (
        Label(name="Weapon Violence", parent="Graphic Violence", confidence=97.3, source="stub"),
        Label(name="Alcohol", parent="", confidence=0.0, source="stub"),
    )

    for data in (b"one image", b"another image"):
        result = StubDetector().detect(Image(name="x", data=data), context_for(settings))
        assert result.labels == expected
        assert dict(result.metadata) == {"recording": None, "replayed": ()}


def test_fixed_labels_follow_the_replayed_ones(
    tmp_path: Path, image: Image, context_for: ContextFor
) -> None:
    record(tmp_path, image, {"FakeLabels": [VIOLENCE]})

    result = StubDetector().detect(image, context_for({"recordings": ".", "labels": [WEAPON]}))

    assert [(label.name, label.source) for label in result.labels] == [
        ("Violence", "fake"),
        ("Weapon Violence", "stub"),
    ]


def test_replayed_content_types_are_reported_where_a_policy_set_reads_them(
    tmp_path: Path, image: Image, context_for: ContextFor
) -> None:
    illustrated = {"name": "Illustrated", "confidence": 99.0}
    animated = {"name": "Animated", "confidence": 60.0}
    record(
        tmp_path / "recs",
        image,
        [
            {"FakeLabels": [], "content_types": [illustrated]},
            {"OtherLabels": [], "content_types": [animated]},
        ],
    )

    result = StubDetector().detect(image, context_for({"recordings": str(tmp_path / "recs")}))

    assert result.metadata["content_types"] == [illustrated, animated]
    assert content_types_of({"stub": result.metadata}, 50.0) == (
        frozenset({"illustrated", "animated"}),
        False,
    )


def test_a_recording_without_content_types_reports_none(
    tmp_path: Path, image: Image, context_for: ContextFor
) -> None:
    record(tmp_path / "recs", image, {"FakeLabels": [VIOLENCE]})

    result = StubDetector().detect(image, context_for({"recordings": str(tmp_path / "recs")}))

    assert "content_types" not in result.metadata


def test_malformed_replayed_content_types_stay_malformed_for_the_set(
    tmp_path: Path, image: Image, context_for: ContextFor
) -> None:
    record(
        tmp_path / "recs",
        image,
        [
            {"FakeLabels": [], "content_types": [{"name": "Animated", "confidence": 99.0}]},
            {"OtherLabels": [], "content_types": "Illustrated"},
        ],
    )

    result = StubDetector().detect(image, context_for({"recordings": str(tmp_path / "recs")}))

    assert content_types_of({"stub": result.metadata}, 50.0)[1] is True
