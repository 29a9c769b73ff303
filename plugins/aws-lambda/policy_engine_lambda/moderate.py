"""Deciding one S3 object version in place and applying the configured actions.

Idempotent under Lambda's and Batch Operations' retries:

1. The object is decided once per version and policy: an object that already
   carries ``moderation-policy-digest`` equal to the current policy's digest
   (and a ``moderation-decision``) reuses that decision, with no Rekognition
   call.
2. The actions run in an order where the tags are the commit mark: the
   decision record first, then the tags, then the quarantine copy, then the
   deletion. A retry after any crash finds the tags (or not), and re-applies
   only what is missing: the copy is made only if no copy with the same ETag
   exists, the original is deleted only once its copy exists, the tags are
   merged with the object's own.
3. A detector failure that may succeed later (throttling, a timeout) takes no
   action at all, so that the retry decides afresh; one that will not (a bad
   image) is decided by the policy's ``on_error``, as always, and its actions
   run: a failed detector never yields ``allow`` unless the policy says so.
"""

from __future__ import annotations

import datetime
import enum
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from policy_engine.decision import Decision
from policy_engine.image import Image
from policy_engine.model import Verdict
from policy_engine.moderator import Moderator
from policy_engine_lambda.config import RECORD_SUFFIX, ActionConfig, RecordingsLocation
from policy_engine_lambda.events import ObjectRef, strip_etag

LOG = logging.getLogger("policy_engine_lambda")

DECISION_TAG = "moderation-decision"
DIGEST_TAG = "moderation-policy-digest"
MAX_TAGS = 10
"""S3's limit on tags per object."""
RECORD_FORMAT = "policy-engine-lambda-record/1"

_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
_TEMPORARY = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "OperationAborted",
    }
)


class Status(enum.Enum):
    """An object's outcome, named as S3 Batch Operations' result codes."""

    SUCCEEDED = "Succeeded"
    TEMPORARY_FAILURE = "TemporaryFailure"
    PERMANENT_FAILURE = "PermanentFailure"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one object: its status, a one-line message (the Batch
    Operations ``resultString``), the decision (``allow``...) if one was made or
    reused, and the actions taken this time."""

    ref: ObjectRef
    status: Status
    message: str
    decision: str | None = None
    reused: bool = False
    actions: tuple[str, ...] = ()

    def to_log(self) -> dict[str, Any]:
        return {
            "object": self.ref.uri,
            "status": self.status.value,
            "decision": self.decision,
            "reused": self.reused,
            "actions": list(self.actions),
            "message": self.message,
        }


class ObjectGone(Exception):
    """The object (version) does not exist."""


def _error_code(exc: BaseException) -> tuple[str | None, int | None]:
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return None, None
    code = response.get("Error", {}).get("Code")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return (str(code) if code is not None else None), (status if isinstance(status, int) else None)


def is_missing(exc: BaseException) -> bool:
    code, status = _error_code(exc)
    return code in _MISSING or (code is None and status == 404)


def classify(exc: BaseException) -> Status:
    """Whether an S3 (or other AWS SDK) failure may succeed if retried."""
    from botocore import exceptions as aws

    if isinstance(exc, aws.ClientError):
        code, status = _error_code(exc)
        if code in _TEMPORARY or (status is not None and status >= 500):
            return Status.TEMPORARY_FAILURE
        return Status.PERMANENT_FAILURE
    if isinstance(
        exc,
        aws.ConnectionError | aws.HTTPClientError | aws.ReadTimeoutError | aws.ConnectTimeoutError,
    ):
        return Status.TEMPORARY_FAILURE
    return Status.PERMANENT_FAILURE


def describe(exc: BaseException) -> str:
    code, _ = _error_code(exc)
    text = str(exc) or type(exc).__name__
    return f"{code}: {text}" if code and code not in text else text


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class _Found:
    """The object as S3 has it now."""

    version_id: str | None
    etag: str | None
    size: int | None
    tags: dict[str, str]
    etag_header: str | None = None
    """The ETag as S3's API returns it (quoted), as ``policy-engine check`` keys images."""


class ObjectModerator:
    """Decides objects with ``moderator`` and acts on the decisions through ``s3``
    (a boto3 S3 client), as ``config`` says. One per container; thread-safe
    as far as the engine and the client are."""

    def __init__(
        self,
        moderator: Moderator,
        s3: Any,
        config: ActionConfig,
        *,
        clock: Callable[[], str] = _now,
        recordings: RecordingsLocation | None = None,
    ) -> None:
        self.moderator = moderator
        self.s3 = s3
        self.config = config
        self.clock = clock
        self.recordings = recordings
        self.digest = moderator.policy_digest

    # --- where things go ---------------------------------------------------------------

    def skip_reason(self, ref: ObjectRef) -> str | None:
        """Why ``ref`` is one of the function's own outputs and is not moderated."""
        config = self.config
        if ref.key.endswith(RECORD_SUFFIX):
            return "a decision record"
        if self.recordings is not None and self.recordings.holds(ref.bucket, ref.key):
            return "a recording of detector responses"
        if (
            config.quarantine_on
            and config.quarantine_bucket in (None, ref.bucket)
            and config.quarantine_prefix
            and ref.key.startswith(config.quarantine_prefix)
        ):
            return "a quarantined copy"
        if (
            config.records == "prefix"
            and config.results_bucket in (None, ref.bucket)
            and config.results_prefix
            and ref.key.startswith(config.results_prefix)
        ):
            return "under the results prefix"
        return None

    def quarantine_location(self, ref: ObjectRef) -> tuple[str, str]:
        return (
            self.config.quarantine_bucket or ref.bucket,
            self.config.quarantine_prefix + ref.key,
        )

    def record_location(self, ref: ObjectRef) -> tuple[str, str] | None:
        config = self.config
        if config.records == "beside":
            return ref.bucket, ref.key + RECORD_SUFFIX
        if config.records == "prefix":
            return (
                config.results_bucket or ref.bucket,
                config.results_prefix + ref.key + RECORD_SUFFIX,
            )
        return None

    # --- S3 ---------------------------------------------------------------------------

    def _version_args(self, version_id: str | None) -> dict[str, str]:
        return {"VersionId": version_id} if version_id is not None else {}

    def _find(self, ref: ObjectRef) -> _Found:
        try:
            head = self.s3.head_object(
                Bucket=ref.bucket, Key=ref.key, **self._version_args(ref.version_id)
            )
        except Exception as exc:
            if is_missing(exc):
                raise ObjectGone(f"no such object {ref.uri}") from exc
            raise
        # pin the version now read, so that every later step acts on this one
        version = ref.version_id or head.get("VersionId")
        if version == "null":
            version = None
        size = head.get("ContentLength")
        answer = self.s3.get_object_tagging(
            Bucket=ref.bucket, Key=ref.key, **self._version_args(version)
        )
        tags = {tag["Key"]: tag["Value"] for tag in answer.get("TagSet", ())}
        etag = head.get("ETag")
        return _Found(
            version,
            strip_etag(etag),
            size if isinstance(size, int) else None,
            tags,
            etag if isinstance(etag, str) and etag else None,
        )

    def _exists_with_etag(self, bucket: str, key: str, etag: str | None) -> bool:
        try:
            head = self.s3.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if is_missing(exc):
                return False
            raise
        return etag is None or strip_etag(head.get("ETag")) == etag

    def _exists(self, bucket: str, key: str) -> bool:
        return self._exists_with_etag(bucket, key, None)

    # --- the decision -----------------------------------------------------------------

    def moderate(self, ref: ObjectRef) -> Outcome:
        """Decide ``ref`` (or reuse its decision) and apply the actions; never
        raises: every failure is an :class:`Outcome` with its status."""
        skipped = self.skip_reason(ref)
        if skipped is not None:
            return Outcome(ref, Status.SUCCEEDED, f"skipped: {skipped}")
        try:
            return self._moderate(ref)
        except ObjectGone as exc:
            return self._gone(ref, str(exc))
        except Exception as exc:
            status = classify(exc)
            LOG.warning("moderating %s failed (%s): %s", ref.uri, status.value, describe(exc))
            return Outcome(ref, status, f"failed: {describe(exc)}")

    def _gone(self, ref: ObjectRef, message: str) -> Outcome:
        """A missing object is a permanent failure, unless this function itself
        quarantined and deleted it on an earlier attempt."""
        if self.config.delete_original and self.config.quarantine_on:
            bucket, key = self.quarantine_location(ref)
            try:
                if self._exists(bucket, key):
                    return Outcome(
                        ref,
                        Status.SUCCEEDED,
                        f"already quarantined to s3://{bucket}/{key} and deleted",
                        reused=True,
                    )
            except Exception as exc:
                LOG.warning("cannot look for the quarantined copy of %s: %s", ref.uri, exc)
        return Outcome(ref, Status.PERMANENT_FAILURE, message)

    def _moderate(self, ref: ObjectRef) -> Outcome:
        found = self._find(ref)
        pinned = ObjectRef(ref.bucket, ref.key, found.version_id, found.size, found.etag)
        verdict = self._reusable(found.tags)
        decision: Decision | None = None
        failure: str | None = None
        if verdict is None:
            # checked in place: the image key (recordings, cache) digests the URI
            # s3://bucket/key?versionId=V and the ETag, so it is the same for every
            # check of this object version, whichever event names it, and the same
            # as `policy-engine check 's3://bucket/key?versionId=V'` gives it
            image = Image(
                name=pinned.uri, uri=pinned.uri, size=found.size, version=found.etag_header
            )
            # through the Moderator: the decision hooks (audit log, shadow) see it
            context = {"bucket": pinned.bucket, "key": pinned.key, "version_id": pinned.version_id}
            decision = self.moderator.check(image, context=context)
            retryable = [f for f in decision.failures if f.retryable]
            if retryable:
                codes = ", ".join(sorted({f.code for f in retryable}))
                message = f"retryable detector failure ({codes}): {retryable[0].error}"
                return Outcome(pinned, Status.TEMPORARY_FAILURE, message)
            if decision.failures:
                codes = ", ".join(sorted({f.code for f in decision.failures}))
                failure = f"detector failure ({codes}): {decision.failures[0].error}"
            verdict = decision.decision
        actions = self._act(pinned, found, verdict, decision)
        reused = decision is None
        head = f"{verdict.value} ({'reused, ' if reused else ''}policy {self.digest[:19]})"
        done = "; ".join(actions) if actions else "nothing to do"
        if failure is not None:
            return Outcome(
                pinned,
                Status.PERMANENT_FAILURE,
                f"{head}: {failure}; {done}",
                verdict.value,
                reused,
                tuple(actions),
            )
        return Outcome(
            pinned, Status.SUCCEEDED, f"{head}: {done}", verdict.value, reused, tuple(actions)
        )

    def _reusable(self, tags: Mapping[str, str]) -> Verdict | None:
        if tags.get(DIGEST_TAG) != self.digest:
            return None
        try:
            return Verdict(tags.get(DECISION_TAG, ""))
        except ValueError:
            return None

    # --- the actions, in their idempotent order ---------------------------------------

    def _act(
        self, ref: ObjectRef, found: _Found, verdict: Verdict, decision: Decision | None
    ) -> list[str]:
        actions: list[str] = []
        where = self.record_location(ref)
        if where is not None:
            bucket, key = where
            if decision is not None or not self._exists(bucket, key):
                self._write_record(bucket, key, ref, verdict, decision)
                actions.append(f"record s3://{bucket}/{key}")
        ours = {DECISION_TAG: verdict.value, DIGEST_TAG: self.digest}
        if self.config.tag and any(found.tags.get(k) != v for k, v in ours.items()):
            merged = {**found.tags, **ours}
            if len(merged) > MAX_TAGS:
                raise ValueError(
                    f"{ref.uri} has {len(found.tags)} tags: S3 allows {MAX_TAGS}, so "
                    f"{DECISION_TAG} and {DIGEST_TAG} cannot be added"
                )
            self.s3.put_object_tagging(
                Bucket=ref.bucket,
                Key=ref.key,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in merged.items()]},
                **self._version_args(ref.version_id),
            )
            actions.append("tagged")
        if verdict in self.config.quarantine_on:
            bucket, key = self.quarantine_location(ref)
            if not self._exists_with_etag(bucket, key, ref.etag):
                source = {
                    "Bucket": ref.bucket,
                    "Key": ref.key,
                    **self._version_args(ref.version_id),
                }
                self.s3.copy_object(
                    CopySource=source,
                    Bucket=bucket,
                    Key=key,
                    TaggingDirective="REPLACE",
                    Tagging=urlencode(ours),
                )
                actions.append(f"quarantined to s3://{bucket}/{key}")
            if self.config.delete_original:
                # only now: the copy exists (made above, or found with the same ETag)
                self.s3.delete_object(
                    Bucket=ref.bucket, Key=ref.key, **self._version_args(ref.version_id)
                )
                actions.append("original deleted")
        return actions

    def _write_record(
        self,
        bucket: str,
        key: str,
        ref: ObjectRef,
        verdict: Verdict,
        decision: Decision | None,
    ) -> None:
        record: dict[str, Any] = {
            "format": RECORD_FORMAT,
            "input": ref.uri,
            "bucket": ref.bucket,
            "key": ref.key,
            "version_id": ref.version_id,
            "etag": ref.etag,
            "size": ref.size,
            "decided_at": self.clock(),
        }
        if decision is not None:
            record.update(decision.to_dict())
        else:  # decided earlier (the tags say so), and that record was lost
            record.update(
                decision=verdict.value,
                policy={"name": self.moderator.policy_name, "digest": self.digest},
                reused=True,
                note="decided on an earlier attempt (the object's tags); its full record was lost",
            )
        self.s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(record, indent=1, sort_keys=True).encode("utf-8"),
            ContentType="application/json",
        )
