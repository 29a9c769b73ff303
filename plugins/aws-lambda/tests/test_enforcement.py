"""Enforcement (the quarantine copy, the deletion) never depends on bookkeeping
(the tags, the decision record): each is attempted whatever happened to the
others, a failure is said (status and message), and a retry after a crash at
any step ends enforced."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from lambda_helpers import (
    BUCKET,
    QUARANTINE,
    VIOLENT,
    Crash,
    ScriptedS3,
    client_error,
    read_json,
    s3_event,
    tags_of,
    versions_of,
)
from policy_engine_lambda import handler as lambda_handler
from policy_engine_lambda.config import DEFAULT_POLICY
from policy_engine_lambda.handler import RetryableFailure, handler
from policy_engine_lambda.moderate import DECISION_TAG, DIGEST_TAG, MAX_TAGS, VERSION_TAG, fit_tags

from policy_engine.loader import load_policy
from policy_engine.plugins import DetectorRegistry
from policy_engine_rekognition.testing import FakeRekognition

DIGEST = load_policy(DEFAULT_POLICY, registry=DetectorRegistry.installed()).digest
KEY = "uploads/fight.jpg"
COPY = "quarantine/" + KEY
RECORD = KEY + ".moderation.json"


def blocked(version: str) -> dict[str, str]:
    """The moderation tags of the object version ``version``, blocked."""
    return {DECISION_TAG: "block", DIGEST_TAG: DIGEST, VERSION_TAG: version}


def uri(key: str, version: str) -> str:
    return f"s3://{BUCKET}/{key}?versionId={version}"


def own_tags(count: int) -> dict[str, str]:
    return {f"tag{index}": f"value {index}" for index in range(count)}


def as_query(tags: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(tags)


@pytest.fixture
def quarantine_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUARANTINE_BUCKET", QUARANTINE)


def unfinished(event: dict[str, Any]) -> dict[str, Any]:
    """The one object's outcome, from an S3 notification whose invocation must
    fail: a step failed, so Lambda retries it, then sends it to the
    failed-events queue (never a log line only)."""
    with pytest.raises(RetryableFailure) as raised:
        handler(event, None)
    (outcome,) = raised.value.outcomes
    assert outcome.unfinished
    return outcome.to_log()


# --- the object's own tags and the moderation tags -------------------------------------------


def test_fit_tags_gives_the_moderation_tags_precedence() -> None:
    ours = {DECISION_TAG: "block", DIGEST_TAG: DIGEST}
    own = {**own_tags(9), DECISION_TAG: "allow", VERSION_TAG: "v0"}  # stale: replaced or gone

    tags, dropped = fit_tags(own, ours)

    assert len(tags) == MAX_TAGS
    assert {k: tags[k] for k in ours} == ours
    # the object's own tags are kept in key order as far as they fit; the rest are named
    assert dropped == {"tag8": "value 8"}
    assert fit_tags(own_tags(3), ours) == ({**own_tags(3), **ours}, {})


def test_a_blocked_object_with_nine_tags_is_quarantined_and_deleted(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    quarantine_bucket: None,
) -> None:
    """The issue's case: 9 own tags + 2 moderation tags exceed S3's 10."""
    monkeypatch.setenv("DELETE_ORIGINAL", "true")
    version = put(KEY, tags=as_query(own_tags(9)))
    fake.respond(uri(KEY, version), VIOLENT)

    (result,) = handler(s3_event(KEY, version), None)["results"]

    assert (result["status"], result["decision"]) == ("Succeeded", "block"), result
    assert versions_of(s3, BUCKET, KEY) == []  # the violent original is gone
    # the copy carries the moderation tags and the object's own tags as far as they fit
    assert tags_of(s3, COPY, bucket=QUARANTINE) == {**own_tags(7), **blocked(version)}
    record = read_json(s3, BUCKET, RECORD)
    assert record["decision"] == "block"
    assert record["tags_dropped"] == {"tag7": "value 7", "tag8": "value 8"}
    assert "tag7, tag8" in result["message"]


def test_a_blocked_object_kept_in_place_is_tagged_block_before_its_own_tags(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], quarantine_bucket: None
) -> None:
    version = put(KEY, tags=as_query(own_tags(10)))
    fake.respond(uri(KEY, version), VIOLENT)

    (result,) = handler(s3_event(KEY, version), None)["results"]

    assert result["status"] == "Succeeded", result
    assert tags_of(s3, KEY, version) == {**own_tags(7), **blocked(version)}
    assert tags_of(s3, COPY, bucket=QUARANTINE) == {**own_tags(7), **blocked(version)}
    assert read_json(s3, BUCKET, RECORD)["tags_dropped"] == {
        "tag7": "value 7",
        "tag8": "value 8",
        "tag9": "value 9",
    }


# --- a failing step never stops the others ---------------------------------------------------


def test_a_refused_tagging_never_stops_the_quarantine(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    scripted: ScriptedS3,
    quarantine_bucket: None,
) -> None:
    version = put(KEY)
    fake.respond(uri(KEY, version), VIOLENT)
    scripted.faults["put_object_tagging"] = [client_error("AccessDenied", "PutObjectTagging", 403)]

    result = unfinished(s3_event(KEY, version))

    assert (result["status"], result["decision"]) == ("PermanentFailure", "block")
    assert "not tagged" in result["message"] and "AccessDenied" in result["message"]
    assert f"quarantined to s3://{QUARANTINE}/{COPY}" in result["message"]
    assert len(versions_of(s3, QUARANTINE, COPY)) == 1
    assert read_json(s3, BUCKET, RECORD)["decision"] == "block"


def test_a_failed_record_never_stops_the_quarantine(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    quarantine_bucket: None,
) -> None:
    monkeypatch.setenv("DELETE_ORIGINAL", "true")
    monkeypatch.setenv("RECORDS", "prefix")
    monkeypatch.setenv("RESULTS_BUCKET", "amzn-s3-demo-no-such-bucket")
    version = put(KEY)
    fake.respond(uri(KEY, version), VIOLENT)

    result = unfinished(s3_event(KEY, version))

    assert (result["status"], result["decision"]) == ("PermanentFailure", "block")
    assert "record not written" in result["message"] and "NoSuchBucket" in result["message"]
    assert versions_of(s3, BUCKET, KEY) == []
    assert tags_of(s3, COPY, bucket=QUARANTINE) == blocked(version)


def test_a_failed_copy_keeps_the_original_and_still_marks_it_blocked(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    scripted: ScriptedS3,
    monkeypatch: pytest.MonkeyPatch,
    quarantine_bucket: None,
) -> None:
    monkeypatch.setenv("DELETE_ORIGINAL", "true")
    version = put(KEY)
    fake.respond(uri(KEY, version), VIOLENT)
    denied = client_error("AccessDenied", "CopyObject", 403)
    scripted.faults["copy_object"] = [denied, denied]  # tagged, then untagged

    result = unfinished(s3_event(KEY, version))

    assert (result["status"], result["decision"]) == ("PermanentFailure", "block")
    assert "NOT quarantined" in result["message"]
    assert "original kept" in result["message"]
    assert len(versions_of(s3, BUCKET, KEY)) == 1  # never deleted without its copy
    assert tags_of(s3, KEY, version) == blocked(version)  # fail closed: the object says block
    assert read_json(s3, BUCKET, RECORD)["decision"] == "block"


def test_a_copy_whose_tags_are_refused_is_made_without_them(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    scripted: ScriptedS3,
    monkeypatch: pytest.MonkeyPatch,
    quarantine_bucket: None,
) -> None:
    monkeypatch.setenv("DELETE_ORIGINAL", "true")
    version = put(KEY)
    fake.respond(uri(KEY, version), VIOLENT)
    scripted.faults["copy_object"] = [client_error("AccessDenied", "CopyObject", 403)]

    result = unfinished(s3_event(KEY, version))

    assert result["status"] == "PermanentFailure"
    assert "untagged" in result["message"]
    assert len(versions_of(s3, QUARANTINE, COPY)) == 1
    assert tags_of(s3, COPY, bucket=QUARANTINE) == {}
    assert versions_of(s3, BUCKET, KEY) == []


def test_a_throttled_bookkeeping_step_is_retried_after_the_enforcement(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    scripted: ScriptedS3,
    quarantine_bucket: None,
) -> None:
    version = put(KEY)
    fake.respond(uri(KEY, version), VIOLENT)
    scripted.faults["put_object_tagging"] = [client_error("SlowDown", "PutObjectTagging", 503)]

    with pytest.raises(RetryableFailure, match="SlowDown"):
        handler(s3_event(KEY, version), None)
    assert len(versions_of(s3, QUARANTINE, COPY)) == 1  # enforced before the failure

    (result,) = handler(s3_event(KEY, version), None)["results"]  # Lambda's retry
    assert result["status"] == "Succeeded"
    assert tags_of(s3, KEY, version) == blocked(version)
    assert len(versions_of(s3, QUARANTINE, COPY)) == 1


@pytest.mark.parametrize("delete", [False, True])
def test_unreadable_tags_never_stop_the_decision_and_the_quarantine(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    scripted: ScriptedS3,
    monkeypatch: pytest.MonkeyPatch,
    quarantine_bucket: None,
    delete: bool,
) -> None:
    """GetObjectTagging refused: the tags are bookkeeping, so the object is
    decided afresh and quarantined, and its tags, which the function never saw,
    are left as they are (rewriting them would replace them for good)."""
    monkeypatch.setenv("DELETE_ORIGINAL", str(delete).lower())
    version = put(KEY, tags=f"owner=alice&{DECISION_TAG}=allow&{DIGEST_TAG}={DIGEST}")
    fake.respond(uri(KEY, version), VIOLENT)
    denied = client_error("AccessDenied", "GetObjectTagging", 403)
    scripted.faults["get_object_tagging"] = [denied] * 10

    event = s3_event(KEY, version)
    if delete:  # nothing left to tag: done
        (result,) = handler(event, None)["results"]
        assert result["status"] == "Succeeded", result
        assert versions_of(s3, BUCKET, KEY) == []
    else:
        result = unfinished(event)
        assert result["status"] == "PermanentFailure", result
        assert "FAILED: not tagged: its tags could not be read" in result["message"]
        assert "AccessDenied" in result["message"]
        assert tags_of(s3, KEY, version)["owner"] == "alice"
    assert (result["decision"], result["reused"]) == ("block", False)
    assert fake.call_count() == 1  # the tags' "allow" was not seen, let alone reused
    assert tags_of(s3, COPY, bucket=QUARANTINE) == blocked(version)  # own tags unknown: none copied
    assert read_json(s3, BUCKET, RECORD)["decision"] == "block"


def test_unreadable_tags_of_an_object_kept_in_place_are_left_alone(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    scripted: ScriptedS3,
) -> None:
    """With the copies in the same bucket, the quarantine-prefix check reads
    tags too: tags it cannot read prove nothing, and the object is moderated."""
    version = put(COPY, tags="owner=alice")
    fake.respond(uri(COPY, version), VIOLENT)
    throttled = client_error("SlowDown", "GetObjectTagging", 503)
    scripted.faults["get_object_tagging"] = [throttled] * 10

    result = unfinished(s3_event(COPY, version))

    assert (result["status"], result["decision"]) == ("TemporaryFailure", "block"), result
    assert "SlowDown" in result["message"]
    assert tags_of(s3, COPY, version) == {"owner": "alice"}
    assert read_json(s3, BUCKET, COPY + ".moderation.json")["decision"] == "block"


# --- a crash at any step ---------------------------------------------------------------------

WRITES = ("copy_object", "delete_object", "put_object", "put_object_tagging")


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize(
    ("delete", "step"),
    [(True, step) for step in WRITES if step != "put_object_tagging"]
    + [(False, step) for step in WRITES if step != "delete_object"],
)
def test_a_retry_after_a_crash_at_any_step_ends_enforced(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    scripted: ScriptedS3,
    monkeypatch: pytest.MonkeyPatch,
    quarantine_bucket: None,
    delete: bool,
    step: str,
    when: str,
) -> None:
    monkeypatch.setenv("DELETE_ORIGINAL", str(delete).lower())
    version = put(KEY, tags="owner=alice")
    fake.respond(uri(KEY, version), VIOLENT)
    event = s3_event(KEY, version)

    def crash(_: Any) -> None:
        raise Crash(f"the container died {when} {step}")

    (scripted.before if when == "before" else scripted.after)[step] = crash
    with pytest.raises(Crash):
        handler(event, None)
    assert step in scripted.called

    lambda_handler.reset()  # Lambda's retry, on another container
    (result,) = handler(event, None)["results"]

    assert result["status"] == "Succeeded", result
    assert len(versions_of(s3, QUARANTINE, COPY)) == 1
    assert tags_of(s3, COPY, bucket=QUARANTINE) == {"owner": "alice", **blocked(version)}
    assert read_json(s3, BUCKET, RECORD)["decision"] == "block"
    if delete:
        assert versions_of(s3, BUCKET, KEY) == []
    else:
        assert tags_of(s3, KEY, version) == {"owner": "alice", **blocked(version)}
    assert fake.call_count() <= 2


# --- the function's own outputs are skipped only when they are proven its own -----------------


def test_an_upload_under_the_quarantine_prefix_is_moderated(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    """With the copies in the source bucket, an uploader who writes under
    quarantine/ must not escape moderation: only copies carrying the
    function's tags are skipped."""
    version = put(COPY)
    fake.respond(uri(COPY, version), VIOLENT)

    (result,) = handler(s3_event(COPY, version), None)["results"]

    assert (result["status"], result["decision"]) == ("Succeeded", "block"), result
    assert tags_of(s3, COPY, version) == blocked(version)
    assert versions_of(s3, BUCKET, "quarantine/" + COPY) == []  # not copied again
    # and the function's own copies are still skipped
    other = "uploads/other.jpg"
    original = put(other)
    fake.respond(uri(other, original), VIOLENT)
    handler(s3_event(other, original), None)
    (copy,) = versions_of(s3, BUCKET, "quarantine/" + other)
    (skipped,) = handler(s3_event("quarantine/" + other, copy["VersionId"]), None)["results"]
    assert skipped["message"] == "skipped: a quarantined copy"
    assert fake.call_count() == 2


def test_an_upload_under_the_quarantine_prefix_tagged_allow_is_moderated(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    """A quarantined copy is never "allow": tags that say so (forged, or copied
    in from elsewhere) are no copy's, and never let an upload skip moderation."""
    version = put(COPY, tags=f"{DECISION_TAG}=allow&{DIGEST_TAG}={DIGEST}")
    fake.respond(uri(COPY, version), VIOLENT)

    (result,) = handler(s3_event(COPY, version), None)["results"]

    assert (result["decision"], result["reused"]) == ("block", False), result
    assert tags_of(s3, COPY, version) == blocked(version)


def test_an_upload_under_the_results_prefix_is_moderated(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECORDS", "prefix")
    key = "moderation-results/fight.jpg"
    version = put(key)
    fake.respond(uri(key, version), VIOLENT)

    (result,) = handler(s3_event(key, version), None)["results"]

    assert result["decision"] == "block"
    assert fake.call_count() == 1


def test_an_object_that_cannot_be_read_is_never_left_with_a_log_line(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], scripted: ScriptedS3
) -> None:
    version = put(KEY)
    scripted.faults["head_object"] = [client_error("AccessDenied", "HeadObject", 403)]

    result = unfinished(s3_event(KEY, version))

    assert (result["status"], result["decision"]) == ("PermanentFailure", None)
    assert "AccessDenied" in result["message"]
    # a missing object has nothing left to moderate: logged, and the invocation succeeds
    (missing,) = handler(s3_event("uploads/deleted-since.jpg", None), None)["results"]
    assert missing["status"] == "PermanentFailure" and not missing["unfinished"]
