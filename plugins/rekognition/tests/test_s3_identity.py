"""An S3 object is cached and recorded under what identifies its bytes (its
ETag, and on a versioned bucket its version id, which Rekognition is then
sent), never under its URI alone: overwrite it and the next check asks
again. S3 through moto, Rekognition through FakeRekognition."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import policy_engine_rekognition.plugin
from policy_engine import Moderator
from policy_engine.cli import main
from policy_engine.image import Image
from policy_engine.plugins import DetectorRegistry, make_plugin_manager
from policy_engine_rekognition.s3_inputs import S3InputError, identify_s3_image
from policy_engine_rekognition.testing import FakeRekognition

BUCKET = "uploads-bucket"
KEY = "u/cat.jpg"
URI = f"s3://{BUCKET}/{KEY}"
VIOLENT = {
    "ModerationModelVersion": "7.0",
    "ModerationLabels": [
        {"Name": "Weapon Violence", "ParentName": "Graphic Violence", "Confidence": 97.3},
        {"Name": "Graphic Violence", "ParentName": "Violence", "Confidence": 97.3},
        {"Name": "Violence", "ParentName": "", "Confidence": 97.3},
    ],
}
POLICY = """
version: 1
name: s3-uploads
detectors:
  rekognition-moderation: {{endpoint_url: '{endpoint_url}', retry_mode: standard, max_attempts: 1}}
rules:
  - {{id: graphic-violence, match: {{parent: Graphic Violence}}, block_at: 90}}
"""


@pytest.fixture
def s3() -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def versioned(s3: Any) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})


def put(s3: Any, body: bytes, key: str = KEY) -> dict[str, Any]:
    answer: dict[str, Any] = s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return answer


def policy_file(folder: Path, fake: FakeRekognition) -> Path:
    path = folder / "policy.yaml"
    path.write_text(POLICY.format(endpoint_url=fake.endpoint_url), encoding="utf-8")
    return path


def moderator(folder: Path, fake: FakeRekognition, store: Path) -> Moderator:
    plugins = make_plugin_manager(load_entry_points=False)
    plugins.register(policy_engine_rekognition.plugin, name="rekognition")
    return Moderator(
        policy_file(folder, fake),
        registry=DetectorRegistry.from_plugin_manager(plugins),
        plugin_manager=plugins,
        cache=store,
        record=store,
    )


def sent_objects(fake: FakeRekognition) -> list[dict[str, str]]:
    return [call.request["Image"]["S3Object"] for call in fake.calls]


# --- Moderator.check("s3://bucket/key") with cache= and record= ---------------------------------


def test_an_overwritten_object_is_asked_again_not_answered_from_the_stale_cache(
    s3: Any, fake: FakeRekognition, tmp_path: Path
) -> None:
    put(s3, b"\xff\xd8\xff calm")
    checker = moderator(tmp_path, fake, tmp_path / "rec")
    assert checker.check(URI).verdict == "allow"

    put(s3, b"\xff\xd8\xff a knife")  # same key, other bytes (no versioning)
    fake.respond(URI, VIOLENT)

    assert checker.check(URI).verdict == "block"
    assert fake.call_count() == 2
    # Without versioning nothing pins the bytes Rekognition reads (they could be
    # swapped and swapped back under one ETag): asked every time, never cached.
    again = checker.check(URI)
    assert again.verdict == "block" and fake.call_count() == 3
    assert "from_cache" not in again.to_dict()["detectors"]["rekognition-moderation"]
    assert sent_objects(fake) == [{"Bucket": BUCKET, "Name": KEY}] * 3
    assert not list((tmp_path / "rec").glob("*.json"))  # nothing recorded either


def test_bytes_swapped_back_under_one_etag_never_poison_the_cache(
    s3: Any, fake: FakeRekognition, tmp_path: Path
) -> None:
    # The attack: HeadObject sees the violent object; harmless bytes are swapped
    # in before Rekognition reads, so it answers allow; the violent bytes are
    # put back (same ETag). Were that allow cached under the ETag, it would stand.
    violent = b"\xff\xd8\xff a knife"
    put(s3, violent)
    checker = moderator(tmp_path, fake, tmp_path / "rec")
    fake.respond(URI, {"ModerationLabels": []})  # what the swapped-in bytes got
    assert checker.check(URI).verdict == "allow"
    put(s3, violent)  # swapped back: the same ETag as when it was identified
    fake.respond(URI, VIOLENT)

    assert checker.check(URI).verdict == "block"  # asked again, not the poisoned allow
    assert fake.call_count() == 2


def test_on_a_versioned_bucket_rekognition_reads_the_version_that_was_identified(
    s3: Any, fake: FakeRekognition, tmp_path: Path
) -> None:
    versioned(s3)
    first = put(s3, b"\xff\xd8\xff calm")["VersionId"]
    checker = moderator(tmp_path, fake, tmp_path / "rec")
    assert checker.check(URI).verdict == "allow"

    second = put(s3, b"\xff\xd8\xff a knife")["VersionId"]
    fake.respond(f"{URI}?versionId={second}", VIOLENT)

    assert checker.check(URI).verdict == "block"
    assert sent_objects(fake) == [
        {"Bucket": BUCKET, "Name": KEY, "Version": first},
        {"Bucket": BUCKET, "Name": KEY, "Version": second},
    ]
    # the version named in the URI is the same image: the cache answers it
    assert checker.check(f"{URI}?versionId={first}").verdict == "allow"
    assert fake.call_count() == 2


def test_an_object_that_cannot_be_identified_is_neither_cached_nor_recorded(
    s3: Any, fake: FakeRekognition, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # no such object: HeadObject fails, then so does the screening read, so
    # no call goes out (Rekognition would answer InvalidS3ObjectException)
    checker = moderator(tmp_path, fake, tmp_path / "rec")
    decisions = [checker.check(f"s3://{BUCKET}/missing.jpg") for _ in range(2)]

    assert [f.code for d in decisions for f in d.failures] == ["s3-screen-failed"] * 2
    assert fake.call_count() == 0
    assert not (tmp_path / "rec").exists() or list((tmp_path / "rec").iterdir()) == []
    assert "no such object" in caplog.text


# --- check s3://bucket/prefix/ with --record and --cache ----------------------------------------


def check(*args: str | Path) -> tuple[int, list[dict[str, Any]], str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["check", *(str(arg) for arg in args)], out, err)
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


@pytest.mark.parametrize("bucket_versioning", [False, True])
def test_a_listed_prefix_is_recorded_by_what_identifies_each_object(
    s3: Any,
    fake: FakeRekognition,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bucket_versioning: bool,
) -> None:
    monkeypatch.delenv("POLICY_ENGINE_PLUGINS", raising=False)
    if bucket_versioning:
        versioned(s3)
    first = put(s3, b"\xff\xd8\xff calm").get("VersionId")
    policy, rec = policy_file(tmp_path, fake), tmp_path / "rec"
    code, records, err = check("--policy", policy, "--record", rec, f"s3://{BUCKET}/u/")
    assert code == 0, err
    assert [r["decision"] for r in records] == ["allow"]

    second = put(s3, b"\xff\xd8\xff a knife").get("VersionId")
    fake.respond(URI + (f"?versionId={second}" if bucket_versioning else ""), VIOLENT)
    code, records, err = check("--policy", policy, "--cache", rec, f"s3://{BUCKET}/u/")

    assert code == 0, err
    assert [r["decision"] for r in records] == ["block"]  # not the recorded allow
    assert "1 made, 0 saved" in err
    versions = [first, second] if bucket_versioning else [None, None]
    assert sent_objects(fake) == [
        {"Bucket": BUCKET, "Name": KEY, **({"Version": v} if v else {})} for v in versions
    ]


# --- identify_s3_image ----------------------------------------------------------------------


class NoCalls:
    def head_object(self, **request: Any) -> Any:
        raise AssertionError(f"unexpected HeadObject {request}")


def test_a_version_with_its_etag_is_already_identified() -> None:
    image = Image("upload", uri=f"{URI}?versionId=v1", version='"etag"')
    assert identify_s3_image(image, NoCalls()) is image


def test_identify_keeps_the_name_and_fills_etag_size_and_version(s3: Any) -> None:
    versioned(s3)
    answer = put(s3, b"\xff\xd8\xff 12345")

    found = identify_s3_image(Image("upload-7", uri=f"s3://{BUCKET}/u/cat%2Ejpg"), s3)

    assert (found.name, found.uri, found.version, found.size) == (
        "upload-7",
        f"{URI}?versionId={answer['VersionId']}",
        answer["ETag"],
        len(b"\xff\xd8\xff 12345"),
    )


class NullVersion:
    """S3 names an object stored before versioning was enabled version "null"."""

    def head_object(self, **request: Any) -> Any:
        return {"ETag": '"e1"', "ContentLength": 9, "VersionId": "null"}


def test_an_object_stored_before_versioning_is_not_pinned_to_null() -> None:
    found = identify_s3_image(Image(URI, uri=URI), NullVersion())
    # nothing pins its bytes: left unidentified, so never cached
    assert (found.uri, found.version, found.size, found.identified) == (URI, None, 9, False)


def test_identify_says_why_an_object_cannot_be_read(s3: Any) -> None:
    with pytest.raises(S3InputError, match=f"no such object s3://{BUCKET}/gone.jpg"):
        identify_s3_image(Image("x", uri=f"s3://{BUCKET}/gone.jpg"), s3)
