"""Recorded Rekognition responses in S3 (RECORDINGS_BUCKET): a re-moderation
after a rules-only policy change makes no Rekognition call, and the store is
the same format as ``policy-engine check --record DIR``."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lambda_helpers import BUCKET, VIOLENCE_ONLY, VIOLENT, batch_event, s3_event, tags_of
from policy_engine_lambda import handler as lambda_handler
from policy_engine_lambda.config import DEFAULT_POLICY, RecordingsLocation, recordings_location
from policy_engine_lambda.handler import handler
from policy_engine_lambda.moderate import DECISION_TAG, DIGEST_TAG, VERSION_TAG
from policy_engine_lambda.store import S3RecordingStore

from policy_engine.cli import main as cli
from policy_engine.loader import load_policy
from policy_engine.plugins import DetectorRegistry
from policy_engine.recordings import (
    RECORDING_FORMAT,
    RecordingStore,
    recorded_responses,
    settings_digest,
)
from policy_engine_rekognition.s3_inputs import S3Location, expand_s3_input
from policy_engine_rekognition.testing import FakeRekognition

RECORDINGS = "amzn-s3-demo-recordings"
KEY = "photos/knife fight.jpg"
KEY_IN_EVENT = "photos/knife+fight.jpg"
SETTINGS = settings_digest("rekognition-moderation", {}, 50)


def uri(key: str, version: str) -> str:
    return f"s3://{BUCKET}/{key}?versionId={version}"


def image_key(s3: Any, key: str, version: str) -> str:
    """The key ``policy-engine check 's3://bucket/key?versionId=V'`` gives the object."""
    (image,) = expand_s3_input(S3Location(BUCKET, key, version).uri, client=s3) or ()
    return image.key


def policy_variant(tmp_path: Path, name: str, *replacements: tuple[str, str]) -> Path:
    """The shipped policy with some text replaced (a policy change)."""
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def deploy(monkeypatch: pytest.MonkeyPatch, policy: Path) -> str:
    """Ship a new policy: a new container with POLICY_FILE; returns its digest."""
    monkeypatch.setenv("POLICY_FILE", str(policy))
    lambda_handler.reset()
    return load_policy(policy, registry=DetectorRegistry.installed()).digest


def sync(s3: Any, bucket: str, prefix: str, folder: Path) -> None:
    """What ``aws s3 sync s3://bucket/prefix folder`` does, for the test."""
    folder.mkdir(parents=True, exist_ok=True)
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        (folder / item["Key"][len(prefix) :]).write_bytes(body)


@pytest.fixture
def recordings(s3: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    s3.create_bucket(Bucket=RECORDINGS)
    monkeypatch.setenv("RECORDINGS_BUCKET", RECORDINGS)
    return RECORDINGS


# --- the store ------------------------------------------------------------------------------


def test_the_store_keeps_the_recording_document_and_merges(s3: Any, recordings: str) -> None:
    store = S3RecordingStore(recordings, "rec/", client=s3)
    other = settings_digest("rekognition-moderation", {}, 60)

    assert store.lookup("k1", "rekognition-moderation", SETTINGS) is None  # missing: a miss
    store.record("k1", "rekognition-moderation", SETTINGS, VIOLENCE_ONLY)
    store.record("k1", "rekognition-moderation", other, VIOLENT)
    store.record("k1", "rekognition-moderation", SETTINGS, VIOLENT)  # replaces, keeps `other`

    document = json.loads(s3.get_object(Bucket=recordings, Key="rec/k1.json")["Body"].read())
    assert document["format"] == RECORDING_FORMAT
    assert [(e["settings"], e["response"]) for e in document["recordings"]] == [
        (other, VIOLENT),
        (SETTINGS, VIOLENT),
    ]
    assert len(recorded_responses(document, "test")) == 2
    assert store.lookup("k1", "rekognition-moderation", SETTINGS) == VIOLENT
    assert store.lookup("k1", "rekognition-moderation", other) == VIOLENT
    assert store.lookup("k1", "rekognition-custom-labels", SETTINGS) is None


def test_an_unreadable_recording_is_a_miss_and_is_replaced(s3: Any, recordings: str) -> None:
    store = S3RecordingStore(recordings, "rec/", client=s3)
    s3.put_object(Bucket=recordings, Key="rec/k2.json", Body=b"{not json")
    assert store.lookup("k2", "rekognition-moderation", SETTINGS) is None
    s3.put_object(
        Bucket=recordings, Key="rec/k2.json", Body=b'{"format": "policy-engine-recording/1"}'
    )
    assert store.lookup("k2", "rekognition-moderation", SETTINGS) is None

    store.record("k2", "rekognition-moderation", SETTINGS, VIOLENT)
    assert store.lookup("k2", "rekognition-moderation", SETTINGS) == VIOLENT


def test_a_concurrent_writer_is_merged_not_overwritten(s3: Any, recordings: str) -> None:
    """Another container records between this one's read and its put."""
    other = settings_digest("rekognition-moderation", {}, 70)

    class Racing:
        def __init__(self) -> None:
            self.raced = False

        def __getattr__(self, name: str) -> Any:
            return getattr(s3, name)

        def put_object(self, **kwargs: Any) -> Any:
            if not self.raced:
                self.raced = True
                S3RecordingStore(recordings, "rec/", client=s3).record(
                    "k3", "rekognition-moderation", other, VIOLENCE_ONLY
                )
            return s3.put_object(**kwargs)

    S3RecordingStore(recordings, "rec/", client=Racing()).record(
        "k3", "rekognition-moderation", SETTINGS, VIOLENT
    )

    store = S3RecordingStore(recordings, "rec/", client=s3)
    assert store.lookup("k3", "rekognition-moderation", SETTINGS) == VIOLENT
    assert store.lookup("k3", "rekognition-moderation", other) == VIOLENCE_ONLY


def test_a_failing_store_never_fails_a_check(s3: Any) -> None:
    store = S3RecordingStore("no-such-bucket-here", client=s3)
    assert store.lookup("k", "rekognition-moderation", SETTINGS) is None
    store.record("k", "rekognition-moderation", SETTINGS, VIOLENT)  # logged, not raised


def test_recordings_settings() -> None:
    assert recordings_location({}) is None
    assert recordings_location({"RECORDINGS_PREFIX": "x/"}) is None
    assert recordings_location({"RECORDINGS_BUCKET": "b"}) == RecordingsLocation("b", "recordings/")
    assert recordings_location({"RECORDINGS_BUCKET": "b", "RECORDINGS_PREFIX": ""}) == (
        RecordingsLocation("b", "")
    )
    with pytest.raises(ValueError, match="end with '/'"):
        recordings_location({"RECORDINGS_BUCKET": "b", "RECORDINGS_PREFIX": "rec"})


# --- the function ---------------------------------------------------------------------------


def test_a_policy_change_is_re_moderated_from_the_recording(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    recordings: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    version = put(KEY)
    fake.respond(uri(KEY, version), VIOLENT)
    recording_key = f"recordings/{image_key(s3, KEY, version)}.json"

    # 1. the upload: one call, recorded under the object version's image key
    (first,) = handler(s3_event(KEY_IN_EVENT, version), None)["results"]
    assert (first["decision"], fake.call_count()) == ("block", 1)
    document = json.loads(s3.get_object(Bucket=recordings, Key=recording_key)["Body"].read())
    ((detector, settings),) = [(e["detector"], e["settings"]) for e in document["recordings"]]
    assert (detector, settings) == ("rekognition-moderation", SETTINGS)

    # 2. a rules-only change (Graphic Violence blocks from 99, not 90), backfilled by a
    #    Batch Operations job: a new digest, so decided again, from the recording
    lenient = policy_variant(tmp_path, "lenient", ("    block_at: 90", "    block_at: 99"))
    digest = deploy(monkeypatch, lenient)
    answer = handler(batch_event("2.0", (KEY_IN_EVENT, version)), None)
    (result,) = answer["results"]
    assert result["resultCode"] == "Succeeded", result
    assert result["resultString"].startswith(f"review (policy {digest[:19]})")
    assert fake.call_count() == 1  # no Rekognition call
    assert tags_of(s3, KEY, version) == {
        DECISION_TAG: "review",
        DIGEST_TAG: digest,
        VERSION_TAG: version,
    }
    record = json.loads(s3.get_object(Bucket=BUCKET, Key=KEY + ".moderation.json")["Body"].read())
    assert (record["decision"], record["policy"]["digest"]) == ("review", digest)

    # 3. a change of what Rekognition is asked (min_confidence): a miss, one more call
    stricter = policy_variant(
        tmp_path,
        "floor",
        ("    block_at: 90", "    block_at: 99"),
        ("min_confidence: 50", "min_confidence: 55"),
    )
    deploy(monkeypatch, stricter)
    (third,) = handler(s3_event(KEY_IN_EVENT, version), None)["results"]
    assert (third["decision"], fake.call_count()) == ("review", 2)
    document = json.loads(s3.get_object(Bucket=recordings, Key=recording_key)["Body"].read())
    assert len(document["recordings"]) == 2

    # the recordings, synced locally, are a corpus for diff and a cache for check
    folder = tmp_path / "recordings"
    sync(s3, recordings, "recordings/", folder)
    assert RecordingStore(folder).lookup(image_key(s3, KEY, version), detector, SETTINGS) == VIOLENT
    out, err = io.StringIO(), io.StringIO()
    code = cli(
        ["diff", str(DEFAULT_POLICY), str(lenient), "--corpus", str(folder), "--format", "json"],
        out,
        err,
    )
    assert code == 0, err.getvalue()
    corpus = json.loads(out.getvalue())["corpus"]
    assert corpus["changed"] >= 1 and corpus["matrix"]["block"]["review"] >= 1
    # policy-engine check keys the same object version the same way: a cache hit
    out = io.StringIO()
    code = cli(
        ["check", "--policy", str(lenient), "--cache", str(folder), uri(KEY, version)], out, err
    )
    assert code == 0, err.getvalue()
    assert json.loads(out.getvalue())["decision"] == "review"
    assert fake.call_count() == 2


def test_recordings_in_the_source_bucket_are_not_moderated(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECORDINGS_BUCKET", BUCKET)
    monkeypatch.setenv("RECORDINGS_PREFIX", "moderation-recordings/")
    version = put(KEY)

    handler(s3_event(KEY_IN_EVENT, version), None)
    (stored,) = s3.list_objects_v2(Bucket=BUCKET, Prefix="moderation-recordings/")["Contents"]
    # a Batch Operations manifest from an inventory lists the recordings too
    (result,) = handler(batch_event("2.0", (stored["Key"], None)), None)["results"]

    assert result == {
        "taskId": "task-0",
        "resultCode": "Succeeded",
        "resultString": "skipped: a recording of detector responses",
    }
    assert fake.call_count() == 1


def test_an_unusable_recordings_bucket_still_decides(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECORDINGS_BUCKET", "amzn-s3-demo-missing")
    version = put(KEY)
    fake.respond(uri(KEY, version), VIOLENT)

    (result,) = handler(batch_event("1.0", (KEY_IN_EVENT, version)), None)["results"]

    assert result["resultCode"] == "Succeeded"
    assert result["resultString"].startswith("block")
    assert fake.call_count() == 1
