"""The handler end to end: S3 in moto, Rekognition in FakeRekognition, the
shipped policy (policies/general-ugc.yaml), real event payloads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lambda_helpers import (
    BUCKET,
    QUARANTINE,
    VIOLENT,
    batch_event,
    destination_record,
    read_json,
    s3_event,
    tags_of,
    versions_of,
)
from policy_engine_lambda import handler as lambda_handler
from policy_engine_lambda.config import DEFAULT_POLICY
from policy_engine_lambda.events import InvocationError
from policy_engine_lambda.handler import RetryableFailure, handler
from policy_engine_lambda.moderate import DECISION_TAG, DIGEST_TAG, VERSION_TAG

from policy_engine.loader import load_policy
from policy_engine.plugins import DetectorRegistry
from policy_engine_rekognition.testing import FakeRekognition

ROOT = Path(__file__).resolve().parents[3]
DIGEST = load_policy(DEFAULT_POLICY, registry=DetectorRegistry.installed()).digest

KEY = "uploads/summer photo été.jpg"
KEY_IN_EVENT = "uploads/summer+photo+%C3%A9t%C3%A9.jpg"


def uri(key: str, version: str | None) -> str:
    """How FakeRekognition names an S3 object (the key as it is, not encoded)."""
    return f"s3://{BUCKET}/{key}" + (f"?versionId={version}" if version else "")


def encoded_uri(key: str, version: str | None) -> str:
    from policy_engine_rekognition.s3_inputs import S3Location

    return S3Location(BUCKET, key, version).uri


def test_the_shipped_policy_is_the_general_ugc_reference_policy() -> None:
    assert DEFAULT_POLICY.read_bytes() == (ROOT / "policies" / "general-ugc.yaml").read_bytes()


# --- S3 event notifications --------------------------------------------------------------


def test_s3_event_decides_in_place_tags_and_writes_the_record(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    version = put(KEY, tags="owner=alice&team=photos")

    answer = handler(s3_event(KEY_IN_EVENT, version), None)

    assert [r["decision"] for r in answer["results"]] == ["allow"]
    (call,) = fake.calls
    # checked in place: Rekognition reads the object version, nothing is downloaded
    assert call.request["Image"] == {
        "S3Object": {"Bucket": BUCKET, "Name": KEY, "Version": version}
    }
    assert tags_of(s3, KEY, version) == {
        "owner": "alice",
        "team": "photos",
        DECISION_TAG: "allow",
        DIGEST_TAG: DIGEST,
        VERSION_TAG: version,
    }
    record = read_json(s3, BUCKET, KEY + ".moderation.json")
    assert record["decision"] == "allow"
    assert record["policy"] == {"name": "general-ugc", "digest": DIGEST}
    assert record["input"] == encoded_uri(KEY, version)
    assert (record["bucket"], record["key"], record["version_id"]) == (BUCKET, KEY, version)
    assert record["etag"] and record["size"] > 0
    assert versions_of(s3, QUARANTINE, "quarantine/" + KEY) == []


def test_block_is_quarantined_and_the_original_deleted_when_enabled(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUARANTINE_BUCKET", QUARANTINE)
    monkeypatch.setenv("DELETE_ORIGINAL", "true")
    version = put(KEY)
    fake.respond(uri(KEY, version), VIOLENT)

    answer = handler(s3_event(KEY_IN_EVENT, version), None)

    (result,) = answer["results"]
    assert result["decision"] == "block" and result["status"] == "Succeeded"
    copy_key = "quarantine/" + KEY
    assert tags_of(s3, copy_key, bucket=QUARANTINE) == {
        DECISION_TAG: "block",
        DIGEST_TAG: DIGEST,
        VERSION_TAG: version,
    }
    original = s3.head_object(Bucket=BUCKET, Key=KEY + ".moderation.json")
    assert original["ContentType"] == "application/json"
    # the blocked version itself is gone for good, not hidden behind a delete marker
    assert versions_of(s3, BUCKET, KEY) == []
    assert s3.get_object(Bucket=QUARANTINE, Key=copy_key)["Body"].read().startswith(b"\xff\xd8")


def test_block_is_kept_in_place_unless_deletion_is_enabled(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    version = put(KEY)
    fake.respond(uri(KEY, version), VIOLENT)

    handler(s3_event(KEY_IN_EVENT, version), None)

    # by default the copy goes under quarantine/ in the same bucket, and is never re-moderated
    assert tags_of(s3, "quarantine/" + KEY)[DECISION_TAG] == "block"
    assert tags_of(s3, KEY, version)[DECISION_TAG] == "block"
    answer = handler(s3_event("quarantine/" + KEY_IN_EVENT, None), None)
    assert answer["results"][0]["message"] == "skipped: a quarantined copy"
    assert fake.call_count() == 1


def test_invoked_twice_the_object_is_decided_once_and_nothing_changes(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUARANTINE_BUCKET", QUARANTINE)
    version = put(KEY, tags="owner=alice")
    fake.respond(uri(KEY, version), VIOLENT)
    event = s3_event(KEY_IN_EVENT, version)

    first = handler(event, None)["results"][0]
    tags = tags_of(s3, KEY, version)
    lambda_handler.reset()  # a retry may land on a new container
    second = handler(event, None)["results"][0]

    assert fake.call_count() == 1
    assert first["decision"] == second["decision"] == "block"
    assert second["reused"] is True and second["actions"] == []
    assert tags_of(s3, KEY, version) == tags
    assert len(versions_of(s3, QUARANTINE, "quarantine/" + KEY)) == 1
    assert len(versions_of(s3, BUCKET, KEY + ".moderation.json")) == 1


def test_a_retry_after_a_crash_reapplies_only_the_missing_actions(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt wrote the record and the tags, then died before the copy."""
    monkeypatch.setenv("QUARANTINE_BUCKET", QUARANTINE)
    monkeypatch.setenv("DELETE_ORIGINAL", "true")
    version = put(KEY)
    tags = {DECISION_TAG: "block", DIGEST_TAG: DIGEST, VERSION_TAG: version}
    s3.put_object_tagging(
        Bucket=BUCKET,
        Key=KEY,
        VersionId=version,
        Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]},
    )
    s3.put_object(Bucket=BUCKET, Key=KEY + ".moderation.json", Body=b"{}")

    (result,) = handler(s3_event(KEY_IN_EVENT, version), None)["results"]

    assert fake.call_count() == 0  # the tags say it was decided under this policy
    assert result["reused"] is True
    assert result["actions"] == [
        f"quarantined to s3://{QUARANTINE}/quarantine/{KEY}",
        "original deleted",
    ]
    assert versions_of(s3, BUCKET, KEY) == []

    # and once more, after the deletion: done already, not a missing object
    (again,) = handler(s3_event(KEY_IN_EVENT, version), None)["results"]
    assert again["status"] == "Succeeded" and "already quarantined" in again["message"]
    assert len(versions_of(s3, QUARANTINE, "quarantine/" + KEY)) == 1


def test_tags_copied_in_from_another_bucket_are_never_reused(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    """A CopyObject (TaggingDirective=COPY) from a bucket of the copier's brings
    forged moderation tags, the current digest included, and sends no tag keys
    a bucket policy could see; the copy's version id is one nobody knew."""
    elsewhere = "amzn-s3-demo-elsewhere"
    s3.create_bucket(Bucket=elsewhere)
    s3.put_bucket_versioning(Bucket=elsewhere, VersioningConfiguration={"Status": "Enabled"})
    forged = put(KEY, bucket=elsewhere)
    tags = {DECISION_TAG: "allow", DIGEST_TAG: DIGEST, VERSION_TAG: forged}
    s3.put_object_tagging(
        Bucket=elsewhere,
        Key=KEY,
        VersionId=forged,
        Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]},
    )
    copied = s3.copy_object(
        CopySource={"Bucket": elsewhere, "Key": KEY, "VersionId": forged},
        Bucket=BUCKET,
        Key=KEY,
        TaggingDirective="COPY",
    )["VersionId"]
    assert tags_of(s3, KEY, copied)[DECISION_TAG] == "allow"
    fake.respond(uri(KEY, copied), VIOLENT)

    (result,) = handler(s3_event(KEY_IN_EVENT, copied), None)["results"]

    assert (result["decision"], result["reused"]) == ("block", False)
    assert fake.call_count() == 1
    assert tags_of(s3, KEY, copied)[VERSION_TAG] == copied


def test_a_new_policy_decides_again(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    version = put(KEY, tags=f"{DECISION_TAG}=allow&{DIGEST_TAG}=sha256:{'0' * 64}")
    fake.respond(uri(KEY, version), VIOLENT)

    (result,) = handler(s3_event(KEY_IN_EVENT, version), None)["results"]

    assert fake.call_count() == 1 and result["reused"] is False
    assert tags_of(s3, KEY, version) == {
        DECISION_TAG: "block",
        DIGEST_TAG: DIGEST,
        VERSION_TAG: version,
    }


def test_throttling_raises_so_lambda_retries_and_takes_no_action(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    version = put(KEY)
    fake.respond(uri(KEY, version), VIOLENT)
    fake.throttle(times=1)
    event = s3_event(KEY_IN_EVENT, version)

    with pytest.raises(RetryableFailure, match="ThrottlingException"):
        handler(event, None)
    assert tags_of(s3, KEY, version) == {}  # nothing decided: the retry decides afresh
    assert versions_of(s3, BUCKET, KEY + ".moderation.json") == []

    (result,) = handler(event, None)["results"]  # Lambda's retry
    assert result["decision"] == "block"
    assert [call.outcome for call in fake.calls] == ["ThrottlingException", "ok"]


def test_a_bad_image_is_logged_and_the_others_go_on(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    bad, good = "bad.jpg", "good.jpg"
    bad_version, good_version = put(bad), put(good)
    fake.fail(image=uri(bad, bad_version), code="InvalidImageFormatException")
    event = s3_event(bad, bad_version)
    event["Records"] += s3_event(good, good_version)["Records"]

    results = handler(event, None)["results"]

    assert [(r["status"], r["decision"]) for r in results] == [
        ("PermanentFailure", "review"),  # on_error: review, never allow
        ("Succeeded", "allow"),
    ]
    assert "InvalidImageFormatException" in results[0]["message"]
    assert tags_of(s3, bad, bad_version)[DECISION_TAG] == "review"
    record = read_json(s3, BUCKET, bad + ".moderation.json")
    assert record["errors"][0]["code"] == "InvalidImageFormatException"


def test_an_unversioned_object_and_other_events_are_handled(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    s3.create_bucket(Bucket="plain-bucket")
    put("a.png", bucket="plain-bucket")
    event = s3_event("a.png", None)
    event["Records"][0]["s3"]["bucket"]["name"] = "plain-bucket"
    removed = s3_event("a.png", None)["Records"][0]
    removed["eventName"] = "ObjectRemoved:Delete"
    event["Records"].append(removed)

    results = handler(event, None)["results"]

    assert [r["decision"] for r in results] == ["allow"]
    assert tags_of(s3, "a.png", bucket="plain-bucket")[DECISION_TAG] == "allow"
    assert handler({"Service": "Amazon S3", "Event": "s3:TestEvent"}, None) == {"results": []}


def test_the_engine_is_built_once_per_container(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []
    original = DetectorRegistry.installed.__func__  # type: ignore[attr-defined]

    def counting(cls: type[DetectorRegistry], **kwargs: Any) -> DetectorRegistry:
        built.append(1)
        registry: DetectorRegistry = original(cls, **kwargs)
        return registry

    monkeypatch.setattr(DetectorRegistry, "installed", classmethod(counting))
    for key in ("one.jpg", "two.jpg"):
        handler(s3_event(key, put(key)), None)
    assert len(built) == 1
    assert fake.call_count() == 2


def test_policy_file_and_a_timeout(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    (tmp_path / "strict.yaml").write_text(
        "version: 1\nname: strict\non_error: block\n"
        "detectors:\n  rekognition-moderation: {read_timeout: 0.3}\nrules: []\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    monkeypatch.setenv("POLICY_FILE", "strict.yaml")
    fake.latency = 2.0
    version = put(KEY)
    task = batch_event("1.0", (KEY_IN_EVENT, version))

    (result,) = handler(task, None)["results"]

    assert result["resultCode"] == "TemporaryFailure"
    assert "timeout" in result["resultString"]
    assert tags_of(s3, KEY, version) == {}  # on_error: block, yet nothing done before the retry


# --- failed events: the on-failure destination, and events the function cannot read -------


def test_a_failed_event_from_the_queue_is_fed_back_as_it_is(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    version = put(KEY)
    fake.respond(uri(KEY, version), VIOLENT)

    answer = handler(destination_record(s3_event(KEY_IN_EVENT, version)), None)

    assert [(r["status"], r["decision"]) for r in answer["results"]] == [("Succeeded", "block")]
    assert tags_of(s3, KEY, version)[DECISION_TAG] == "block"


def test_a_record_from_another_source_fails_the_invocation(s3: Any, fake: FakeRekognition) -> None:
    """Skipping it would leave its object unmoderated with only a log line;
    failing sends it to the failed-events queue."""
    event = s3_event(KEY_IN_EVENT, "v1")
    event["Records"][0]["eventSource"] = "aws:sqs"

    with pytest.raises(InvocationError, match="aws:sqs"):
        handler(event, None)
    with pytest.raises(InvocationError, match="requestPayload"):
        handler(destination_record({"detail": "not an S3 event"}), None)


def test_a_decoy_animated_png_is_decided_by_on_error_without_a_call(
    s3: Any, fake: FakeRekognition
) -> None:
    # browsers show only the animation (red); Rekognition would read only the blank
    # default image: the object is screened from its first bytes and never sent
    import io

    from PIL import Image as Pillow

    out = io.BytesIO()
    blank, red = Pillow.new("RGB", (100, 100), "white"), Pillow.new("RGB", (100, 100), "red")
    blank.save(out, format="PNG", save_all=True, append_images=[red], default_image=True)
    version = s3.put_object(Bucket=BUCKET, Key=KEY, Body=out.getvalue())["VersionId"]

    (result,) = handler(s3_event(KEY_IN_EVENT, version), None)["results"]

    assert (result["decision"], result["status"]) == ("review", "PermanentFailure")
    assert "hidden-default-image" in result["message"]
    assert tags_of(s3, KEY, version)[DECISION_TAG] == "review"
    assert fake.call_count() == 0
