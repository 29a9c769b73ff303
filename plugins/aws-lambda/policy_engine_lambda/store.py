"""Recorded detector responses in S3: a :class:`~policy_engine.recordings.ResponseStore`.

``s3://<bucket>/<prefix><image key>.json`` holds the same document that
``policy-engine check --record DIR`` writes to ``DIR/<image key>.json``
(:func:`~policy_engine.recordings.recording_document`), so that::

    aws s3 sync s3://bucket/recordings/ ./recordings/

gives a folder that ``check --cache``/``--replay`` and ``diff --corpus`` read.

* ``lookup`` answers the response recorded for exactly this image key,
  detector and settings digest. A missing object, one it may not read, or
  one that is not a recording is a miss, never a failure: the detector is
  then called as if there were no store.
* ``record`` reads what is there, merges (other detectors' and settings'
  entries are kept, this one added or replaced) and writes it back with a
  conditional PUT (``If-Match`` the ETag read, or ``If-None-Match: *`` for a
  new object), retried on a conflict, so that two writers never silently
  drop each other's entries. A recording is an optimisation: ``record`` logs
  a failure and never raises, so a failed write never changes a decision.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from policy_engine import InvalidDetectorResult
from policy_engine.recordings import (
    RecordedResponse,
    find_response,
    recorded_responses,
    recording_document,
)

LOG = logging.getLogger("policy_engine_lambda")

WRITE_ATTEMPTS = 5
"""Read-merge-put rounds before ``record`` gives up on a key others keep changing."""

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED = frozenset({"AccessDenied", "403"})
"""Without s3:ListBucket, S3 answers 403 rather than 404 for a missing key."""
_CONFLICT = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


def _code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code is not None else None


class _Unreadable(Exception):
    """The object exists (or may), but cannot be read or parsed as a recording."""


class S3RecordingStore:
    """Recordings under ``s3://bucket/prefix``, one ``<image key>.json`` per image.

    ``client`` is a boto3 S3 client; by default one is built on first use from
    the standard AWS chains. Safe to share across threads.
    """

    def __init__(self, bucket: str, prefix: str = "recordings/", client: Any = None) -> None:
        if not bucket:
            raise ValueError("S3RecordingStore needs a bucket")
        self.bucket = bucket
        self.prefix = prefix
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3

                    self._client = boto3.client("s3")
        return self._client

    def object_key(self, key: str) -> str:
        """Where the recording of the image ``key`` is kept in the bucket."""
        return f"{self.prefix}{key}.json"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def _read(self, key: str) -> tuple[tuple[RecordedResponse, ...], str] | None:
        """What is recorded for ``key`` and the object's ETag; None when there is
        no object. Raises :class:`_Unreadable` for anything else, and lets S3's
        errors other than a missing key through."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
            body = answer["Body"].read()
        except Exception as exc:
            if _code(exc) in _MISSING:
                return None
            raise
        etag = str(answer.get("ETag") or "")
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Unreadable(f"recording {self.uri(key)} is not valid JSON: {exc}") from exc
        try:
            return recorded_responses(data, f"recording {self.uri(key)}"), etag
        except InvalidDetectorResult as exc:
            raise _Unreadable(str(exc)) from exc

    def lookup(self, key: str, detector: str, settings: str) -> Mapping[str, Any] | None:
        """The response recorded for exactly this image key, detector and settings;
        None (a miss) when there is none or the object cannot be read."""
        try:
            found = self._read(key)
        except Exception as exc:
            level = logging.DEBUG if _code(exc) in _DENIED else logging.WARNING
            LOG.log(level, "recording %s is a miss: %s", self.uri(key), exc)
            return None
        if found is None:
            return None
        return find_response(found[0], detector, settings)

    def record(self, key: str, detector: str, settings: str, response: Mapping[str, Any]) -> None:
        """Keep ``response`` for this image key, detector and settings, merged with
        what the object already holds. Never raises: a failure is logged."""
        try:
            self._record(key, detector, settings, response)
        except Exception as exc:
            LOG.warning("cannot record the %s response in %s: %s", detector, self.uri(key), exc)

    def _record(self, key: str, detector: str, settings: str, response: Mapping[str, Any]) -> None:
        for _ in range(WRITE_ATTEMPTS):
            condition: dict[str, str]
            existing: tuple[RecordedResponse, ...] = ()
            denied = False
            try:
                found = self._read(key)
            except _Unreadable as exc:
                LOG.warning("replacing %s: %s", self.uri(key), exc)
                condition = {}  # not a recording: overwrite it, as a folder store does
            except Exception as exc:
                if _code(exc) not in _DENIED:
                    raise
                # missing, or there and not ours to read: only ever create, never clobber
                denied = True
                condition = {"IfNoneMatch": "*"}
            else:
                if found is None:
                    condition = {"IfNoneMatch": "*"}
                else:
                    existing, etag = found
                    condition = {"IfMatch": etag} if etag else {}
            document = recording_document(existing, detector, settings, response)
            body = json.dumps(document, indent=1, sort_keys=True) + "\n"
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self.object_key(key),
                    Body=body.encode("utf-8"),
                    ContentType="application/json",
                    **condition,
                )
            except Exception as exc:
                if denied and _code(exc) in _CONFLICT:
                    raise PermissionError(
                        f"{self.uri(key)} exists but may not be read (s3:GetObject)"
                    ) from exc
                # another writer got there between the read and the put: merge again
                if _code(exc) in _CONFLICT or ("IfMatch" in condition and _code(exc) in _MISSING):
                    continue
                raise
            return
        raise RuntimeError(f"{self.uri(key)} kept changing: gave up after {WRITE_ATTEMPTS} tries")
