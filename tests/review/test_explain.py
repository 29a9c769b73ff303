"""Explaining a decision label by label (policy_engine.review.explain)."""

from __future__ import annotations

import pytest
from tests_file_builders import POLICY

from policy_engine import DetectorRegistry, Label
from policy_engine.compiler import compile_policy
from policy_engine.loader import parse_policy
from policy_engine.model import Body, Verdict
from policy_engine.review.explain import comparison, explain_decision


@pytest.mark.parametrize(
    ("body", "confidence", "verdict", "text"),
    [
        (Body(review_at=50, block_at=90), 97.3, Verdict.BLOCK, "97.3 >= 90 (block_at)"),
        (Body(review_at=50, block_at=90), 60, Verdict.REVIEW, "60 >= 50 (review_at)"),
        (Body(review_at=60), 54, Verdict.ALLOW, "54 < 60 (review_at)"),
        (Body(block_at=70), 54, Verdict.ALLOW, "54 < 70 (block_at)"),
        (Body(action=Verdict.BLOCK), 41, Verdict.BLOCK, "41 >= 0 (action: block)"),
        (Body(action=Verdict.ALLOW), 99, Verdict.ALLOW, "action: allow"),
        (Body(action=Verdict.BLOCK), 39.99, None, "39.99 < 40 (min_confidence): dropped"),
    ],
)
def test_the_comparison_that_fired(
    body: Body, confidence: float, verdict: Verdict | None, text: str
) -> None:
    assert comparison(body, confidence, 40) == (verdict, text)


def test_explain_lists_every_selecting_rule_most_specific_first(
    registry: DetectorRegistry,
) -> None:
    policy = parse_policy(
        POLICY
        + "  - {id: exact, match: {name: Weapon Violence, parent: Graphic Violence},"
        + " block_at: 95}\n"
        + "  - {id: named, match: {name: weapon violence}, action: allow}\n"
        + "  - {id: whole, match: {parent: Violence}, review_at: 50}\n"
    )
    compiled = compile_policy(policy, registry)
    label = Label("Weapon Violence", 97.3, "rekognition-moderation", parent="Graphic Violence")

    trace = explain_decision(compiled, [label], registry=registry)

    (only,) = trace.labels
    assert [(c.rule, c.rank, c.distance, c.winner) for c in only.candidates] == [
        ("exact", "name+parent", 0, True),
        ("named", "name", 0, False),
        ("graphic", "parent", 1, False),
        ("whole", "parent", 2, False),
    ]
    assert only.lineage == ("Weapon Violence", "Graphic Violence", "Violence")
    assert only.comparison == "97.3 >= 95 (block_at)"
    assert trace.to_dict()["labels"][0]["candidates"][0]["match"] == {
        "name": "Weapon Violence",
        "parent": "Graphic Violence",
    }
