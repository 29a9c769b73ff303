"""Helpers for the Lambda tests (importable: conftest.py puts this folder on sys.path)."""

from __future__ import annotations

import copy
import datetime
import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent / "events"
BUCKET = "amzn-s3-demo-bucket"
QUARANTINE = "amzn-s3-demo-quarantine"
# Just enough magic bytes for a JPEG; FakeRekognition is told what S3 objects contain.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 90

VIOLENT = {
    "ModerationModelVersion": "7.0",
    "ModerationLabels": [
        {"Name": "Weapon Violence", "ParentName": "Graphic Violence", "Confidence": 97.3},
        {"Name": "Graphic Violence", "ParentName": "Violence", "Confidence": 97.3},
        {"Name": "Violence", "ParentName": "", "Confidence": 97.3},
    ],
}
"""Blocked by policies/general-ugc.yaml (rule graphic-violence)."""
VIOLENCE_ONLY = {
    "ModerationModelVersion": "7.0",
    "ModerationLabels": [{"Name": "Violence", "ParentName": "", "Confidence": 95.0}],
}
"""Reviewed by policies/general-ugc.yaml (rule violence-top-level)."""


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return copy.deepcopy(event)


def s3_event(
    key_encoded: str, version: str | None, size: int = len(JPEG), *, age: float = 0.0
) -> dict[str, Any]:
    """The S3 notification fixture, for this (URL-encoded) key and version,
    made ``age`` seconds ago."""
    event = load_event("s3-object-created.json")
    made = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=age)
    event["Records"][0]["eventTime"] = made.isoformat(timespec="milliseconds")
    obj = event["Records"][0]["s3"]["object"]
    obj["key"] = key_encoded
    obj["size"] = size
    if version is None:
        del obj["versionId"]
    else:
        obj["versionId"] = version
    return event


def destination_record(event: dict[str, Any]) -> dict[str, Any]:
    """What Lambda sends to the on-failure destination once an asynchronous
    invocation has exhausted its retries (the documented record)."""
    return {
        "version": "1.0",
        "timestamp": "2024-05-02T10:18:42.123Z",
        "requestContext": {
            "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:stack-moderator:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {
            "errorMessage": "1 object(s) to retry",
            "errorType": "RetryableFailure",
        },
    }


def batch_event(schema: str, *tasks: tuple[str, str | None]) -> dict[str, Any]:
    """A Batch Operations fixture whose tasks are ``(encoded key, version)`` pairs."""
    event = load_event(f"s3-batch-{schema}.json")
    template = event["tasks"][0]
    event["tasks"] = []
    for index, (key, version) in enumerate(tasks):
        task = dict(template, taskId=f"task-{index}", s3Key=key, s3VersionId=version)
        event["tasks"].append(task)
    return event


def tags_of(s3: Any, key: str, version: str | None = None, bucket: str = BUCKET) -> dict[str, str]:
    extra = {"VersionId": version} if version else {}
    answer = s3.get_object_tagging(Bucket=bucket, Key=key, **extra)
    return {tag["Key"]: tag["Value"] for tag in answer["TagSet"]}


def versions_of(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    answer = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return [v for v in answer.get("Versions", []) if v["Key"] == key]


def read_json(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    record: dict[str, Any] = json.loads(body)
    return record


def client_error(code: str, operation: str, status: int = 400) -> Exception:
    """What botocore raises for an S3 error answer."""
    from botocore.exceptions import ClientError

    return ClientError(
        {
            "Error": {"Code": code, "Message": f"scripted {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


class Crash(BaseException):
    """The container dies (a timeout, out of memory): nothing of the function's
    own handling runs after it."""


MAX_KEY_BYTES = 1024
"""S3's limit on a key (UTF-8 bytes), which moto does not enforce."""


class ScriptedS3:
    """moto's client with scripted faults, for what moto cannot do on its own.

    ``before[method]`` runs (once) with the call's arguments before the call,
    ``after[method]`` (once) after it; ``faults[method]`` is a list of
    exceptions raised, one per call, instead of the call. A request naming a
    ``Key`` longer than S3's 1,024 UTF-8 bytes fails with ``KeyTooLongError``,
    as S3 answers it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.before: dict[str, Any] = {}
        self.after: dict[str, Any] = {}
        self.faults: dict[str, list[BaseException]] = {}
        self.called: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if not callable(attribute):
            return attribute

        def call(**kwargs: Any) -> Any:
            self.called.append(name)
            hook = self.before.pop(name, None)
            if hook is not None:
                hook(kwargs)
            faults = self.faults.get(name)
            if faults:
                raise faults.pop(0)
            key = kwargs.get("Key")
            if isinstance(key, str) and len(key.encode("utf-8")) > MAX_KEY_BYTES:
                raise client_error("KeyTooLongError", name)
            answer = attribute(**kwargs)
            hook = self.after.pop(name, None)
            if hook is not None:
                hook(kwargs)
            return answer

        return call


SET_POLICY = """version: 1
name: {name}
on_error: {on_error}
detectors:
  rekognition-moderation: {{}}
rules:
  - id: violence
    match: {{name: Violence}}
    review_at: 50
    block_at: {block_at}
"""
COMMUNITY_SET = """version: 1
kind: policy-set
name: community
context:
  surface:
    values: [feed, profile, chat, marketplace]
  audience:
    values: [adult, teen]
    default: adult
routes:
  - when: {audience: teen}
    policy: teen.yaml
  - when: {surface: [profile, chat]}
    policy: lenient.yaml
  - policy: general.yaml
"""
"""Route 0, teen: on_error block, Violence blocked from 60. Route 1, lenient
(profile and chat): on_error allow, Violence blocked only from 99 (VIOLENT's
97.3 is reviewed). Route 2, general: Violence blocked from 90."""


def write_community_set(folder: Path, general_on_error: str = "review") -> Path:
    """COMMUNITY_SET and its three policies in ``folder``; the set's path."""
    for name, on_error, block_at in (
        ("teen", "block", 60),
        ("lenient", "allow", 99),
        ("general", general_on_error, 90),
    ):
        text = SET_POLICY.format(name=name, on_error=on_error, block_at=block_at)
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    path = folder / "community.set.yaml"
    path.write_text(COMMUNITY_SET, encoding="utf-8")
    return path
