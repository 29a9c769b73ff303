"""Keys near S3's limit of 1,024 UTF-8 bytes: ``quarantine/`` + such a key, or
the key + ``.moderation.json``, is too long for S3, so the copy and the record
go under a hash of the key instead, and keep the original key (moto does not
enforce the limit: ScriptedS3 does)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from lambda_helpers import (
    BUCKET,
    MAX_KEY_BYTES,
    QUARANTINE,
    VIOLENT,
    ScriptedS3,
    client_error,
    read_json,
    s3_event,
    tags_of,
    versions_of,
)
from policy_engine_lambda.config import ActionConfig, ConfigError, fitted_key
from policy_engine_lambda.handler import RetryableFailure, handler
from policy_engine_lambda.moderate import DECISION_TAG

from policy_engine_rekognition.testing import FakeRekognition

LONG_KEY = "u/" + "a" * 1014 + ".jpg"  # 1,020 bytes: fits S3, not under "quarantine/"


def sha256(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def size(key: str) -> int:
    return len(key.encode("utf-8"))


def test_fitted_key_keeps_a_key_that_fits_and_hashes_one_that_does_not() -> None:
    fits = "k" * (MAX_KEY_BYTES - len("quarantine/"))
    assert fitted_key("quarantine/", fits) == "quarantine/" + fits  # exactly 1,024 bytes
    assert fitted_key("quarantine/", fits + "k.jpg") == f"quarantine/{sha256(fits + 'k.jpg')}.jpg"
    # bytes, not characters: "é" is two
    accented = "é" * 507 + ".png"  # 1,018 bytes in 511 characters
    assert size("quarantine/" + accented) > MAX_KEY_BYTES
    assert fitted_key("quarantine/", accented) == f"quarantine/{sha256(accented)}.png"
    assert fitted_key("", accented, ".moderation.json") == f"{sha256(accented)}.png.moderation.json"
    # the extension is the last name's, and only a short plain one
    assert fitted_key("q/", "x" * 1100) == "q/" + sha256("x" * 1100)
    assert fitted_key("q/", "d.jpg/" + "x" * 1100) == "q/" + sha256("d.jpg/" + "x" * 1100)
    assert fitted_key("q/", "x" * 1100 + ".a b") == "q/" + sha256("x" * 1100 + ".a b")
    assert size(fitted_key("q" * 511 + "/", "é" * 600 + ".jpeg", ".moderation.json")) <= 1024


def test_a_prefix_that_leaves_no_room_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"QUARANTINE_PREFIX.*too long"):
        ActionConfig.from_environ({"QUARANTINE_PREFIX": "q" * 600 + "/"})


def test_a_key_too_long_for_the_quarantine_prefix_is_quarantined_under_its_hash(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    scripted: ScriptedS3,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUARANTINE_BUCKET", QUARANTINE)
    monkeypatch.setenv("DELETE_ORIGINAL", "true")
    assert size(LONG_KEY) == 1020
    s3.put_object(
        Bucket=BUCKET,
        Key=LONG_KEY,
        Body=b"\xff\xd8\xff" + b"\x00" * 20,
        ContentType="image/jpeg",
        Metadata={"uploader": "alice"},
    )
    (version,) = [v["VersionId"] for v in versions_of(s3, BUCKET, LONG_KEY)]
    fake.respond(f"s3://{BUCKET}/{LONG_KEY}?versionId={version}", VIOLENT)

    (result,) = handler(s3_event(LONG_KEY, version), None)["results"]

    assert (result["status"], result["decision"]) == ("Succeeded", "block"), result
    assert versions_of(s3, BUCKET, LONG_KEY) == []  # enforced: the original is gone
    copy = f"quarantine/{sha256(LONG_KEY)}.jpg"
    head = s3.head_object(Bucket=QUARANTINE, Key=copy)
    # the original key, and the original's own metadata and content type, kept
    assert head["Metadata"] == {"original-key": LONG_KEY, "uploader": "alice"}
    assert head["ContentType"] == "image/jpeg"
    assert tags_of(s3, copy, bucket=QUARANTINE)[DECISION_TAG] == "block"
    record = read_json(s3, BUCKET, f"{sha256(LONG_KEY)}.jpg.moderation.json")
    assert (record["key"], record["decision"]) == (LONG_KEY, "block")
    assert f"s3://{QUARANTINE}/{copy}" in record["actions"][0]
    # a retry finds the copy under its hash: done already, not a missing object
    (again,) = handler(s3_event(LONG_KEY, version), None)["results"]
    assert again["status"] == "Succeeded" and "already quarantined" in again["message"]
    assert len(versions_of(s3, QUARANTINE, copy)) == 1


def test_metadata_s3_refuses_never_keeps_the_copy_out_of_quarantine(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    scripted: ScriptedS3,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUARANTINE_BUCKET", QUARANTINE)
    version = put(LONG_KEY)
    fake.respond(f"s3://{BUCKET}/{LONG_KEY}?versionId={version}", VIOLENT)
    scripted.faults["copy_object"] = [client_error("MetadataTooLarge", "CopyObject")]

    with pytest.raises(RetryableFailure) as raised:
        handler(s3_event(LONG_KEY, version), None)

    (outcome,) = raised.value.outcomes
    assert outcome.status.value == "PermanentFailure"
    assert "the quarantined copy lacks the original key in its metadata" in outcome.message
    copy = f"quarantine/{sha256(LONG_KEY)}.jpg"
    assert s3.head_object(Bucket=QUARANTINE, Key=copy)["Metadata"] == {}
    assert tags_of(s3, copy, bucket=QUARANTINE)[DECISION_TAG] == "block"
    assert read_json(s3, BUCKET, f"{sha256(LONG_KEY)}.jpg.moderation.json")["key"] == LONG_KEY


def test_a_long_key_of_many_byte_characters_keeps_its_key_in_base64(
    s3: Any, fake: FakeRekognition, scripted: ScriptedS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """URL-encoded, such a key would exceed S3's 2 KB of metadata: base64 then.
    In an unversioned bucket, the bytes decided are put in quarantine."""
    plain = "amzn-s3-demo-plain"
    s3.create_bucket(Bucket=plain)
    monkeypatch.setenv("QUARANTINE_BUCKET", QUARANTINE)
    key = "é" * 509 + ".png"  # 1,022 bytes
    body = b"\x89PNG\r\n\x1a\n" + b"violent"
    s3.put_object(Bucket=plain, Key=key, Body=body)
    fake.respond(body, VIOLENT)
    assert len(quote(key, safe="/")) > 2048
    event = s3_event(key, None)
    event["Records"][0]["s3"]["bucket"]["name"] = plain

    (result,) = handler(event, None)["results"]

    assert (result["status"], result["decision"]) == ("Succeeded", "block"), result
    copy = f"quarantine/{sha256(key)}.png"
    assert s3.get_object(Bucket=QUARANTINE, Key=copy)["Body"].read() == body
    metadata = s3.head_object(Bucket=QUARANTINE, Key=copy)["Metadata"]
    assert base64.b64decode(metadata["original-key-base64"]).decode("utf-8") == key
    assert read_json(s3, plain, f"{sha256(key)}.png.moderation.json")["key"] == key


def test_a_key_that_fits_is_copied_as_it_is(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], scripted: ScriptedS3
) -> None:
    key = "k" * (MAX_KEY_BYTES - len("quarantine/"))
    version = put(key)
    fake.respond(f"s3://{BUCKET}/{key}?versionId={version}", VIOLENT)

    (result,) = handler(s3_event(key, version), None)["results"]

    # the copy fits; the record beside it does not, and goes under the hash
    assert result["status"] == "Succeeded", result
    assert s3.head_object(Bucket=BUCKET, Key="quarantine/" + key)["Metadata"] == {}
    assert read_json(s3, BUCKET, sha256(key) + ".moderation.json")["key"] == key
