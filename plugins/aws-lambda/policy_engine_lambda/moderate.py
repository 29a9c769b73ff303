"""Deciding one S3 object and applying the configured actions.

Enforcement never depends on bookkeeping. For each object:

1. **Decide** it, or reuse the decision its tags carry (see *Retries*).
2. **Enforce**: the quarantine copy, then, only once the copy exists, the
   deletion of the original.
3. **Record**: the decision record, then the tags on the original.

Every step is attempted whatever happened to the ones before it, except the
deletion, which needs the copy. A step that fails makes the object's status a
failure (``TemporaryFailure`` when a retry may fix it, else
``PermanentFailure``), and the message says what was done and what was not. A
blocked object whose tags or record fail is still quarantined; one whose copy
fails is kept (never deleted without its copy) and still recorded and tagged
``block``, so that whatever reads the tags sees the decision.

**The tags.** S3 allows 10 tags per object. The moderation tags take
precedence: the object's own tags are kept beside them, in key order, as far
as they fit, and the ones that do not are named in the message and listed,
with their values, in the decision record (``tags_dropped``). The quarantined
copy carries the same tags as the original; a copy whose tags S3 refuses is
made without them (and that is said), so tags never keep an image out of
quarantine. Tags that cannot be read are none: the object is decided afresh
and enforced, and its tags are left alone (ours would replace tags never
seen), which is reported as a failed step.

**Retries.** The tags are written last, so they mark an object whose steps all
ran: an object that carries ``moderation-policy-digest`` equal to the current
policy's digest reuses its ``moderation-decision`` (no Rekognition call) and
only what the configuration asks and is missing is applied. A retry after a
crash at any earlier step decides again (from the recording, with recordings
on) and repeats only what is missing: the copy is made only if no copy with
the same ETag exists, the original is deleted only once its copy exists, and
an object already quarantined and deleted is a success, whose record is
written then if the crash lost it.

**Whose bytes.** A decision and its tags belong to the bytes decided:

* In a versioned bucket the object version is pinned (the event's
  ``versionId``, or the one HeadObject names). Rekognition reads that version
  in place; the tags, the copy and the deletion name it. The tags carry its
  version id (``moderation-version-id``), and a decision is reused only for
  the version they name: a copy into the bucket brings the tags of an object
  elsewhere, but gets a new version id.
* In an unversioned bucket (or for a ``null`` version) the content of a key
  can change at any moment, and S3 sets tags without a condition. The function
  reads the bytes itself (at most Rekognition's 15 MB for S3 objects) and
  decides those, sent as ``Bytes``. The tags name their SHA-256
  (``moderation-content-sha256``), and a decision is reused only for bytes
  with that SHA-256. Those bytes are what is put into quarantine. The original
  is deleted, and tagged, only while its ETag is still the one read
  (``If-Match``); if it changed while the tags were being set, the object
  fails as temporary, so that a retry decides what the key holds now.

**Policy sets.** Serving a set, each object is routed by the context its
metadata and key give (:mod:`policy_engine_lambda.context`); the dimension
values join the object's own keys in the context the decision hooks get, and
the record carries ``context``, ``route``, ``policy_set`` and
``context_sources``. The tags name the context (``moderation-context``), and a
decision is reused only in the context found now. An object whose context is
undetermined is decided with no detector call by ``on_error`` of every route
it could reach (:mod:`policy_engine_lambda.undetermined`), enforced, recorded
and audited like any decision, and reported as a ``PermanentFailure`` (a
retry would decide the same). Its decision is reused like any other: the same
bytes, metadata, key and settings give the same decision.

A detector failure that may succeed later (throttling, a timeout) takes no
action at all, so that the retry decides afresh, until the final attempt
(``final_attempt``: the event is older than ``FINAL_ATTEMPT_AFTER``, or was
re-driven from the failed-events queue), where it is decided like one that
will not (a bad image): by the policy's ``on_error``, and its actions run. Such
a decision is tagged ``moderation-provisional`` and never reused. A failed
detector never yields ``allow`` unless the policy says so.
"""

from __future__ import annotations

import base64
import datetime
import enum
import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from policy_engine import Decision, Image, Moderator, Verdict
from policy_engine.errors import InvalidDetectorResult
from policy_engine.policy_set import SetDecision
from policy_engine.recordings import RECORDING_FORMAT, recorded_responses
from policy_engine_lambda.config import (
    RECORD_SUFFIX,
    ActionConfig,
    RecordingsLocation,
    fitted_key,
)
from policy_engine_lambda.context import ContextSettings, ObjectContext, object_context
from policy_engine_lambda.events import ObjectRef, strip_etag
from policy_engine_lambda.undetermined import decide_undetermined
from policy_engine_rekognition.images import S3_MAX_BYTES

LOG = logging.getLogger("policy_engine_lambda")

DECISION_TAG = "moderation-decision"
DIGEST_TAG = "moderation-policy-digest"
CONTENT_TAG = "moderation-content-sha256"
"""The SHA-256 of the bytes decided, on objects of unversioned buckets."""
VERSION_TAG = "moderation-version-id"
"""The version id of the object version decided, on objects of versioned
buckets. A copy into the bucket (CopyObject, ``TaggingDirective=COPY``)
brings the tags of an object elsewhere, forged ones included, but gets a
version id nobody knows before it exists: tags are reused only when they
name the version they sit on."""
PROVISIONAL_TAG = "moderation-provisional"
"""On an object decided by the policy's ``on_error`` on its final attempt,
because a detector kept failing in a way a retry may fix (the codes, e.g.
``timeout``): such a decision is enforced but never reused, so the next event
or backfill asks the detectors again."""
CONTEXT_TAG = "moderation-context"
"""With a policy set, the context the object was decided in
(``surface=profile audience=adult``; see :meth:`ObjectContext.tag_value
<policy_engine_lambda.context.ObjectContext.tag_value>`): a decision is reused
only in the context the object's metadata and key give now, so that new
metadata (a copy in place) or new ``CONTEXT_PREFIXES`` decide it again."""
MODERATION_TAGS = frozenset(
    {DECISION_TAG, DIGEST_TAG, CONTENT_TAG, VERSION_TAG, PROVISIONAL_TAG, CONTEXT_TAG}
)
_TAG_VALUE = re.compile(r"[\w .:/=+\-@]{1,256}\Z")
"""What S3 takes as a tag value."""
_TAG_UNSAFE = re.compile(r"[^\w .:/=+\-@]")
QUARANTINED = frozenset({Verdict.REVIEW, Verdict.BLOCK})
"""The decisions a quarantined copy can carry (an allowed image is never quarantined)."""
MAX_TAGS = 10
"""S3's limit on tags per object."""
READ_LIMIT = S3_MAX_BYTES
"""The most the function reads of an object of an unversioned bucket: more is
too large for Rekognition anyway."""
RECORD_FORMAT = "policy-engine-lambda-record/1"
ORIGINAL_KEY_METADATA = "original-key"
"""The metadata (``x-amz-meta-original-key``) of a quarantined copy whose key
is a hash of the original's (too long for the quarantine prefix): the original
key, URL-encoded; ``original-key-base64`` when that would be too long."""
OWN_OUTPUT_LIMIT = 2 * 1024 * 1024
"""The most read of an object named like a record or a recording to tell
whether it is one: the function's are a few KB."""
MAX_METADATA_VALUE = 1536
"""S3 takes 2 KB of user metadata per object; room is left for the original's."""

_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
_PRECONDITION = frozenset({"PreconditionFailed", "412"})
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
        "ConditionalRequestConflict",
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
    unfinished: bool = False
    """Nothing could be decided, or a step the decision asks for failed."""
    quarantined: bool = False
    """A quarantined copy was made this time (not found made already)."""
    detector_errors: tuple[str, ...] = ()
    """The codes of the detector failures of this decision, one per failure."""

    @property
    def must_fail_invocation(self) -> bool:
        """Whether an S3 notification's invocation must fail for this object:
        a retry may help, or the object is undecided or its decision not fully
        applied, which must not end as a log line (Lambda retries the event,
        then sends it to the on-failure destination)."""
        return self.status is Status.TEMPORARY_FAILURE or self.unfinished

    def to_log(self) -> dict[str, Any]:
        return {
            "object": self.ref.uri,
            "status": self.status.value,
            "decision": self.decision,
            "reused": self.reused,
            "actions": list(self.actions),
            "message": self.message,
            "unfinished": self.unfinished,
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


class ObjectReplaced(Exception):
    """The object of an unversioned bucket was replaced while it was being
    tagged: a retry decides what the key holds now."""


def is_precondition_failure(exc: BaseException) -> bool:
    code, status = _error_code(exc)
    return code in _PRECONDITION or status == 412


def fit_tags(
    own: Mapping[str, str], ours: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The tags for an object: ``ours`` and the object's ``own`` tags, in key
    order, as far as S3's limit leaves room; and the own tags left out. An old
    moderation tag among ``own`` is replaced or removed, never kept."""
    others = sorted((k, v) for k, v in own.items() if k not in MODERATION_TAGS)
    room = max(MAX_TAGS - len(ours), 0)
    return {**dict(others[:room]), **ours}, dict(others[room:])


@dataclass(frozen=True, slots=True)
class _Found:
    """The object as it was read."""

    version_id: str | None
    """The version pinned; None in an unversioned bucket."""
    etag: str | None
    etag_header: str | None
    """The ETag as S3's API returns it (quoted), as ``policy-engine check`` keys images."""
    size: int | None
    tags: dict[str, str]
    """Its tags; empty when they could not be read (``tags_error``)."""
    data: bytes | None = field(default=None, repr=False)
    """The bytes read, in an unversioned bucket (None when over READ_LIMIT)."""
    sha256: str | None = None
    content_type: str | None = None
    tags_error: Exception | None = None
    """Why its tags could not be read: no decision is reused, and its tags are
    not rewritten (that would replace tags the function never saw)."""
    metadata: dict[str, str] = field(default_factory=dict)
    """Its user metadata, kept by a copy that needs metadata of its own (see
    :meth:`ObjectModerator._copy_metadata`), which must give it again."""
    headers: dict[str, str] = field(default_factory=dict)
    """Its content headers (:data:`CONTENT_HEADERS`), given again likewise."""


@dataclass(slots=True)
class _Steps:
    """What was done to one object, and what failed, in order."""

    ref: ObjectRef
    done: list[str] = field(default_factory=list)
    failed: list[tuple[Status, str]] = field(default_factory=list)
    copied: bool = False
    """A quarantined copy was made."""

    def fail(self, what: str, exc: BaseException) -> None:
        status = Status.TEMPORARY_FAILURE if isinstance(exc, ObjectReplaced) else classify(exc)
        self.failed.append((status, f"{what}: {describe(exc)}"))
        LOG.warning("%s: %s: %s (%s)", self.ref.uri, what, describe(exc), status.value)

    @property
    def status(self) -> Status:
        if any(status is Status.TEMPORARY_FAILURE for status, _ in self.failed):
            return Status.TEMPORARY_FAILURE
        return Status.PERMANENT_FAILURE if self.failed else Status.SUCCEEDED

    def summary(self) -> str:
        text = "; ".join(self.done) if self.done else "nothing to do"
        if self.failed:
            text += "; FAILED: " + "; ".join(message for _, message in self.failed)
        return text


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
        context: ContextSettings | None = None,
    ) -> None:
        self.moderator = moderator
        self.s3 = s3
        self.config = config
        self.clock = clock
        self.recordings = recordings
        self.context_settings = context if context is not None else ContextSettings()
        self.digest = moderator.policy_digest
        self.compiled_set = moderator.serving.engine.compiled_set
        """The policy set served, or None for a single policy (which has no context)."""

    # --- where things go ---------------------------------------------------------------

    def skip_reason(self, ref: ObjectRef) -> str | None:
        """Why ``ref`` is one of the function's own outputs and is not moderated:
        a decision record or a recording, known by its content (JSON in the
        function's format, which no image can be), never by its name alone, since
        anyone who may upload may use the name. A quarantined copy is known by
        its tags (see :meth:`in_quarantine`). Reads the object only when its name
        is one of those outputs'; raises :class:`ObjectGone` for a missing one."""
        if ref.key.endswith(RECORD_SUFFIX) and self._holds_json(ref, _is_record):
            return "a decision record"
        if (
            self.recordings is not None
            and self.recordings.holds(ref.bucket, ref.key)
            and self._holds_json(ref, _is_recording)
        ):
            return "a recording of detector responses"
        return None

    def _holds_json(self, ref: ObjectRef, check: Callable[[Any], bool]) -> bool:
        """Whether the object is a JSON document that passes ``check``. One that
        cannot be read, is larger than OWN_OUTPUT_LIMIT or is not JSON is not,
        and so is moderated: whatever cannot be proven the function's own is."""
        version = {} if ref.version_id in (None, "null") else {"VersionId": ref.version_id}
        try:
            answer = self.s3.get_object(Bucket=ref.bucket, Key=ref.key, **version)
            body = answer["Body"]
            try:
                data = body.read(OWN_OUTPUT_LIMIT + 1)
            finally:
                body.close()
        except Exception as exc:
            if is_missing(exc):
                raise ObjectGone(f"no such object {ref.uri}") from exc
            LOG.warning(
                "cannot read %s to tell whether it is the function's own: %s",
                ref.uri,
                describe(exc),
            )
            return False
        if len(data) > OWN_OUTPUT_LIMIT:
            return False
        try:
            return check(json.loads(data))
        except (ValueError, RecursionError):
            return False

    def in_quarantine(self, ref: ObjectRef) -> bool:
        """Whether ``ref`` is where quarantined copies go. Only an object there
        that carries the moderation tags is a copy (and skipped): anything else
        was uploaded there, and is moderated (but never copied again)."""
        config = self.config
        return bool(
            config.quarantine_on
            and config.quarantine_bucket in (None, ref.bucket)
            and config.quarantine_prefix
            and ref.key.startswith(config.quarantine_prefix)
        )

    def quarantine_location(self, ref: ObjectRef) -> tuple[str, str]:
        return (
            self.config.quarantine_bucket or ref.bucket,
            fitted_key(self.config.quarantine_prefix, ref.key),
        )

    def record_location(self, ref: ObjectRef) -> tuple[str, str] | None:
        config = self.config
        if config.records == "beside":
            return ref.bucket, fitted_key("", ref.key, RECORD_SUFFIX)
        if config.records == "prefix":
            return (
                config.results_bucket or ref.bucket,
                fitted_key(config.results_prefix, ref.key, RECORD_SUFFIX),
            )
        return None

    # --- S3 ---------------------------------------------------------------------------

    def _version_args(self, version_id: str | None) -> dict[str, str]:
        return {"VersionId": version_id} if version_id is not None else {}

    def _tags_of(self, bucket: str, key: str, version_id: str | None) -> dict[str, str]:
        try:
            answer = self.s3.get_object_tagging(
                Bucket=bucket, Key=key, **self._version_args(version_id)
            )
        except Exception as exc:
            if is_missing(exc):
                raise ObjectGone(f"no such object s3://{bucket}/{key}") from exc
            raise
        return {tag["Key"]: tag["Value"] for tag in answer.get("TagSet", ())}

    def _tags_if_readable(
        self, bucket: str, key: str, version_id: str | None
    ) -> tuple[dict[str, str], Exception | None]:
        """The object's tags, or none and why they could not be read. Tags are
        bookkeeping: an object whose tags cannot be read (no
        s3:GetObjectTagging, throttling) is still decided and enforced."""
        try:
            return self._tags_of(bucket, key, version_id), None
        except ObjectGone:
            raise
        except Exception as exc:
            LOG.warning("cannot read the tags of s3://%s/%s: %s", bucket, key, describe(exc))
            return {}, exc

    def _find(self, ref: ObjectRef) -> _Found:
        requested = None if ref.version_id == "null" else ref.version_id
        try:
            head = self.s3.head_object(
                Bucket=ref.bucket, Key=ref.key, **self._version_args(requested)
            )
        except Exception as exc:
            if is_missing(exc):
                raise ObjectGone(f"no such object {ref.uri}") from exc
            raise
        # pin the version now read, so that every later step acts on this one
        version = requested or head.get("VersionId")
        if version in (None, "null"):
            return self._read(ref)
        size = head.get("ContentLength")
        etag = head.get("ETag")
        tags, tags_error = self._tags_if_readable(ref.bucket, ref.key, version)
        return _Found(
            version,
            strip_etag(etag),
            etag if isinstance(etag, str) and etag else None,
            size if isinstance(size, int) else None,
            tags,
            tags_error=tags_error,
            metadata=_metadata(head),
            headers=_content_headers(head),
        )

    def _read(self, ref: ObjectRef) -> _Found:
        """An object of an unversioned bucket: its bytes and ETag from one GetObject
        (so they belong together), then its tags, which may already be a newer
        object's: they are reused only if they name these bytes' SHA-256."""
        try:
            answer = self.s3.get_object(Bucket=ref.bucket, Key=ref.key)
        except Exception as exc:
            if is_missing(exc):
                raise ObjectGone(f"no such object {ref.uri}") from exc
            raise
        body = answer["Body"]
        try:
            data: bytes | None = body.read(READ_LIMIT + 1)
        finally:
            body.close()
        size = answer.get("ContentLength")
        if data is not None and len(data) > READ_LIMIT:
            data = None  # too large for Rekognition: decided by its size alone
        else:
            size = len(data) if data is not None else size
        etag = answer.get("ETag")
        content_type = answer.get("ContentType")
        tags, tags_error = self._tags_if_readable(ref.bucket, ref.key, None)
        return _Found(
            None,
            strip_etag(etag),
            etag if isinstance(etag, str) and etag else None,
            size if isinstance(size, int) else None,
            tags,
            data,
            hashlib.sha256(data).hexdigest() if data is not None else None,
            content_type if isinstance(content_type, str) else None,
            tags_error,
            _metadata(answer),
            _content_headers(answer),
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

    def _copy_exists(self, bucket: str, key: str, etag: str | None) -> bool:
        """Whether the quarantined copy was made already: an object with this ETag
        that carries the moderation tags (anything else was not put there by the
        function, and is replaced by a real copy)."""
        if not self._exists_with_etag(bucket, key, etag):
            return False
        try:
            tags = self._tags_of(bucket, key, None)
        except ObjectGone:
            return False
        return DECISION_TAG in tags and DIGEST_TAG in tags

    def _unchanged(self, ref: ObjectRef, found: _Found) -> bool:
        """Whether an unversioned object still has the ETag it was read with."""
        if found.etag_header is None:
            return False
        try:
            self.s3.head_object(Bucket=ref.bucket, Key=ref.key, IfMatch=found.etag_header)
        except Exception as exc:
            if is_precondition_failure(exc) or is_missing(exc):
                return False
            raise
        return True

    # --- the decision -----------------------------------------------------------------

    def moderate(self, ref: ObjectRef, *, final_attempt: bool = False) -> Outcome:
        """Decide ``ref`` (or reuse its decision) and apply the actions; never
        raises: every failure is an :class:`Outcome` with its status.

        ``final_attempt``: no retry will follow (the event is old enough, or
        re-driven from the failed-events queue), so a detector failure that a
        retry might fix is decided by the policy's ``on_error`` and enforced,
        like one that will not, instead of taking no action."""
        try:
            skipped = self.skip_reason(ref)
            if skipped is not None:
                return Outcome(ref, Status.SUCCEEDED, f"skipped: {skipped}")
            return self._moderate(ref, final_attempt)
        except ObjectGone as exc:
            return self._gone(ref, str(exc))
        except Exception as exc:
            status = classify(exc)
            LOG.warning("moderating %s failed (%s): %s", ref.uri, status.value, describe(exc))
            return Outcome(ref, status, f"failed: {describe(exc)}", unfinished=True)

    def _gone(self, ref: ObjectRef, message: str) -> Outcome:
        """A missing object is a permanent failure, unless this function itself
        quarantined and deleted it on an earlier attempt; then its record, if
        that attempt ended before writing it, is written from the copy's tags."""
        if self.config.delete_original and self.config.quarantine_on:
            bucket, key = self.quarantine_location(ref)
            try:
                if self._exists(bucket, key):
                    done = f"already quarantined to s3://{bucket}/{key} and deleted"
                    steps = _Steps(ref, [done])
                    self._record_lost_deletion(ref, bucket, key, steps)
                    return Outcome(
                        ref,
                        steps.status,
                        steps.summary(),
                        reused=True,
                        actions=tuple(steps.done),
                        unfinished=bool(steps.failed),
                    )
            except Exception as exc:
                LOG.warning("cannot look for the quarantined copy of %s: %s", ref.uri, exc)
        return Outcome(ref, Status.PERMANENT_FAILURE, message)

    def _record_lost_deletion(self, ref: ObjectRef, bucket: str, key: str, steps: _Steps) -> None:
        where = self.record_location(ref)
        if where is None:
            return
        try:
            if self._exists(*where):
                return
            tags = self._tags_of(bucket, key, None)
            verdict = _verdict(tags.get(DECISION_TAG))
            if verdict is None:
                raise ValueError(f"the copy s3://{bucket}/{key} carries no {DECISION_TAG} tag")
            note = (
                "quarantined and deleted by an earlier attempt that ended before writing "
                "this record; the decision is the one the quarantined copy's tags carry"
            )
            self._write_record(
                where,
                ref,
                None,
                verdict,
                None,
                steps.done,
                {},
                note=note,
                digest=tags.get(DIGEST_TAG),
            )
            steps.done.append(f"record s3://{where[0]}/{where[1]}")
        except Exception as exc:
            steps.fail("record not written", exc)

    def _moderate(self, ref: ObjectRef, final_attempt: bool) -> Outcome:
        if self.in_quarantine(ref):
            # tags that cannot be read prove nothing: the object is then moderated
            tags, _ = self._tags_if_readable(ref.bucket, ref.key, ref.version_id)
            # and tags that say "allow" are no copy's: never skip an upload as allowed
            if DIGEST_TAG in tags and _verdict(tags.get(DECISION_TAG)) in QUARANTINED:
                return Outcome(ref, Status.SUCCEEDED, "skipped: a quarantined copy")
        found = self._find(ref)
        pinned = ObjectRef(ref.bucket, ref.key, found.version_id, found.size, found.etag)
        context = self._object_context(pinned, found)
        verdict = self._reusable(found, self._context_tag(context))
        decided: Decision | SetDecision | None = None
        failure: str | None = None
        provisional: str | None = None
        errors: tuple[str, ...] = ()
        if verdict is None and context is not None and not context.determined:
            decided = self._decide_undetermined(pinned, found, context)
            considered = ", ".join(str(route.index) for route in decided.considered)
            failure = (
                f"context undetermined, decided by on_error of route(s) {considered}: "
                f"{context.describe_problems()}"
            )
            verdict = decided.verdict
        elif verdict is None:
            audit = _context(pinned, found)
            given = {**audit, **context.given()} if context is not None else audit
            decided = self.moderator.check_in(self._image(pinned, found), context=given)
            decision = decided.decision if isinstance(decided, SetDecision) else decided
            retryable = sorted({f.code for f in decision.failures if f.retryable})
            errors = tuple(f.code for f in decision.failures)
            if retryable and not final_attempt:
                # no action: the retry decides afresh
                first = next(f for f in decision.failures if f.retryable)
                message = f"retryable detector failure ({', '.join(retryable)}): {first.error}"
                return Outcome(pinned, Status.TEMPORARY_FAILURE, message, detector_errors=errors)
            if retryable:
                provisional = "+".join(retryable)
            if decision.failures:
                codes = ", ".join(sorted({f.code for f in decision.failures}))
                final = " on the final attempt, decided by on_error" if retryable else ""
                failure = f"detector failure ({codes}){final}: {decision.failures[0].error}"
            verdict = decision.verdict
        steps = self._act(pinned, found, verdict, decided, provisional, context)
        reused = decided is None
        head = f"{verdict.value} ({'reused, ' if reused else ''}policy {self.digest[:19]})"
        status = steps.status
        if failure is not None and status is Status.SUCCEEDED:
            status = Status.PERMANENT_FAILURE
        detail = f"{failure}; " if failure is not None else ""
        return Outcome(
            pinned,
            status,
            f"{head}: {detail}{steps.summary()}",
            verdict.value,
            reused,
            tuple(steps.done),
            unfinished=bool(steps.failed),
            quarantined=steps.copied,
            detector_errors=errors,
        )

    def _object_context(self, pinned: ObjectRef, found: _Found) -> ObjectContext | None:
        """The object's context under the set served (None for a single policy)."""
        if self.compiled_set is None:
            return None
        return object_context(
            self.context_settings, self.compiled_set.policy_set, pinned.key, found.metadata
        )

    def _context_tag(self, context: ObjectContext | None) -> str | None:
        if context is None or self.compiled_set is None:
            return None
        return context.tag_value(self.compiled_set.policy_set)

    def _decide_undetermined(
        self, pinned: ObjectRef, found: _Found, context: ObjectContext
    ) -> SetDecision:
        """Decide by on_error of every route the object could reach (no detector
        call), and tell the decision hooks (the audit log) as for any decision."""
        assert self.compiled_set is not None
        decided = decide_undetermined(self.compiled_set, context)
        audit = {**_context(pinned, found), **context.values}
        self.moderator.announce(self._image(pinned, found), decided, audit)
        return decided

    def _image(self, pinned: ObjectRef, found: _Found) -> Image:
        if found.data is not None:
            # unversioned: the bytes read are decided, and their SHA-256 keys the
            # recordings, so a recording never answers for other bytes
            return Image(name=pinned.uri, data=found.data)
        # checked in place: the image key (recordings, cache) digests the URI
        # s3://bucket/key?versionId=V and the ETag, so it is the same for every
        # check of this object version, whichever event names it, and the same
        # as `policy-engine check 's3://bucket/key?versionId=V'` gives it
        return Image(name=pinned.uri, uri=pinned.uri, size=found.size, version=found.etag_header)

    def _reusable(self, found: _Found, context_tag: str | None) -> Verdict | None:
        tags = found.tags
        if found.tags_error is not None:
            return None  # unknown tags: decided afresh
        if PROVISIONAL_TAG in tags:
            return None  # on_error's, for want of an answer: ask the detectors again
        if tags.get(DIGEST_TAG) != self.digest:
            return None
        if tags.get(CONTEXT_TAG) != context_tag:
            return None  # decided in another context (other metadata or prefixes then)
        if found.version_id is None and (
            found.sha256 is None or tags.get(CONTENT_TAG) != found.sha256
        ):
            return None  # the tags of other bytes (or of none the function could read)
        if found.version_id is not None and tags.get(VERSION_TAG) != found.version_id:
            return None  # the tags of another version, copied here with it (or forged)
        return _verdict(tags.get(DECISION_TAG))

    # --- the actions: enforcement first, then bookkeeping ------------------------------

    def _moderation_tags(
        self, found: _Found, verdict: Verdict, provisional: str | None, context_tag: str | None
    ) -> dict[str, str]:
        tags = {DECISION_TAG: verdict.value, DIGEST_TAG: self.digest}
        if context_tag is not None:
            tags[CONTEXT_TAG] = context_tag
        if provisional is not None:
            tags[PROVISIONAL_TAG] = _TAG_UNSAFE.sub("-", provisional)[:256]
        if found.version_id is None and found.sha256 is not None:
            tags[CONTENT_TAG] = found.sha256
        if found.version_id is not None and _TAG_VALUE.match(found.version_id):
            tags[VERSION_TAG] = found.version_id  # else never reused: decided again
        return tags

    def _act(
        self,
        ref: ObjectRef,
        found: _Found,
        verdict: Verdict,
        decision: Decision | SetDecision | None,
        provisional: str | None = None,
        context: ObjectContext | None = None,
    ) -> _Steps:
        steps = _Steps(ref)
        ours = self._moderation_tags(found, verdict, provisional, self._context_tag(context))
        tags, dropped = fit_tags(found.tags, ours)
        quarantine = verdict in self.config.quarantine_on
        copying = quarantine and not self.in_quarantine(ref)
        if not (self.config.tag or copying):
            dropped = {}  # no tags are written anywhere
        if found.tags_error is not None and copying:
            steps.done.append("its own tags could not be read: the copy carries none of them")
        if dropped:
            steps.done.append(
                f"own tags dropped to make room for the moderation tags (S3 allows "
                f"{MAX_TAGS}): {', '.join(dropped)}"
            )
        gone = False
        if quarantine and not copying:
            steps.done.append("already under the quarantine prefix: not copied again")
        elif copying:
            try:
                self._quarantine(ref, found, tags, steps)
                copied = True
            except Exception as exc:
                kept = ", original kept" if self.config.delete_original else ""
                steps.fail(f"NOT quarantined{kept}", exc)
                copied = False
            if copied and self.config.delete_original:
                # only now: the copy exists (made above, or found with the same ETag)
                try:
                    gone = self._delete(ref, found, steps)
                except Exception as exc:
                    steps.fail("original not deleted", exc)
        where = self.record_location(ref)
        if where is not None:
            try:
                if decision is not None or not self._exists(*where):
                    self._write_record(
                        where,
                        ref,
                        found,
                        verdict,
                        decision,
                        steps.done,
                        dropped,
                        provisional=provisional,
                        context=context,
                    )
                    steps.done.append(f"record s3://{where[0]}/{where[1]}")
            except Exception as exc:
                steps.fail("record not written", exc)
        if self.config.tag and not gone and found.tags_error is not None:
            # writing the tags would replace the object's own, unseen, for good
            steps.fail("not tagged: its tags could not be read", found.tags_error)
        elif self.config.tag and not gone and tags != found.tags:
            try:
                self._tag(ref, found, tags, steps)
            except Exception as exc:
                steps.fail("not tagged", exc)
        return steps

    def _copy_metadata(self, ref: ObjectRef, key: str) -> dict[str, str]:
        """Metadata a copy needs of its own: the original key, when the copy's
        key is a hash of it (too long for the quarantine prefix). URL-encoded
        as S3 events give keys, or, if that is too long for S3's 2 KB of
        metadata, base64 (UTF-8)."""
        if key == self.config.quarantine_prefix + ref.key:
            return {}
        encoded = quote(ref.key, safe="/")
        if len(encoded) <= MAX_METADATA_VALUE:
            return {ORIGINAL_KEY_METADATA: encoded}
        raw = ref.key.encode("utf-8", "surrogatepass")
        return {ORIGINAL_KEY_METADATA + "-base64": base64.b64encode(raw).decode("ascii")}

    def _quarantine(
        self, ref: ObjectRef, found: _Found, tags: Mapping[str, str], steps: _Steps
    ) -> None:
        """Put the decided bytes in quarantine, with ``tags`` and the metadata
        it needs if S3 takes them: bookkeeping never keeps an image out of
        quarantine, so a copy S3 refuses with them is made without them."""
        bucket, key = self.quarantine_location(ref)
        own = self._copy_metadata(ref, key)
        write: Callable[[dict[str, str], dict[str, str]], object]
        expected: str | None
        if found.data is not None:
            data = found.data
            # the bytes decided, whatever the key holds by now
            expected = hashlib.md5(data, usedforsecurity=False).hexdigest()
            headers = {"ContentType": "application/octet-stream", **found.headers}

            def write(tagging: dict[str, str], metadata: dict[str, str]) -> object:
                extra: dict[str, Any] = {}
                if metadata:  # the original's metadata too, as a copy keeps it
                    extra = {"Metadata": {**found.metadata, **metadata}}
                return self.s3.put_object(
                    Bucket=bucket, Key=key, Body=data, **headers, **extra, **tagging
                )

        else:
            expected = found.etag
            source = {"Bucket": ref.bucket, "Key": ref.key, **self._version_args(ref.version_id)}
            condition = {"CopySourceIfMatch": found.etag_header} if found.etag_header else {}

            def write(tagging: dict[str, str], metadata: dict[str, str]) -> object:
                replaced: dict[str, Any] = {}
                if metadata:  # REPLACE keeps nothing: the original's are given again
                    replaced = {
                        "MetadataDirective": "REPLACE",
                        "Metadata": {**found.metadata, **metadata},
                        **found.headers,
                    }
                return self.s3.copy_object(
                    CopySource=source,
                    Bucket=bucket,
                    Key=key,
                    TaggingDirective="REPLACE",
                    **condition,
                    **replaced,
                    **tagging,
                )

        try:
            if self._copy_exists(bucket, key, expected):
                return
        except Exception as exc:
            if classify(exc) is Status.TEMPORARY_FAILURE:
                raise
            # cannot look (no s3:GetObject there?): copy anyway, at worst a second version
            LOG.warning("cannot look for s3://%s/%s: %s", bucket, key, describe(exc))
        tagging = {"Tagging": urlencode(tags)}
        # with everything, then without the metadata, then without the tags too
        attempts = [(True, bool(own)), (True, False), (False, False)][0 if own else 1 :]
        refused: BaseException | None = None
        for with_tags, with_metadata in attempts:
            try:
                write(tagging if with_tags else {}, own if with_metadata else {})
            except Exception as exc:
                if classify(exc) is Status.TEMPORARY_FAILURE or is_missing(exc):
                    raise
                refused = refused or exc
                continue
            steps.done.append(f"quarantined to s3://{bucket}/{key}")
            steps.copied = True
            if refused is not None:
                lacking = ([] if with_tags else ["is untagged"]) + (
                    ["lacks the original key in its metadata"] if own and not with_metadata else []
                )
                steps.fail(f"the quarantined copy {' and '.join(lacking)}", refused)
            return
        assert refused is not None
        raise refused

    def _delete(self, ref: ObjectRef, found: _Found, steps: _Steps) -> bool:
        """Delete the original; whether it is gone."""
        if found.version_id is not None:
            self.s3.delete_object(Bucket=ref.bucket, Key=ref.key, VersionId=found.version_id)
            steps.done.append("original deleted")
            return True
        # unversioned: only the bytes decided, never a newer upload to the same key
        condition = {"IfMatch": found.etag_header} if found.etag_header else {}
        try:
            self.s3.delete_object(Bucket=ref.bucket, Key=ref.key, **condition)
        except Exception as exc:
            if is_missing(exc):
                steps.done.append("original already gone")
                return True
            if not is_precondition_failure(exc):
                raise
            steps.done.append(
                "original not deleted: a newer upload has replaced it since it was decided "
                "(that upload's own event decides it)"
            )
            return False
        steps.done.append("original deleted")
        return True

    def _tag(self, ref: ObjectRef, found: _Found, tags: Mapping[str, str], steps: _Steps) -> None:
        unversioned = found.version_id is None
        if unversioned and not self._unchanged(ref, found):
            steps.done.append(
                "not tagged: a newer upload has replaced it since it was decided "
                "(that upload's own event decides it)"
            )
            return
        self.s3.put_object_tagging(
            Bucket=ref.bucket,
            Key=ref.key,
            Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]},
            **self._version_args(found.version_id),
        )
        if unversioned and not self._unchanged(ref, found):
            # S3 has no conditional tagging: the tags may now sit on the newer
            # bytes. They name the bytes decided, so they are never reused for
            # those; a retry decides what the key holds now and tags it.
            raise ObjectReplaced(
                "the object was replaced while it was being tagged: its tags may describe "
                "the previous bytes until a retry decides the new ones"
            )
        steps.done.append("tagged")

    def _write_record(
        self,
        where: tuple[str, str],
        ref: ObjectRef,
        found: _Found | None,
        verdict: Verdict,
        decision: Decision | SetDecision | None,
        actions: list[str],
        dropped: Mapping[str, str],
        *,
        note: str | None = None,
        digest: str | None = None,
        provisional: str | None = None,
        context: ObjectContext | None = None,
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
            "actions": list(actions),
        }
        if found is not None and found.sha256 is not None:
            record["sha256"] = found.sha256
        if dropped:
            record["tags_dropped"] = dict(dropped)
        if provisional is not None:
            record["provisional"] = (
                f"decided by the policy's on_error on the final attempt ({provisional}): "
                "the next event or backfill asks the detectors again"
            )
        if decision is not None:
            record.update(decision.to_dict())
        else:  # decided earlier (the tags say so), and that record was lost
            record.update(
                decision=verdict.value,
                policy={"name": self.moderator.policy_name, "digest": digest or self.digest},
                reused=True,
                note=note
                or "decided on an earlier attempt (the object's tags); its full record was lost",
            )
            if context is not None:  # the context the tags name is the one found now
                record.update(context=dict(context.values), policy_set=dict(record["policy"]))
        if context is not None:
            record["context_sources"] = context.sources_data()
            if not context.determined:
                record["context_undetermined"] = dict(context.problems)
        bucket, key = where
        self.s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(record, indent=1, sort_keys=True).encode("utf-8"),
            ContentType="application/json",
        )


CONTENT_HEADERS = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding")
"""What a copy that replaces the metadata must give again (CopyObject's
``MetadataDirective=REPLACE`` keeps none of them)."""


def _metadata(answer: Mapping[str, Any]) -> dict[str, str]:
    found = answer.get("Metadata")
    if not isinstance(found, Mapping):
        return {}
    return {str(k): str(v) for k, v in found.items()}


def _content_headers(answer: Mapping[str, Any]) -> dict[str, str]:
    return {name: answer[name] for name in CONTENT_HEADERS if isinstance(answer.get(name), str)}


def _is_record(document: Any) -> bool:
    """A decision record the function wrote (its ``format``)."""
    return isinstance(document, dict) and document.get("format") == RECORD_FORMAT


def _is_recording(document: Any) -> bool:
    """A recording of detector responses, as the function writes them."""
    if not isinstance(document, dict) or document.get("format") != RECORDING_FORMAT:
        return False
    try:
        recorded_responses(document, "recording")
    except InvalidDetectorResult:
        return False
    return True


def _verdict(value: str | None) -> Verdict | None:
    try:
        return Verdict(value or "")
    except ValueError:
        return None


AUDIT_KEYS = ("bucket", "key", "version_id", "sha256")
"""The context keys the function gives the decision hooks about the object
(a policy set's dimension may not take one of these names)."""


def _context(pinned: ObjectRef, found: _Found) -> dict[str, Any]:
    """What the decision hooks (audit log, shadow) are told about the object
    (:data:`AUDIT_KEYS`); a set's dimension values are added to it."""
    context: dict[str, Any] = {
        "bucket": pinned.bucket,
        "key": pinned.key,
        "version_id": pinned.version_id,
    }
    if found.sha256 is not None:
        context["sha256"] = found.sha256
    return context
