"""Helpers for the Lambda tests (importable: conftest.py puts this folder on sys.path)."""

from __future__ import annotations

import copy
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


def s3_event(key_encoded: str, version: str | None, size: int = len(JPEG)) -> dict[str, Any]:
    """The S3 notification fixture, for this (URL-encoded) key and version."""
    event = load_event("s3-object-created.json")
    obj = event["Records"][0]["s3"]["object"]
    obj["key"] = key_encoded
    obj["size"] = size
    if version is None:
        del obj["versionId"]
    else:
        obj["versionId"] = version
    return event


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
