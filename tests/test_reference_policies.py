"""The reference policies in policies/ load clean and decide their example cases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy_engine import DetectorRegistry, Label
from policy_engine.compiler import compile_policy
from policy_engine.decision import DetectorFailure
from policy_engine.loader import check_policy_file

POLICIES = Path(__file__).resolve().parent.parent / "policies"
DEFAULT_SOURCE = "rekognition-moderation"


@dataclass(frozen=True)
class Case:
    policy: Path
    name: str
    data: dict[str, Any]


def _cases() -> list[Case]:
    cases = []
    for tests_file in sorted(POLICIES.glob("*.tests.yaml")):
        spec = yaml.safe_load(tests_file.read_text(encoding="utf-8"))
        for case in spec["cases"]:
            cases.append(Case(POLICIES / spec["policy"], case["name"], case))
    return cases


@pytest.fixture(scope="module")
def registry() -> DetectorRegistry:
    return DetectorRegistry.installed()


def test_every_reference_policy_has_cases() -> None:
    policies = {p.name for p in POLICIES.glob("*.yaml") if not p.name.endswith(".tests.yaml")}
    covered = {case.policy.name for case in _cases()}
    assert policies == covered
    assert len(policies) >= 3


@pytest.mark.parametrize(
    "path",
    sorted(p for p in POLICIES.glob("*.yaml") if not p.name.endswith(".tests.yaml")),
    ids=lambda p: p.name,
)
def test_reference_policy_loads_without_any_diagnostic(
    path: Path, registry: DetectorRegistry
) -> None:
    result = check_policy_file(path, registry=registry)
    assert [d.render() for d in result.diagnostics] == []
    assert result.policy is not None


@pytest.mark.parametrize("case", _cases(), ids=lambda c: f"{c.policy.stem}: {c.name}")
def test_reference_policy_case(case: Case, registry: DetectorRegistry) -> None:
    result = check_policy_file(case.policy, registry=registry)
    assert result.policy is not None
    compiled = compile_policy(result.policy, registry)
    labels = [
        Label(
            name=raw["name"],
            parent=raw.get("parent", ""),
            confidence=raw["confidence"],
            source=raw.get("source", DEFAULT_SOURCE),
            model_version=raw.get("model_version"),
        )
        for raw in case.data.get("labels", [])
    ]
    failures = [DetectorFailure(e["source"], e["error"]) for e in case.data.get("errors", [])]
    decision = compiled.evaluate(labels, failures)
    assert decision.decision.value == case.data["expect"], decision.to_dict()["reasons"]
    if "rules" in case.data:
        assert {r.rule for r in decision.reasons()} == set(case.data["rules"])
