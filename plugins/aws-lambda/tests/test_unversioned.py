"""An unversioned bucket: a key's content can change at any moment, and S3 sets
tags without a condition. The function decides the bytes it read itself, and
its tags (and reuse of them) are bound to those bytes by their SHA-256: newer
content uploaded during a decision never gets that decision."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lambda_helpers import (
    JPEG,
    VIOLENT,
    ScriptedS3,
    client_error,
    read_json,
    s3_event,
    tags_of,
)
from policy_engine_lambda.handler import RetryableFailure, handler
from policy_engine_lambda.moderate import CONTENT_TAG, DECISION_TAG
from policy_engine_lambda.store import S3RecordingStore

from policy_engine.moderator import Moderator
from policy_engine.recordings import settings_digest
from policy_engine_rekognition.testing import FakeRekognition

PLAIN = "amzn-s3-demo-plain"
QUARANTINE_PLAIN = "amzn-s3-demo-plain-quarantine"
KEY = "uploads/photo.jpg"
BENIGN = JPEG
VIOLENT_BYTES = JPEG + b"a violent picture"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def event() -> dict[str, Any]:
    """The notification of an upload to KEY in the unversioned bucket."""
    answer = s3_event(KEY, None)
    answer["Records"][0]["s3"]["bucket"]["name"] = PLAIN
    return answer


def upload(s3: Any, body: bytes) -> None:
    s3.put_object(Bucket=PLAIN, Key=KEY, Body=body)


def body_of(s3: Any, bucket: str, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


@pytest.fixture
def plain(s3: Any, fake: FakeRekognition) -> Iterator[Any]:
    for bucket in (PLAIN, QUARANTINE_PLAIN):
        s3.create_bucket(Bucket=bucket)
    fake.respond(VIOLENT_BYTES, VIOLENT)  # by its bytes: the function sends them
    yield s3


@pytest.fixture
def replace_after_deciding(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, bytes], None]:
    """``(s3, body)``: once the next decision is made, another upload replaces
    KEY with ``body`` (deterministically, between the decision and the actions)."""

    def arm(s3: Any, body: bytes) -> None:
        original = Moderator.check_in

        def check_in(self: Moderator, *args: Any, **kwargs: Any) -> Any:
            decision = original(self, *args, **kwargs)
            monkeypatch.setattr(Moderator, "check_in", original)
            upload(s3, body)
            return decision

        monkeypatch.setattr(Moderator, "check_in", check_in)

    return arm


def test_the_bytes_read_are_decided_and_the_tags_name_them(
    plain: Any, fake: FakeRekognition
) -> None:
    upload(plain, BENIGN)

    (first,) = handler(event(), None)["results"]
    (again,) = handler(event(), None)["results"]

    assert (first["decision"], again["decision"], again["reused"]) == ("allow", "allow", True)
    (call,) = fake.calls  # the retry reused the decision of the same bytes
    assert call.image_sha256 == sha256(BENIGN)  # sent as Bytes, not read again by Rekognition
    tags = tags_of(plain, KEY, bucket=PLAIN)
    assert (tags[DECISION_TAG], tags[CONTENT_TAG]) == ("allow", sha256(BENIGN))
    assert read_json(plain, PLAIN, KEY + ".moderation.json")["sha256"] == sha256(BENIGN)


def test_an_upload_replacing_the_object_during_the_decision_never_gets_its_tags(
    plain: Any, fake: FakeRekognition, replace_after_deciding: Callable[[Any, bytes], None]
) -> None:
    upload(plain, BENIGN)
    replace_after_deciding(plain, VIOLENT_BYTES)

    (first,) = handler(event(), None)["results"]  # the benign upload's event

    assert first["decision"] == "allow"
    assert "replaced" in first["message"]
    assert DECISION_TAG not in tags_of(plain, KEY, bucket=PLAIN)

    (second,) = handler(event(), None)["results"]  # the violent upload's own event

    assert (second["decision"], second["reused"]) == ("block", False)
    assert fake.call_count() == 2
    assert tags_of(plain, KEY, bucket=PLAIN)[DECISION_TAG] == "block"


def test_tags_that_land_on_newer_content_are_never_reused(
    plain: Any, fake: FakeRekognition, scripted: ScriptedS3
) -> None:
    """The replacing upload lands between the check of the ETag and the tagging:
    S3 has no conditional tagging, so the tags can sit on the newer content."""
    upload(plain, BENIGN)
    scripted.before["put_object_tagging"] = lambda _: upload(plain, VIOLENT_BYTES)

    # the function sees it happened: the invocation fails so that Lambda retries it
    with pytest.raises(RetryableFailure, match="replaced while it was being tagged"):
        handler(event(), None)
    stale = tags_of(plain, KEY, bucket=PLAIN)
    assert (stale[DECISION_TAG], stale[CONTENT_TAG]) == ("allow", sha256(BENIGN))

    # whichever event comes next, the violent bytes are decided, not given the stale tags
    (result,) = handler(event(), None)["results"]
    assert (result["decision"], result["reused"]) == ("block", False)
    assert fake.call_count() == 2
    assert tags_of(plain, KEY, bucket=PLAIN)[CONTENT_TAG] == sha256(VIOLENT_BYTES)


def test_the_quarantine_keeps_the_decided_bytes_and_never_deletes_newer_content(
    plain: Any,
    fake: FakeRekognition,
    monkeypatch: pytest.MonkeyPatch,
    replace_after_deciding: Callable[[Any, bytes], None],
) -> None:
    monkeypatch.setenv("QUARANTINE_BUCKET", QUARANTINE_PLAIN)
    monkeypatch.setenv("DELETE_ORIGINAL", "true")
    upload(plain, VIOLENT_BYTES)
    replace_after_deciding(plain, BENIGN)

    (result,) = handler(event(), None)["results"]

    assert result["decision"] == "block" and result["status"] == "Succeeded", result
    # the copy is the bytes decided, not what the key holds by the time of the copy
    assert body_of(plain, QUARANTINE_PLAIN, "quarantine/" + KEY) == VIOLENT_BYTES
    # and the newer upload, decided by its own event, is not deleted in its place
    assert body_of(plain, PLAIN, KEY) == BENIGN
    assert "not deleted" in result["message"]


def test_recordings_of_unversioned_objects_are_keyed_by_their_bytes(
    plain: Any, fake: FakeRekognition, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recording keyed by URI and ETag could answer for other bytes with the
    same ETag (an MD5 collision); the SHA-256 of the bytes cannot."""
    plain.create_bucket(Bucket="amzn-s3-demo-recordings")
    monkeypatch.setenv("RECORDINGS_BUCKET", "amzn-s3-demo-recordings")
    upload(plain, VIOLENT_BYTES)

    handler(event(), None)

    store = S3RecordingStore("amzn-s3-demo-recordings", client=plain)
    settings = settings_digest("rekognition-moderation", {}, 50)
    assert store.lookup(sha256(VIOLENT_BYTES), "rekognition-moderation", settings) == VIOLENT


def test_unreadable_tags_never_stop_the_quarantine(
    plain: Any, fake: FakeRekognition, scripted: ScriptedS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUARANTINE_BUCKET", QUARANTINE_PLAIN)
    upload(plain, VIOLENT_BYTES)
    denied = client_error("AccessDenied", "GetObjectTagging", 403)
    scripted.faults["get_object_tagging"] = [denied] * 10

    with pytest.raises(RetryableFailure) as raised:
        handler(event(), None)

    (outcome,) = raised.value.outcomes
    assert (outcome.status.value, outcome.decision) == ("PermanentFailure", "block")
    assert "not tagged: its tags could not be read" in outcome.message
    assert body_of(plain, QUARANTINE_PLAIN, "quarantine/" + KEY) == VIOLENT_BYTES
    assert read_json(plain, PLAIN, KEY + ".moderation.json")["decision"] == "block"
