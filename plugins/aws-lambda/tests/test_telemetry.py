"""The function's JSON log lines (Powertools Logger) and its metrics (EMF, by
Powertools), read from stdout as CloudWatch would; a metric that cannot be
written never fails an object."""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Any

import pytest
from lambda_helpers import BUCKET, QUARANTINE, VIOLENT, batch_event, s3_event, tags_of
from policy_engine_lambda import telemetry
from policy_engine_lambda.config import DEFAULT_FINAL_ATTEMPT_AFTER
from policy_engine_lambda.handler import RetryableFailure, handler
from policy_engine_lambda.moderate import DECISION_TAG

from policy_engine_rekognition.testing import FakeRekognition

KEY = "uploads/fight.jpg"
COPY = "quarantine/" + KEY
CONTEXT = types.SimpleNamespace(aws_request_id="c0ffee00-xmpl-4a1b-9c2d-0123456789ab")

pytestmark = pytest.mark.usefixtures("s3")


@pytest.fixture
def version(put: Callable[..., str]) -> str:
    """The uploaded object's version."""
    return put(KEY)


@pytest.fixture
def quarantined(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks and reviews quarantined in their own bucket."""
    monkeypatch.setenv("QUARANTINE_BUCKET", QUARANTINE)
    monkeypatch.setenv("QUARANTINE_ON", "block,review")


def uri(version: str) -> str:
    return f"s3://{BUCKET}/{KEY}?versionId={version}"


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def log_lines(out: str) -> list[dict[str, Any]]:
    return [
        line
        for line in json_lines(out)
        if line.get("service") == "policy-engine" and "_aws" not in line
    ]


def metrics(out: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every metric written, by name and dimensions (besides ``service``)."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for line in json_lines(out):
        if "_aws" not in line:
            continue
        (directive,) = line["_aws"]["CloudWatchMetrics"]
        assert line["service"] == "policy-engine"
        (dimension_set,) = directive["Dimensions"]
        assert "service" in dimension_set
        for metric in directive["Metrics"]:
            dims = tuple(sorted((d, line[d]) for d in dimension_set if d != "service"))
            key = (metric["Name"], dims)
            assert key not in found, f"{key} written twice"
            assert metric["Unit"] == "Count"
            value = line[metric["Name"]]  # Powertools writes a list of values
            found[key] = sum(value) if isinstance(value, list) else value
    return found


def namespaces(out: str) -> set[str]:
    return {
        line["_aws"]["CloudWatchMetrics"][0]["Namespace"]
        for line in json_lines(out)
        if "_aws" in line
    }


def test_a_quarantined_block_is_logged_as_json_and_counted(
    fake: FakeRekognition,
    version: str,
    quarantined: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Moderation/Test")
    fake.respond(uri(version), VIOLENT)

    handler(s3_event(KEY, version), CONTEXT)

    out = capsys.readouterr().out
    lines = log_lines(out)
    assert lines and all(line["function_request_id"] == CONTEXT.aws_request_id for line in lines), (
        lines
    )
    (started,) = [line for line in lines if "digest" in line]
    assert started["policy"] == "general-ugc" and started["level"] == "INFO"
    (moderated,) = [line for line in lines if "outcome" in line]
    assert (moderated["bucket"], moderated["key"], moderated["version_id"]) == (
        BUCKET,
        KEY,
        version,
    )
    assert moderated["outcome"]["decision"] == "block"
    assert moderated["outcome"]["status"] == "Succeeded"
    assert moderated["message"].startswith("Succeeded: block")
    # the object's keys are for the lines about it only
    assert "key" not in started
    assert namespaces(out) == {"Moderation/Test"}
    assert metrics(out) == {
        ("Decisions", (("verdict", "block"),)): 1,
        ("QuarantineCopies", ()): 1,
    }


def test_a_throttled_detector_is_counted_as_an_error_and_a_temporary_failure(
    fake: FakeRekognition, version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.throttle(times=100)

    with pytest.raises(RetryableFailure):
        handler(s3_event(KEY, version), CONTEXT)

    out = capsys.readouterr().out
    # written although the invocation fails, in the default namespace
    assert namespaces(out) == {telemetry.DEFAULT_NAMESPACE}
    assert metrics(out) == {
        ("DetectorErrors", (("code", "ThrottlingException"),)): 1,
        ("Failures", (("status", "TemporaryFailure"),)): 1,
    }
    (moderated,) = [line for line in log_lines(out) if "outcome" in line]
    assert moderated["level"] == "WARNING" and moderated["key"] == KEY


def test_the_final_attempt_counts_on_errors_decision_and_its_enforcement(
    fake: FakeRekognition, version: str, quarantined: None, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.throttle(times=100)

    handler(s3_event(KEY, version, age=DEFAULT_FINAL_ATTEMPT_AFTER + 1), CONTEXT)

    assert metrics(capsys.readouterr().out) == {
        ("Decisions", (("verdict", "review"),)): 1,
        ("DetectorErrors", (("code", "ThrottlingException"),)): 1,
        ("QuarantineCopies", ()): 1,
        ("Failures", (("status", "PermanentFailure"),)): 1,
    }


def test_a_batch_counts_each_verdict_once_per_invocation(
    fake: FakeRekognition,
    put: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    versions = [put(key) for key in ("a.jpg", "b.jpg", "c.jpg")]
    fake.respond(f"s3://{BUCKET}/c.jpg?versionId={versions[2]}", VIOLENT)
    event = batch_event("1.0", *zip(("a.jpg", "b.jpg", "c.jpg"), versions, strict=True))

    handler(event, CONTEXT)

    out = capsys.readouterr().out
    assert metrics(out) == {
        ("Decisions", (("verdict", "allow"),)): 2,
        ("Decisions", (("verdict", "block"),)): 1,
        ("QuarantineCopies", ()): 1,
    }
    keys = [line["key"] for line in log_lines(out) if "outcome" in line]
    assert keys == ["a.jpg", "b.jpg", "c.jpg"]
    # an object's keys leave with it; the invocation's stay
    assert {line["function_request_id"] for line in log_lines(out)} == {CONTEXT.aws_request_id}


def test_metrics_that_cannot_be_written_never_fail_the_object(
    s3: Any,
    fake: FakeRekognition,
    version: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(**_: Any) -> Any:
        raise RuntimeError("EMF serialisation failed")

    monkeypatch.setattr(telemetry, "single_metric", broken)
    fake.respond(uri(version), VIOLENT)

    (result,) = handler(s3_event(KEY, version), CONTEXT)["results"]

    assert (result["status"], result["decision"]) == ("Succeeded", "block")
    assert tags_of(s3, COPY)[DECISION_TAG] == "block"  # enforced
    out = capsys.readouterr().out
    assert metrics(out) == {}
    (warning,) = [line for line in log_lines(out) if "metrics not written" in line["message"]]
    assert warning["level"] == "WARNING" and "EMF serialisation failed" in warning["message"]


@pytest.mark.usefixtures("fake")
def test_no_secret_and_no_event_reaches_the_log(
    version: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-xmpl-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "xmpl-session-token")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    event = s3_event(KEY, version)

    handler(event, CONTEXT)

    out = capsys.readouterr().out
    assert log_lines(out)
    assert "xmpl-secret" not in out and "xmpl-session-token" not in out
    assert event["Records"][0]["s3"]["object"]["eTag"] not in out
