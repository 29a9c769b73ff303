"""``s3://`` inputs of ``policy-engine check``: the ``policy_engine_expand_input``
hook listing S3 with moto (``mock_aws``), lazily, page by page; and an end to
end run where the listed objects reach FakeRekognition as ``S3Object``."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest

import policy_engine_rekognition.plugin
from policy_engine import parse_policy
from policy_engine.batch import check_many, expand_inputs
from policy_engine.engine import Engine
from policy_engine.image import Image
from policy_engine.plugins import DetectorRegistry, make_plugin_manager
from policy_engine_rekognition.s3_inputs import (
    S3InputError,
    build_s3_client,
    expand_s3_input,
)
from policy_engine_rekognition.testing import FakeRekognition

BUCKET = "moderation-inputs"


@pytest.fixture
def s3() -> Iterator[Any]:
    """An S3 client inside moto's ``mock_aws``, with an empty bucket."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def put(s3: Any, *keys: str, body: bytes = b"\xff\xd8\xff tiny") -> None:
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def names(images: Any) -> list[str]:
    return [image.name for image in images]


def manager() -> Any:
    plugins = make_plugin_manager(load_entry_points=False)
    plugins.register(policy_engine_rekognition.plugin, name="rekognition")
    return plugins


# --- what a listing yields ---------------------------------------------------------


def test_other_schemes_are_not_ours() -> None:
    for spec in ("photos/", "https://example.com/a.jpg", "gs://bucket/a.jpg", "-"):
        assert expand_s3_input(spec) is None
        assert manager().hook.policy_engine_expand_input(spec=spec) is None


def test_a_malformed_s3_input_fails_at_once() -> None:
    with pytest.raises(S3InputError, match="not a valid bucket name"):
        expand_s3_input("s3://x/photos/")
    with pytest.raises(S3InputError, match="not an s3:// URI"):
        expand_s3_input("s3:photos/")


def test_a_prefix_lists_every_object_at_any_depth_but_folder_markers(s3: Any) -> None:
    put(
        s3,
        "photos/a.jpg",
        "photos/b.JPEG",
        "photos/2024/c.png",
        "photos/2024/deep/d.PNG",
        "photos/notes.txt",
        "photos/anim.gif",
        "photos/jpg",
        "photos/folder.jpg/",
        "photosx/e.jpg",
        "other/f.jpg",
    )

    images = list(manager().hook.policy_engine_expand_input(spec=f"s3://{BUCKET}/photos/"))

    # any name: an upload is never skipped for its suffix (Rekognition refuses
    # what it cannot read, and the policy's on_error decides it)
    assert names(images) == [
        f"s3://{BUCKET}/photos/2024/c.png",
        f"s3://{BUCKET}/photos/2024/deep/d.PNG",
        f"s3://{BUCKET}/photos/a.jpg",
        f"s3://{BUCKET}/photos/anim.gif",
        f"s3://{BUCKET}/photos/b.JPEG",
        f"s3://{BUCKET}/photos/jpg",
        f"s3://{BUCKET}/photos/notes.txt",
    ]
    head = s3.head_object(Bucket=BUCKET, Key="photos/a.jpg")
    first = images[2]
    assert (first.uri, first.data, first.size, first.version, first.sha256) == (
        f"s3://{BUCKET}/photos/a.jpg",
        None,
        head["ContentLength"],
        head["ETag"],
        None,
    )


def test_a_whole_bucket_and_awkward_keys(s3: Any) -> None:
    put(s3, "top.jpg", "my photos/café 1+1.jpg", "100% sure?.png")

    images = list(expand_s3_input(f"s3://{BUCKET}") or ())

    assert names(images) == [
        f"s3://{BUCKET}/100%25%20sure%3F.png",
        f"s3://{BUCKET}/my%20photos/café%201+1.jpg",
        f"s3://{BUCKET}/top.jpg",
    ]
    # Each name is an input in its own right: it lists exactly that object.
    for image in images:
        assert names(expand_s3_input(image.name) or ()) == [image.name]


def test_an_exact_key_is_kept_whatever_its_suffix(s3: Any) -> None:
    put(s3, "raw/upload-17", "raw/upload-17.bak.jpg", "raw/upload-170.jpg")

    assert names(expand_s3_input(f"s3://{BUCKET}/raw/upload-17") or ()) == [
        f"s3://{BUCKET}/raw/upload-17"
    ]


def test_a_key_without_slash_is_also_a_folder_but_never_a_sibling_prefix(s3: Any) -> None:
    put(s3, "photos/a.jpg", "photos/b.txt", "photos2024/c.jpg")

    assert names(expand_s3_input(f"s3://{BUCKET}/photos") or ()) == [
        f"s3://{BUCKET}/photos/a.jpg",
        f"s3://{BUCKET}/photos/b.txt",
    ]


def test_an_exact_key_that_does_not_exist_is_an_error(s3: Any) -> None:
    put(s3, "photos/a.jpg")

    missing = re.escape(f"no object s3://{BUCKET}/photos/missing.jpg")
    with pytest.raises(S3InputError, match=missing):
        list(expand_s3_input(f"s3://{BUCKET}/photos/missing.jpg") or ())


def test_an_empty_prefix_yields_nothing(s3: Any) -> None:
    assert list(expand_s3_input(f"s3://{BUCKET}/empty/") or ()) == []


def test_a_versioned_object_yields_that_version(s3: Any) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=BUCKET, Key="v/cat.jpg", Body=b"\xff\xd8\xff old, longer")
    s3.put_object(Bucket=BUCKET, Key="v/cat.jpg", Body=b"\xff\xd8\xff new")
    version = old["VersionId"]

    (image,) = expand_s3_input(f"s3://{BUCKET}/v/cat.jpg?versionId={version}") or ()

    assert image.uri == image.name == f"s3://{BUCKET}/v/cat.jpg?versionId={version}"
    assert image.size == len(b"\xff\xd8\xff old, longer")
    assert image.version == old["ETag"]
    (current,) = expand_s3_input(f"s3://{BUCKET}/v/cat.jpg") or ()
    assert current.size == len(b"\xff\xd8\xff new")
    assert current.key != image.key  # recordings and de-duplication tell them apart


def test_a_missing_version_is_an_error(s3: Any) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    put(s3, "v/cat.jpg")

    with pytest.raises(S3InputError, match="no such object"):
        list(expand_s3_input(f"s3://{BUCKET}/v/cat.jpg?versionId=nosuchversion") or ())


def test_a_missing_bucket_is_a_clear_error(s3: Any) -> None:
    images = expand_s3_input("s3://no-such-bucket-here/photos/")
    assert images is not None  # nothing is called before iterating

    with pytest.raises(S3InputError) as raised:
        list(images)

    assert "S3 bucket 'no-such-bucket-here' does not exist (NoSuchBucket" in str(raised.value)


# --- pagination: 1,001 keys, lazily ----------------------------------------------------


def test_more_than_1000_keys_are_paginated(s3: Any) -> None:
    keys = [f"many/{index:04}.jpg" for index in range(1001)]
    put(s3, *keys, body=b"x")
    pages: list[int] = []
    s3.meta.events.register(
        "after-call.s3.ListObjectsV2",
        lambda parsed, **_: pages.append(len(parsed.get("Contents", []))),
    )

    images = list(expand_s3_input(f"s3://{BUCKET}/many/", client=s3) or ())

    assert names(images) == [f"s3://{BUCKET}/{key}" for key in keys]
    assert pages == [1000, 1]


def test_listing_is_lazy_one_page_at_a_time(s3: Any) -> None:
    put(s3, *(f"lazy/{index:02}.png" for index in range(25)), body=b"x")
    pages: list[int] = []
    s3.meta.events.register(
        "after-call.s3.ListObjectsV2",
        lambda parsed, **_: pages.append(len(parsed.get("Contents", []))),
    )

    images = expand_s3_input(f"s3://{BUCKET}/lazy/", client=s3, page_size=10)
    assert images is not None
    assert pages == []  # nothing listed yet

    first = list(itertools.islice(images, 10))
    assert len(first) == 10 and pages == [10]
    next(images)
    assert pages == [10, 10]
    assert len(list(images)) == 14 and pages == [10, 10, 5]


# --- the client and its errors ------------------------------------------------------------


def test_s3_client_comes_from_the_standard_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    client = build_s3_client()
    assert client.meta.region_name == "eu-west-3"
    assert client.meta.endpoint_url == "http://127.0.0.1:9"


def test_access_denied_names_the_permission() -> None:
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "list_objects_v2", service_error_code="AccessDenied", http_status_code=403
        )
        with pytest.raises(S3InputError) as raised:
            list(expand_s3_input("s3://private-bucket/photos/", client=client) or ())
        stubber.add_client_error("head_object", service_error_code="403", http_status_code=403)
        with pytest.raises(S3InputError) as head:
            list(expand_s3_input("s3://private-bucket/a.jpg?versionId=1", client=client) or ())

    assert "access denied listing s3://private-bucket/photos/ (AccessDenied" in str(raised.value)
    assert "s3:ListBucket on arn:aws:s3:::private-bucket" in str(raised.value)
    assert "s3:GetObject" in str(head.value)


def test_no_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    with pytest.raises(S3InputError, match="no AWS credentials for listing s3://photos-b/x/"):
        list(expand_s3_input("s3://photos-b/x/") or ())


def test_a_listing_error_becomes_that_inputs_problem_in_check(s3: Any) -> None:
    put(s3, "ok/a.jpg")
    hook = manager().hook

    items = list(
        expand_inputs(
            ["s3://no-such-bucket-here/x/", f"s3://{BUCKET}/ok/"],
            lambda spec: hook.policy_engine_expand_input(spec=spec),
        )
    )

    assert [(item.name, item.problem is None) for item in items] == [
        ("s3://no-such-bucket-here/x/", False),
        (f"s3://{BUCKET}/ok/a.jpg", True),
    ]
    assert items[0].problem is not None and "does not exist" in items[0].problem


# --- end to end: moto lists, FakeRekognition answers --------------------------------------

POLICY = """
version: 1
name: s3-uploads
detectors:
  rekognition-moderation:
    endpoint_url: {endpoint_url}
    retry_mode: standard
    max_attempts: 1
rules:
  - {{id: graphic-violence, match: {{parent: Graphic Violence}}, block_at: 90}}
"""
VIOLENT = {
    "ModerationModelVersion": "7.0",
    "ModerationLabels": [
        {"Name": "Weapon Violence", "ParentName": "Graphic Violence", "Confidence": 97.3},
        {"Name": "Graphic Violence", "ParentName": "Violence", "Confidence": 97.3},
        {"Name": "Violence", "ParentName": "", "Confidence": 97.3},
    ],
}


def test_check_lists_s3_and_sends_each_object_as_s3_object(s3: Any, fake: FakeRekognition) -> None:
    put(s3, "uploads/ok.jpg", "uploads/knife 1+1.png", "uploads/readme.md", "uploads/sub/é.jpg")
    fake.respond(f"s3://{BUCKET}/uploads/knife 1+1.png", VIOLENT)
    fake.fail(f"s3://{BUCKET}/uploads/readme.md", "InvalidImageFormatException")  # as AWS would
    plugins = manager()
    registry = DetectorRegistry.from_plugin_manager(plugins)
    policy = parse_policy(POLICY.format(endpoint_url=fake.endpoint_url), registry=registry)
    engine = Engine(policy, registry, concurrency=4)

    items = expand_inputs(
        [f"s3://{BUCKET}/uploads/"], lambda spec: plugins.hook.policy_engine_expand_input(spec=spec)
    )
    results = {result.input: result for result in check_many(engine, items, concurrency=4)}

    assert {
        name: result.decision and result.decision.verdict.value for name, result in results.items()
    } == {
        f"s3://{BUCKET}/uploads/knife%201+1.png": "block",
        f"s3://{BUCKET}/uploads/ok.jpg": "allow",
        # not skipped for its name: sent, refused by Rekognition, decided by on_error
        f"s3://{BUCKET}/uploads/readme.md": "review",
        f"s3://{BUCKET}/uploads/sub/é.jpg": "allow",
    }
    assert all(result.error is None and result.sha256 is None for result in results.values())
    assert sorted(call.request["Image"]["S3Object"]["Name"] for call in fake.calls) == [
        "uploads/knife 1+1.png",
        "uploads/ok.jpg",
        "uploads/readme.md",
        "uploads/sub/é.jpg",
    ]
    assert {call.request["Image"]["S3Object"]["Bucket"] for call in fake.calls} == {BUCKET}


def test_listed_images_are_plain_images(s3: Any) -> None:
    put(s3, "one.jpg")
    (image,) = expand_s3_input(f"s3://{BUCKET}/one.jpg") or ()
    assert isinstance(image, Image) and image.data is None
