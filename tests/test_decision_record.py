"""The decision record (POLICY_SPEC section 8): reasons, their order and fields,
labels, the policy."""

from __future__ import annotations

import pytest
from policy_builders import FAILURE, compiled, label

# -- the record (section 8) -----------------------------------------------------------


def test_reasons_most_severe_first_then_confidence_descending() -> None:
    policy = compiled(
        "rules:\n"
        "  - {id: weapons, match: {parent: Weapons}, review_at: 60, block_at: 90}\n"
        "  - {id: explicit, match: {parent: Explicit}, review_at: 50, block_at: 70}\n"
    )
    labels = [
        label("Knife", 65, "Weapons"),  # review
        label("Nudity", 75, "Explicit"),  # block
        label("Weapons", 99, "Violence"),  # block
        label("Explicit", 55),  # review
        label("Violence", 99),  # default allow: no reason
    ]
    reasons = policy.evaluate(labels).to_dict()["reasons"]
    assert [(r["verdict"], r["label"], r["confidence"]) for r in reasons] == [
        ("block", "Weapons", 99),
        ("block", "Nudity", 75),
        ("review", "Knife", 65),
        ("review", "Explicit", 55),
    ]


def test_review_from_a_failure_ranks_below_a_block_from_a_label() -> None:
    policy = compiled("rules:\n  - {id: k, match: {name: Knife}, action: block}\n")
    reasons = policy.evaluate([label("Knife", 60)], [FAILURE]).to_dict()["reasons"]
    assert [(r["verdict"], r["rule"]) for r in reasons] == [("block", "k"), ("review", "on_error")]


def test_reason_record_fields_for_a_threshold_rule() -> None:
    policy = compiled("rules:\n  - {id: weapons, match: {parent: Violence}, block_at: 90}\n")
    record = policy.evaluate(
        [label("Weapons", 97.29618072509766, "Violence", "rekognition-moderation")]
    ).to_dict()
    assert record["decision"] == "block"
    assert record["reasons"] == [
        {
            "verdict": "block",
            "rule": "weapons",
            "label": "Weapons",
            "parent": "Violence",
            "source": "rekognition-moderation",
            "confidence": 97.29618072509766,
            "threshold": 90,
        }
    ]


def test_reason_threshold_is_review_at_when_review_fired() -> None:
    policy = compiled("rules:\n  - {id: w, match: {name: Knife}, review_at: 60, block_at: 90}\n")
    (reason,) = policy.evaluate([label("Knife", 70)]).to_dict()["reasons"]
    assert (reason["verdict"], reason["threshold"]) == ("review", 60)


@pytest.mark.parametrize("action", ["review", "block"])
def test_reason_threshold_is_zero_for_an_action(action: str) -> None:
    policy = compiled(f"rules:\n  - {{id: w, match: {{name: Knife}}, action: {action}}}\n")
    (reason,) = policy.evaluate([label("Knife", 70)]).to_dict()["reasons"]
    assert (reason["verdict"], reason["rule"], reason["threshold"]) == (action, "w", 0)


def test_reason_rule_is_default_for_unmatched_labels() -> None:
    policy = compiled("default: {block_at: 80}\nrules: []\n")
    (reason,) = policy.evaluate([label("Knife", 85)]).to_dict()["reasons"]
    assert (reason["rule"], reason["threshold"]) == ("default", 80)


def test_reason_parent_comes_from_the_taxonomy_when_not_reported() -> None:
    policy = compiled("rules:\n  - {id: v, match: {parent: Violence}, action: block}\n")
    (reason,) = policy.evaluate([label("knife", 85)]).to_dict()["reasons"]
    assert (reason["label"], reason["parent"]) == ("knife", "Weapons")


def test_every_kept_label_is_in_the_record_with_verdict_and_rule() -> None:
    policy = compiled("rules:\n  - {id: k, match: {name: Knife}, block_at: 90}\n")
    record = policy.evaluate([label("Knife", 95), label("Other", 60), label("Low", 10)]).to_dict()
    assert [(r["name"], r["verdict"], r["rule"]) for r in record["labels"]] == [
        ("Knife", "block", "k"),
        ("Other", "allow", "default"),
    ]
    assert [r["name"] for r in record["dropped"]] == ["Low"]


def test_record_names_the_policy_and_its_digest() -> None:
    policy = compiled("rules: []\n")
    record = policy.evaluate([]).to_dict()
    assert record["policy"] == {"name": "p", "digest": policy.policy.digest}
    assert record["policy"]["digest"].startswith("sha256:")
    assert len(record["policy"]["digest"]) == len("sha256:") + 64
