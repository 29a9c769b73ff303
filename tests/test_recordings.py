"""The recording store shared by --record, --cache and the stub detector."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import policy_engine
from policy_engine.errors import InvalidDetectorResult
from policy_engine.recordings import (
    RECORDING_FORMAT,
    RecordingStore,
    RecordingWriteError,
    read_recording,
    recording_document,
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


# -- many processes, one folder --------------------------------------------------------------

WRITER = """
import sys, time
from pathlib import Path
from policy_engine.recordings import RecordingStore

folder, signals, writer = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
keys, settings = sys.argv[4].split(","), sys.argv[5].split(",")
store = RecordingStore(folder)
(signals / ("ready-" + writer)).touch()
while not (signals / "go").exists():
    time.sleep(0.001)
for setting in settings:
    for key in keys:
        store.record(key, "detector-" + writer, setting, {"writer": writer, "setting": setting})
"""
SETTINGS = [f"sha256:{n}" for n in range(8)]


def test_writers_in_many_processes_keep_every_entry(tmp_path: Path) -> None:
    folder, signals = tmp_path / "rec", tmp_path / "signals"
    signals.mkdir()
    keys = [f"{n:02x}" * 32 for n in range(3)]
    writers = [str(n) for n in range(4)]
    root = Path(policy_engine.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *sys.path])}
    command = [sys.executable, "-c", WRITER, str(folder), str(signals)]
    processes = [
        subprocess.Popen(
            [*command, writer, ",".join(keys), ",".join(SETTINGS)],
            env=env,
            stderr=subprocess.PIPE,
        )
        for writer in writers
    ]
    deadline = time.monotonic() + 60
    while len(list(signals.glob("ready-*"))) < len(writers) and time.monotonic() < deadline:
        time.sleep(0.005)
    (signals / "go").touch()  # all start together, so their writes to each file overlap
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
    for key in keys:
        found = {(r.detector, r.settings) for r in RecordingStore(folder).responses(key) or ()}
        assert found == {(f"detector-{w}", s) for w in writers for s in SETTINGS}, key
    # no temporary file left behind, and the lock file is the only other file
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [".policy-engine.lock", *(f"{key}.json" for key in keys)]
    )


# -- what JSON cannot hold ------------------------------------------------------------------


def _strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_value_json_cannot_hold_fails_only_its_own_write(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    store.record(KEY, "kept", "sha256:1", RESPONSE)
    store.record(KEY, "surrogate", "sha256:1", {"Name": "\ud800 \udcff"})
    for detector, bad in (("nan", float("nan")), ("object", object()), ("when", date.today())):
        with pytest.raises(RecordingWriteError, match=f"cannot record the {detector} response"):
            store.record(KEY, detector, "sha256:1", {"Labels": [{"Confidence": bad}]})
    text = store.path_for(KEY).read_bytes().decode("utf-8")  # UTF-8, and strict JSON
    assert [r["detector"] for r in _strict(text)["recordings"]] == ["kept", "surrogate"]
    assert store.lookup(KEY, "kept", "sha256:1") == RESPONSE
    assert store.lookup(KEY, "surrogate", "sha256:1") == {"Name": "\ud800 \udcff"}  # recovered
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_shared_document_names_where_a_value_json_cannot_hold_is() -> None:
    # recording_document is what every store (the folder, the Lambda's S3) writes
    response = {"ModerationLabels": [{"Name": "V", "Confidence": float("inf")}]}
    with pytest.raises(
        RecordingWriteError, match=r"response.ModerationLabels\[0\].Confidence is inf"
    ):
        recording_document((), "d", "sha256:1", response)
    with pytest.raises(RecordingWriteError, match=r"response.\\ud800 is a bytes"):
        recording_document((), "d", "sha256:1", {"\ud800": b"raw"})


def test_an_earlier_entry_json_cannot_hold_strictly_never_blocks_a_write(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    legacy = {"format": RECORDING_FORMAT, "recordings": [
        {"detector": "old", "settings": "sha256:1", "response": {"Confidence": float("nan")}}
    ]}  # fmt: skip
    store.path_for(KEY).write_text(json.dumps(legacy))  # as an earlier version wrote NaN
    store.record(KEY, "new", "sha256:1", RESPONSE)
    assert {r.detector for r in store.responses(KEY) or ()} == {"old", "new"}


def test_a_file_that_cannot_be_read_is_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RecordingStore(tmp_path)
    store.record(KEY, "kept", "sha256:1", RESPONSE)
    path = store.path_for(KEY)
    before = path.read_bytes()

    def failing_read(self: Path, *args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EIO, "Input/output error", str(self))

    monkeypatch.setattr(Path, "read_bytes", failing_read)
    monkeypatch.setattr(Path, "read_text", failing_read)
    with pytest.raises(RecordingWriteError, match="cannot read it: Input/output error"):
        store.record(KEY, "new", "sha256:1", RESPONSE)
    monkeypatch.undo()
    assert path.read_bytes() == before  # the answers it holds are still there


def test_a_file_that_is_not_a_recording_is_replaced_and_said_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = RecordingStore(tmp_path)
    store.path_for(KEY).write_bytes(b"{not json")
    store.record(KEY, "d", "sha256:1", RESPONSE)
    assert store.lookup(KEY, "d", "sha256:1") == RESPONSE
    assert "which is not a recording" in caplog.text


def test_keys_are_plain_file_names(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "rec")
    for key in ("../outside", "a/b", ".hidden", ""):
        with pytest.raises(ValueError, match="not an image key"):
            store.record(key, "d", "sha256:1", RESPONSE)
        with pytest.raises(ValueError, match="not an image key"):
            store.lookup(key, "d", "sha256:1")
    assert not (tmp_path / "outside.json").exists()
