"""A shadow candidate (policy_engine.shadow): loaded with every error said, and
each disagreement logged once, with the image's name redacted."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from policy_engine import DetectorRegistry, Label
from policy_engine.errors import ShadowPolicyError
from policy_engine.events import DecisionEvent
from policy_engine.shadow import ShadowDisagreementLog, load_candidate

POLICY = "version: 1\nname: {name}\nrules:\n  - {{id: v, match: {{name: Violence}}, {body}}}\n"


def candidate(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(POLICY.format(name=name, body=body), encoding="utf-8")
    return path


def test_a_candidate_that_does_not_load_says_every_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nname: broken\nrules:\n  - id: x\n", encoding="utf-8")
    with pytest.raises(ShadowPolicyError) as caught:
        load_candidate(broken, DetectorRegistry())
    assert caught.value.code
    assert str(broken) in str(caught.value)


def test_disagreements_are_logged_once_each_and_agreements_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = DetectorRegistry()
    lenient = load_candidate(candidate(tmp_path, "lenient", "block_at: 90"), registry)
    strict = load_candidate(candidate(tmp_path, "strict", "block_at: 50"), registry)
    labels = [Label("Violence", 60, "stub")]
    active, shadow = lenient.evaluate(labels), strict.evaluate(labels)
    name = "https://b/k.png?X-Amz-Signature=SECRETsig"
    log = ShadowDisagreementLog()
    with caplog.at_level(logging.WARNING, logger="policy_engine.shadow"):
        log.policy_engine_decision_made(
            event=DecisionEvent(time="t", input=name, key="k", decision=active, shadow=shadow)
        )
        log.policy_engine_decision_made(
            event=DecisionEvent(time="t", input=name, key="k", decision=active, shadow=active)
        )
    (record,) = caplog.records
    assert "shadow disagreement" in record.getMessage()
    assert "SECRETsig" not in record.getMessage()
