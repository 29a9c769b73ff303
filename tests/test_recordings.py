"""The recording store shared by --record, --cache and the stub detector."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from policy_engine.errors import InvalidDetectorResult
from policy_engine.recordings import (
    RECORDING_FORMAT,
    RecordingStore,
    read_recording,
    settings_digest,
)

KEY = "ab" * 32
RESPONSE = {"ModerationLabels": [{"Name": "Violence", "Confidence": 91.0}]}


def test_settings_digest_depends_on_detector_settings_and_floor() -> None:
    base = settings_digest("d", {"region": "eu-west-1"}, 50)
    assert base.startswith("sha256:")
    assert base == settings_digest("d", {"region": "eu-west-1"}, 50.0)
    assert base != settings_digest("e", {"region": "eu-west-1"}, 50)
    assert base != settings_digest("d", {"region": "us-east-1"}, 50)
    assert base != settings_digest("d", {"region": "eu-west-1"}, 60)


def test_record_then_lookup_finds_exactly_that_detector_and_settings(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "rec")
    store.record(KEY, "d", "sha256:1", RESPONSE)
    assert store.lookup(KEY, "d", "sha256:1") == RESPONSE
    assert store.lookup(KEY, "d", "sha256:2") is None
    assert store.lookup(KEY, "e", "sha256:1") is None
    assert store.lookup("cd" * 32, "d", "sha256:1") is None


def test_recording_again_replaces_only_the_same_detector_and_settings(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    store.record(KEY, "d", "sha256:1", {"old": 1})
    store.record(KEY, "e", "sha256:1", {"other": 1})
    store.record(KEY, "d", "sha256:1", {"new": 1})
    document = json.loads(store.path_for(KEY).read_text())
    assert document["format"] == RECORDING_FORMAT
    assert [(r["detector"], r["response"]) for r in document["recordings"]] == [
        ("e", {"other": 1}),
        ("d", {"new": 1}),
    ]
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed into place


def test_hand_written_files_replay_but_never_answer_a_cache_lookup(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    store.path_for(KEY).write_text(json.dumps([RESPONSE, {"CustomLabels": []}]))
    assert [r.response for r in store.responses(KEY) or ()] == [RESPONSE, {"CustomLabels": []}]
    assert store.lookup(KEY, "rekognition-moderation", "sha256:1") is None


def test_a_corrupt_cache_entry_is_a_miss_and_a_replay_error(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    store.path_for(KEY).write_text("{not json")
    assert store.lookup(KEY, "d", "sha256:1") is None
    with pytest.raises(InvalidDetectorResult, match="not valid JSON"):
        read_recording(store.path_for(KEY))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("42", "not a number"),
        ('[{"a": 1}, null]', r"\[1\] a response must be a JSON object, not null"),
        (json.dumps({"format": RECORDING_FORMAT, "recordings": [{"detector": "d"}]}), "response"),
    ],
)
def test_malformed_recordings_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / f"{KEY}.json"
    path.write_text(content)
    with pytest.raises(InvalidDetectorResult, match=message) as info:
        read_recording(path)
    assert str(path) in str(info.value)


def test_concurrent_records_for_one_image_keep_every_detector(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    threads = [
        threading.Thread(target=store.record, args=(KEY, f"d{i}", "sha256:1", {"i": i}))
        for i in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = {r.detector for r in store.responses(KEY) or ()}
    assert found == {f"d{i}" for i in range(16)}
