"""The two invocations the function answers, parsed into the objects they name.

* An S3 event notification: ``Records[].s3.bucket.name`` and
  ``.object.key`` (URL-encoded, spaces as ``+``), ``.object.versionId``,
  ``.size``, ``.eTag``. Only ``ObjectCreated:*`` records are moderated.
* An on-failure destination record of one of those notifications (a message
  of the failed-events queue, fed back as it is): its ``requestPayload``.
* An S3 Batch Operations ``LambdaInvoke`` task list: invocation schema 1.0
  (``tasks[].s3BucketArn``) or 2.0 (``tasks[].s3Bucket``, ``job.userArguments``);
  keys URL-encoded as in S3 events.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from policy_engine_rekognition.s3_inputs import S3Location

BATCH_SCHEMAS = ("1.0", "2.0")


class InvocationError(ValueError):
    """An event that is neither an S3 notification nor a Batch Operations task list."""


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One object version to moderate; ``size`` and ``etag`` are what the event
    said (the object is read again before it is decided)."""

    bucket: str
    key: str
    version_id: str | None = None
    size: int | None = None
    etag: str | None = None

    @property
    def location(self) -> S3Location:
        return S3Location(self.bucket, self.key, self.version_id)

    @property
    def uri(self) -> str:
        """``s3://bucket/key[?versionId=V]``, as ``policy-engine check`` takes it."""
        return self.location.uri


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One record of an S3 notification: the object, or why it is skipped."""

    ref: ObjectRef | None
    event_name: str
    skipped: str | None = None
    event_time: datetime.datetime | None = None
    """When S3 made the event (``eventTime``); None if it has none we can read."""

    def age(self, now: datetime.datetime) -> float | None:
        """Seconds since the event was made, or None if its time is unknown."""
        if self.event_time is None:
            return None
        return (now - self.event_time).total_seconds()


@dataclass(frozen=True, slots=True)
class BatchTask:
    task_id: str
    ref: ObjectRef | None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class BatchInvocation:
    schema: str
    invocation_id: str
    job_id: str | None
    tasks: tuple[BatchTask, ...]
    user_arguments: Mapping[str, Any] = field(default_factory=dict)


def strip_etag(etag: object) -> str | None:
    """An ETag without the quotes S3's API puts around it (events have none)."""
    return etag.strip('"') if isinstance(etag, str) and etag else None


def is_batch_invocation(event: Mapping[str, Any]) -> bool:
    return "invocationSchemaVersion" in event and "tasks" in event


def is_s3_notification(event: Mapping[str, Any]) -> bool:
    return isinstance(event.get("Records"), list)


def is_failure_record(event: Mapping[str, Any]) -> bool:
    """An on-failure destination record: what Lambda sends to the function's
    failed-events queue once an asynchronous invocation has exhausted its
    retries or expired (``requestPayload`` is the event it failed on)."""
    return "requestPayload" in event and isinstance(event.get("requestContext"), Mapping)


def failed_notification(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The S3 notification an on-failure destination record carries."""
    payload = event.get("requestPayload")
    if not isinstance(payload, Mapping) or not is_s3_notification(payload):
        raise InvocationError(
            "the failed-event record's requestPayload is not an S3 notification (Records)"
        )
    return payload


def parse_s3_notification(event: Mapping[str, Any]) -> list[EventRecord]:
    records: list[EventRecord] = []
    for index, record in enumerate(event.get("Records") or ()):
        if not isinstance(record, Mapping):
            raise InvocationError(f"Records[{index}] is not an object")
        name = str(record.get("eventName", ""))
        if record.get("eventSource") != "aws:s3":
            # skipping it would leave its object unmoderated with a log line only:
            # failing sends the event to the function's on-failure destination
            raise InvocationError(
                f"Records[{index}] comes from {record.get('eventSource')!r}, not aws:s3: "
                "the function takes S3 notifications, S3 Batch Operations tasks and its "
                "own failed events (on-failure destination records), not this"
            )
        if not name.startswith("ObjectCreated:"):
            records.append(EventRecord(None, name, f"{name} is not an ObjectCreated event"))
            continue
        try:
            s3 = record["s3"]
            bucket = s3["bucket"]["name"]
            obj = s3["object"]
            key = unquote_plus(obj["key"], encoding="utf-8")
        except (KeyError, TypeError) as exc:
            raise InvocationError(
                f"Records[{index}] lacks s3.bucket.name or s3.object.key"
            ) from exc
        size = obj.get("size")
        ref = ObjectRef(
            bucket=str(bucket),
            key=key,
            version_id=obj.get("versionId") or None,
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            etag=strip_etag(obj.get("eTag")),
        )
        records.append(EventRecord(ref, name, event_time=_event_time(record.get("eventTime"))))
    return records


def _event_time(value: object) -> datetime.datetime | None:
    """``eventTime`` (ISO 8601, UTC: ``2024-05-02T10:15:42.123Z``), made aware."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


def _bucket_from_arn(arn: object) -> str | None:
    if not isinstance(arn, str):
        return None
    prefix, _, bucket = arn.rpartition(":::")
    return bucket if prefix.startswith("arn:") and bucket and "/" not in bucket else None


def parse_batch_invocation(event: Mapping[str, Any]) -> BatchInvocation:
    schema = str(event.get("invocationSchemaVersion"))
    if schema not in BATCH_SCHEMAS:
        raise InvocationError(
            f"invocationSchemaVersion {schema!r} is not supported (supported: 1.0, 2.0)"
        )
    job = event.get("job") if isinstance(event.get("job"), Mapping) else {}
    assert isinstance(job, Mapping)
    arguments = job.get("userArguments") if schema == "2.0" else None
    if arguments is not None and not isinstance(arguments, Mapping):
        raise InvocationError("job.userArguments must be an object")
    tasks: list[BatchTask] = []
    for index, task in enumerate(event.get("tasks") or ()):
        if not isinstance(task, Mapping) or not isinstance(task.get("taskId"), str):
            raise InvocationError(f"tasks[{index}] has no taskId")
        task_id = task["taskId"]
        bucket = (
            task.get("s3Bucket") if schema == "2.0" else _bucket_from_arn(task.get("s3BucketArn"))
        )
        key = task.get("s3Key")
        if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
            field_name = "s3Bucket" if schema == "2.0" else "s3BucketArn"
            tasks.append(BatchTask(task_id, None, f"the task has no valid {field_name} and s3Key"))
            continue
        version = task.get("s3VersionId")
        ref = ObjectRef(
            bucket=bucket,
            key=unquote_plus(key, encoding="utf-8"),
            version_id=version if isinstance(version, str) and version else None,
        )
        tasks.append(BatchTask(task_id, ref))
    return BatchInvocation(
        schema=schema,
        invocation_id=str(event.get("invocationId", "")),
        job_id=job.get("id") if isinstance(job.get("id"), str) else None,
        tasks=tuple(tasks),
        user_arguments=dict(arguments or {}),
    )
