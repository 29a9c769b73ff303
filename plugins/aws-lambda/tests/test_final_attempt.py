"""Once retrying is over, a detector that keeps failing in a way a retry may
fix (a timeout, throttling) no longer means "no action": the policy's
on_error decides and its actions run. The final attempt is an event older
than FINAL_ATTEMPT_AFTER, or one re-driven from the failed-events queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from lambda_helpers import (
    BUCKET,
    QUARANTINE,
    VIOLENT,
    destination_record,
    read_json,
    s3_event,
    tags_of,
    versions_of,
)
from policy_engine_lambda.config import (
    DEFAULT_FINAL_ATTEMPT_AFTER,
    ConfigError,
    final_attempt_after,
)
from policy_engine_lambda.handler import RetryableFailure, handler
from policy_engine_lambda.moderate import DECISION_TAG, PROVISIONAL_TAG

from policy_engine_rekognition.testing import FakeRekognition

KEY = "uploads/fight.jpg"
COPY = "quarantine/" + KEY


def uri(version: str) -> str:
    return f"s3://{BUCKET}/{KEY}?versionId={version}"


@pytest.fixture
def reviews_quarantined(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped policy's on_error is review: quarantine it, to see it enforced."""
    monkeypatch.setenv("QUARANTINE_BUCKET", QUARANTINE)
    monkeypatch.setenv("QUARANTINE_ON", "block,review")


def test_an_old_event_whose_detector_keeps_failing_is_decided_by_on_error(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], reviews_quarantined: None
) -> None:
    version = put(KEY)
    fake.throttle(times=100)
    old = s3_event(KEY, version, age=DEFAULT_FINAL_ATTEMPT_AFTER + 1)

    (result,) = handler(old, None)["results"]  # done: no retry would fare better

    assert (result["status"], result["decision"]) == ("PermanentFailure", "review"), result
    assert "on the final attempt, decided by on_error" in result["message"]
    assert tags_of(s3, COPY, bucket=QUARANTINE)[DECISION_TAG] == "review"  # enforced
    tags = tags_of(s3, KEY, version)
    assert (tags[DECISION_TAG], tags[PROVISIONAL_TAG]) == ("review", "ThrottlingException")
    record = read_json(s3, BUCKET, KEY + ".moderation.json")
    assert record["decision"] == "review" and "on_error" in record["provisional"]

    # on_error's decision is never reused: the next event asks the detector again
    fake.reset()
    fake.respond(uri(version), VIOLENT)
    (again,) = handler(s3_event(KEY, version), None)["results"]
    assert (again["decision"], again["reused"]) == ("block", False)
    assert PROVISIONAL_TAG not in tags_of(s3, KEY, version)


def test_a_young_event_is_left_to_lambdas_retries(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], reviews_quarantined: None
) -> None:
    version = put(KEY)
    fake.throttle(times=100)

    with pytest.raises(RetryableFailure, match="ThrottlingException"):
        handler(s3_event(KEY, version, age=DEFAULT_FINAL_ATTEMPT_AFTER - 60), None)

    assert tags_of(s3, KEY, version) == {}
    assert versions_of(s3, QUARANTINE, COPY) == []


def test_a_redriven_event_is_final_whatever_its_age(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], reviews_quarantined: None
) -> None:
    """A message of the failed-events queue has been retried already: its
    attempt is final, so re-driving it enforces on_error even if the detector
    still fails."""
    version = put(KEY)
    fake.fail(code="InternalServerError", status=500)

    (result,) = handler(destination_record(s3_event(KEY, version)), None)["results"]

    assert (result["status"], result["decision"]) == ("PermanentFailure", "review"), result
    assert len(versions_of(s3, QUARANTINE, COPY)) == 1
    assert tags_of(s3, KEY, version)[PROVISIONAL_TAG] == "InternalServerError"


def test_final_attempt_after_is_a_setting(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert final_attempt_after({}) == DEFAULT_FINAL_ATTEMPT_AFTER == 900
    assert final_attempt_after({"FINAL_ATTEMPT_AFTER": "120"}) == 120
    for bad in ("-1", "soon", "nan", "inf"):
        with pytest.raises(ConfigError, match="FINAL_ATTEMPT_AFTER"):
            final_attempt_after({"FINAL_ATTEMPT_AFTER": bad})
    # 0: every attempt is final
    monkeypatch.setenv("FINAL_ATTEMPT_AFTER", "0")
    version = put(KEY)
    fake.throttle(times=100)
    (result,) = handler(s3_event(KEY, version), None)["results"]
    assert result["decision"] == "review"
