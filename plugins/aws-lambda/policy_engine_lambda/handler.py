"""The Lambda entry point: ``policy_engine_lambda.handler.handler``.

The engine (policy loaded, compiled and checked against the installed
detectors), the S3 client and the action settings are built once per
container, on the first invocation, and reused by every later one.

* An S3 ``ObjectCreated`` notification: each record's object is decided and
  acted on. If any of them failed in a way a retry may fix (throttling, a
  timeout), or was left undecided, or a step of its decision failed (the
  copy, the deletion, the record, the tags), the invocation raises
  :class:`RetryableFailure` once the others are done, so that Lambda retries
  it (the objects already done are then recognised by their tags: no second
  Rekognition call) and, if it keeps failing, sends the event to the
  function's on-failure destination, the failed-events queue: an upload is
  never left unmoderated with a log line only. A bad image decided by the
  policy's ``on_error`` and a missing object are logged and the invocation
  goes on. Once retrying is over (the event is ``FINAL_ATTEMPT_AFTER``
  seconds old), a detector failure a retry might fix is decided by
  ``on_error`` too, and enforced, instead of being retried.
* A failed-event record from the function's on-failure destination (the
  body of a message of the failed-events queue): the S3 notification it
  carries is decided as above, as a final attempt. This is how failed events
  are re-driven.
* An S3 Batch Operations invocation (schema 1.0 or 2.0): the documented
  response, one result per task, ``Succeeded``, ``TemporaryFailure`` (Batch
  Operations retries it) or ``PermanentFailure``.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policy_engine import DetectorRegistry, Moderator
from policy_engine_lambda.config import (
    ActionConfig,
    ConfigError,
    audit_enabled,
    detector_timeout,
    final_attempt_after,
    policy_path,
    recordings_location,
    shadow_policy_path,
)
from policy_engine_lambda.context import ContextSettings
from policy_engine_lambda.events import (
    BatchInvocation,
    InvocationError,
    ObjectRef,
    failed_notification,
    is_batch_invocation,
    is_failure_record,
    is_s3_notification,
    parse_batch_invocation,
    parse_s3_notification,
)
from policy_engine_lambda.moderate import AUDIT_KEYS, ObjectModerator, Outcome, Status
from policy_engine_lambda.store import S3RecordingStore
from policy_engine_lambda.telemetry import Tally, about, invocation

LOG = logging.getLogger("policy_engine_lambda")
MAX_RESULT_STRING = 1000
"""Characters of a task's ``resultString`` kept (the completion report is a CSV)."""


class RetryableFailure(RuntimeError):
    """Raised from an S3-event invocation so that Lambda retries it (and then
    sends it to the on-failure destination); ``outcomes`` are the objects'
    outcomes, all of them, as the log has them."""

    def __init__(self, message: str, outcomes: tuple[Outcome, ...] = ()) -> None:
        super().__init__(message)
        self.outcomes = outcomes


@dataclass(frozen=True, slots=True)
class _State:
    moderator: ObjectModerator
    final_attempt_after: float


_state: _State | None = None
_lock = threading.Lock()


def build_s3_client() -> Any:
    """boto3's S3 client from the function's role and region (AWS_REGION)."""
    import boto3.session
    import botocore.config

    from policy_engine_lambda import __version__

    session = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)
    config = botocore.config.Config(
        user_agent_extra=f"policy-engine-lambda/{__version__}",
        retries={"mode": "standard"},
    )
    return session.client("s3", config=config)


def moderator() -> ObjectModerator:
    """The container's moderator, built on first use (the cold start)."""
    return _started().moderator


def _started() -> _State:
    """The container's state, built on first use (the cold start)."""
    global _state
    with _lock:
        if _state is None:
            registry = DetectorRegistry.installed()
            path = policy_path()
            config = ActionConfig.from_environ()
            context = ContextSettings.from_environ(os.environ)
            final_after = final_attempt_after()
            location = recordings_location()
            s3 = build_s3_client()
            store = (
                S3RecordingStore(location.bucket, location.prefix, client=s3)
                if location is not None
                else None
            )
            # the same store answers before a detector call and keeps its response;
            # the audit log goes to stdout, which CloudWatch keeps
            moderating = Moderator(
                path,
                registry=registry,
                cache=store,
                record=store,
                audit_log=sys.stdout if audit_enabled() else None,
                shadow=shadow_policy_path(),
                concurrency=1,
                detector_timeout=detector_timeout(),
            )
            context.check_against(moderating.serving.engine.policy_set, AUDIT_KEYS)
            _state = _State(
                ObjectModerator(moderating, s3, config, recordings=location, context=context),
                final_after,
            )
            LOG.info(
                "started with policy %s (%s)",
                moderating.policy_name,
                moderating.policy_digest,
                extra={
                    "policy": moderating.policy_name,
                    "policy_file": str(path),
                    "digest": moderating.policy_digest,
                    "shadow": moderating.serving.shadow_digest,
                    "recordings": store.uri("") if store is not None else None,
                    "final_attempt_after": final_after,
                    "context_from_metadata": context.from_metadata,
                    "context_prefixes": [rule.prefix for rule in context.prefixes],
                },
            )
        return _state


def reset() -> None:
    """Forget the container's engine and client (tests; a new policy file)."""
    global _state
    with _lock:
        _state = None


def _moderated(
    mod: ObjectModerator, ref: ObjectRef, tally: Tally | None, *, final_attempt: bool = False
) -> Outcome:
    """Moderate ``ref``; log the outcome (``outcome``: its fields) and count it."""
    with about(ref):
        outcome = mod.moderate(ref, final_attempt=final_attempt)
        level = logging.INFO if outcome.status is Status.SUCCEEDED else logging.WARNING
        LOG.log(
            level,
            "%s: %s",
            outcome.status.value,
            outcome.message,
            extra={"outcome": outcome.to_log()},
        )
    if tally is not None:
        tally.count(outcome)
    return outcome


def handle_s3_notification(
    event: Mapping[str, Any],
    mod: ObjectModerator,
    *,
    final_after: float | None = None,
    redriven: bool = False,
    tally: Tally | None = None,
) -> dict[str, Any]:
    """Decide the objects of an S3 notification. An attempt is the final one
    (see :meth:`ObjectModerator.moderate`) for an event ``redriven`` from the
    failed-events queue, or one at least ``final_after`` seconds old (None:
    never by age)."""
    now = datetime.datetime.now(datetime.UTC)
    outcomes: list[Outcome] = []
    for record in parse_s3_notification(event):
        if record.ref is None:
            LOG.info(
                "skipped %s: %s",
                record.event_name,
                record.skipped,
                extra={"skipped": record.event_name, "reason": record.skipped},
            )
            continue
        age = record.age(now)
        final = redriven or (final_after is not None and age is not None and age >= final_after)
        outcomes.append(_moderated(mod, record.ref, tally, final_attempt=final))
    retry = [o for o in outcomes if o.must_fail_invocation]
    if retry:
        names = ", ".join(o.ref.uri for o in retry)
        raise RetryableFailure(
            f"{len(retry)} object(s) to retry ({names}): {retry[0].message}", tuple(outcomes)
        )
    return {"results": [o.to_log() for o in outcomes]}


def handle_batch(
    event: Mapping[str, Any], mod: ObjectModerator, tally: Tally | None = None
) -> dict[str, Any]:
    invocation: BatchInvocation = parse_batch_invocation(event)
    problem: str | None = None
    if invocation.user_arguments:
        try:
            mod = ObjectModerator(
                mod.moderator,
                mod.s3,
                mod.config.with_user_arguments(invocation.user_arguments),
                recordings=mod.recordings,
                context=mod.context_settings,
            )
        except ConfigError as exc:
            problem = str(exc)
    results: list[dict[str, str]] = []
    for task in invocation.tasks:
        if problem is not None or task.ref is None:
            code, text = Status.PERMANENT_FAILURE.value, problem or task.problem or "no object"
        else:
            outcome = _moderated(mod, task.ref, tally)
            code, text = outcome.status.value, outcome.message
        results.append(
            {"taskId": task.task_id, "resultCode": code, "resultString": text[:MAX_RESULT_STRING]}
        )
    return {
        "invocationSchemaVersion": invocation.schema,
        "treatMissingKeysAs": Status.PERMANENT_FAILURE.value,
        "invocationId": invocation.invocation_id,
        "results": results,
    }


def handler(event: Mapping[str, Any], context: object = None) -> dict[str, Any]:
    """Lambda's entry point for S3 notifications and Batch Operations tasks.
    Its log lines are JSON (see :mod:`policy_engine_lambda.telemetry`), and
    its metrics are written once the objects are done, whatever the outcome."""
    tally = Tally()
    with invocation(getattr(context, "aws_request_id", None)):
        try:
            return _dispatch(event, tally)
        finally:
            tally.emit()


def _dispatch(event: Mapping[str, Any], tally: Tally) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        raise InvocationError(f"the event is a {type(event).__name__}, not an object")
    if event.get("Event") == "s3:TestEvent":  # sent once when a notification is configured
        LOG.info("skipped s3:TestEvent", extra={"skipped": "s3:TestEvent"})
        return {"results": []}
    if is_batch_invocation(event):
        return handle_batch(event, moderator(), tally)
    if is_s3_notification(event):
        state = _started()
        return handle_s3_notification(
            event, state.moderator, final_after=state.final_attempt_after, tally=tally
        )
    if is_failure_record(event):
        # a failed event fed back from the failed-events queue: decided as it was sent
        notification = failed_notification(event)
        failed = event.get("requestContext") or {}
        LOG.info(
            "re-driven failed event of request %s",
            failed.get("requestId"),
            extra={
                "redriven": failed.get("requestId"),
                "condition": failed.get("condition"),
                "approximateInvokeCount": failed.get("approximateInvokeCount"),
            },
        )
        # retried already, and exhausted or expired: its attempt is the final one
        return handle_s3_notification(notification, moderator(), redriven=True, tally=tally)
    raise InvocationError(
        "the event is neither an S3 notification (Records), nor an S3 Batch Operations "
        "invocation (invocationSchemaVersion, tasks), nor a failed event from the "
        "failed-events queue (requestPayload)"
    )
