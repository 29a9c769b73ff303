"""Every object created in the bucket is moderated, whatever its name, and the
function's own outputs are skipped only when they are proven its own: records
and recordings by their content, quarantined copies by their tags. Fed back
as S3 would notify them, its outputs never loop."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

import pytest
from lambda_helpers import BUCKET, JPEG, VIOLENT, batch_event, s3_event, tags_of
from policy_engine_lambda.handler import handler
from policy_engine_lambda.moderate import DECISION_TAG, RECORD_FORMAT

from policy_engine_rekognition.testing import FakeRekognition


def uri(key: str, version: str) -> str:
    return f"s3://{BUCKET}/{key}?versionId={version}"


def object_versions(s3: Any) -> set[tuple[str, str]]:
    answer = s3.list_object_versions(Bucket=BUCKET)
    return {(v["Key"], v["VersionId"]) for v in answer.get("Versions", [])}


def notify_until_quiet(s3: Any, first: dict[str, Any]) -> list[dict[str, Any]]:
    """Invoke the function as S3 would: with ``first``, then with one event for
    every object version the function creates in the bucket, until it creates
    none; the results, in order. Fails if that does not end."""
    seen = object_versions(s3)
    pending = [first]
    results: list[dict[str, Any]] = []
    for _ in range(20):
        if not pending:
            return results
        results += handler(pending.pop(0), None)["results"]
        for key, version in sorted(object_versions(s3) - seen):
            seen.add((key, version))
            pending.append(s3_event(quote_plus(key, safe="/"), version))
    raise AssertionError(f"the function's outputs keep invoking it: {results}")


@pytest.fixture
def outputs_in_the_bucket(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every output in the source bucket: copies under quarantine/, records
    beside the objects, recordings under recordings/."""
    monkeypatch.setenv("RECORDINGS_BUCKET", BUCKET)


@pytest.mark.parametrize(
    ("key", "decision"),
    [("DCIM/IMG_0001.JPG", "block"), ("a.webp", "review"), ("scan", "review")],
)
def test_every_upload_is_moderated_and_the_outputs_never_loop(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    outputs_in_the_bucket: None,
    key: str,
    decision: str,
) -> None:
    version = put(key)
    if decision == "block":
        fake.respond(uri(key, version), VIOLENT)
    else:  # Rekognition reads JPEG and PNG only: on_error (review) decides the rest
        fake.fail(image=uri(key, version), code="InvalidImageFormatException")

    results = notify_until_quiet(s3, s3_event(quote_plus(key, safe="/"), version))

    first, *outputs = results
    assert first["decision"] == decision
    skipped = sorted(r["message"] for r in outputs)
    expected = ["skipped: a decision record"]
    if decision == "block":  # quarantined, and Rekognition's answer recorded
        expected += ["skipped: a quarantined copy", "skipped: a recording of detector responses"]
    assert skipped == expected, results
    assert fake.call_count() == 1


def test_an_upload_named_like_a_record_is_moderated(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    """The name is the uploader's to choose: an image stored as
    cat.moderation.json is an image, and a Batch Operations backfill decides it."""
    key = "uploads/cat.moderation.json"
    version = put(key)
    fake.respond(uri(key, version), VIOLENT)

    (result,) = handler(batch_event("1.0", (key, version)), None)["results"]

    assert result["resultCode"] == "Succeeded"
    assert result["resultString"].startswith("block"), result
    assert tags_of(s3, key, version)[DECISION_TAG] == "block"


def test_an_upload_named_like_a_recording_is_moderated(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], outputs_in_the_bucket: None
) -> None:
    key = "recordings/cat.json"
    version = put(key)
    fake.respond(uri(key, version), VIOLENT)

    (result,) = handler(s3_event(key, version), None)["results"]

    assert result["decision"] == "block", result


def test_a_document_in_the_record_format_is_skipped_as_no_image_can_be_one(
    s3: Any, fake: FakeRekognition
) -> None:
    """JSON starts with "{", no JPEG, PNG, GIF or WebP does: whoever writes one
    under a record's name has stored no image, and it is skipped unread by
    Rekognition. Anything else under such a name is moderated."""
    key = "uploads/x.jpg.moderation.json"
    body = json.dumps({"format": RECORD_FORMAT, "decision": "allow"}).encode()
    version = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["VersionId"]
    not_json = s3.put_object(Bucket=BUCKET, Key=key, Body=JPEG)["VersionId"]
    fake.respond(uri(key, not_json), VIOLENT)

    (skipped,) = handler(s3_event(key, version), None)["results"]
    (moderated,) = handler(s3_event(key, not_json), None)["results"]

    assert skipped["message"] == "skipped: a decision record"
    assert moderated["decision"] == "block"
    assert fake.call_count() == 1
