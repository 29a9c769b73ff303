"""The function audits every decision (JSON Lines on stdout, kept by CloudWatch)
and can shadow a candidate policy on the same labels, without a second call."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lambda_helpers import BUCKET, VIOLENT, s3_event
from policy_engine_lambda.config import DEFAULT_POLICY
from policy_engine_lambda.handler import handler

from policy_engine_rekognition.testing import FakeRekognition

KEY = "uploads/fight.jpg"


def audit_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("format") == "policy-engine-audit/1"]


def test_every_decision_is_audited_on_stdout(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    version = put(KEY)
    fake.respond(f"s3://{BUCKET}/{KEY}?versionId={version}", VIOLENT)

    answer = handler(s3_event(KEY, version), None)

    assert [r["decision"] for r in answer["results"]] == ["block"]
    (line,) = audit_lines(capsys.readouterr().out)
    assert line["decision"] == "block"
    assert line["context"] == {"bucket": BUCKET, "key": KEY, "version_id": version}
    assert line["policy"]["name"] == "general-ugc"
    assert {r["rule"] for r in line["reasons"]} >= {"graphic-violence"}
    assert "shadow" not in line


def test_audit_log_can_be_turned_off(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUDIT_LOG", "off")
    version = put(KEY)
    handler(s3_event(KEY, version), None)
    assert audit_lines(capsys.readouterr().out) == []


def test_a_shadow_policy_is_evaluated_on_the_same_labels_and_never_enforced(
    s3: Any,
    fake: FakeRekognition,
    put: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    lenient = DEFAULT_POLICY.read_text(encoding="utf-8").replace(
        "    review_at: 60\n    block_at: 90\n", "    review_at: 60\n    block_at: 99\n"
    )
    assert lenient != DEFAULT_POLICY.read_text(encoding="utf-8")
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(lenient, encoding="utf-8")
    monkeypatch.setenv("SHADOW_POLICY_FILE", str(candidate))
    version = put(KEY)
    fake.respond(f"s3://{BUCKET}/{KEY}?versionId={version}", VIOLENT)

    answer = handler(s3_event(KEY, version), None)

    assert [r["decision"] for r in answer["results"]] == ["block"]  # the active policy
    assert fake.call_count() == 1  # the candidate reused the same labels
    (line,) = audit_lines(capsys.readouterr().out)
    assert line["decision"] == "block"
    assert line["shadow"]["decision"] == "review"
    assert line["shadow"]["agrees"] is False


def test_a_bad_audit_setting_is_refused_at_start(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from policy_engine_lambda.config import audit_enabled

    monkeypatch.setenv("AUDIT_LOG", "cloudwatch")
    with pytest.raises(ValueError, match="AUDIT_LOG"):
        audit_enabled()
