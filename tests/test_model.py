"""The policy model: its digest, a canonical form of what it means (POLICY_SPEC section 8)."""

from __future__ import annotations

import pytest
from policy_builders import HEAD

from policy_engine import (
    parse_policy,
)

# -- digest --------------------------------------------------------------------------


BLOCK_STYLE = """\
# a comment
version: 1
name: digest
min_confidence: 50
rules:
  - id: weapons   # trailing comment
    match:
      parent: Violence
    review_at: 50
    block_at: 90
"""

FLOW_STYLE = """\
{rules: [{block_at: 90.0, review_at: 50.0, match: {parent: Violence}, id: weapons}],
 name: digest, version: 1, min_confidence: 50.0, default: allow, on_error: review}
"""


def test_digest_equal_for_reformatted_policy() -> None:
    first, second = parse_policy(BLOCK_STYLE), parse_policy(FLOW_STYLE)
    assert first == second
    assert first.digest == second.digest


def test_digest_differs_for_a_changed_threshold() -> None:
    changed = BLOCK_STYLE.replace("block_at: 90", "block_at: 91")
    assert parse_policy(changed).digest != parse_policy(BLOCK_STYLE).digest
    assert parse_policy(changed) != parse_policy(BLOCK_STYLE)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("on_error: review", "on_error: block"),
        ("default: allow", "default: review"),
        ("min_confidence: 50.0", "min_confidence: 60"),
        ("parent: Violence", "name: Violence"),
    ],
)
def test_digest_differs_for_a_changed_meaning(before: str, after: str) -> None:
    changed = FLOW_STYLE.replace(before, after)
    assert changed != FLOW_STYLE
    assert parse_policy(changed).digest != parse_policy(FLOW_STYLE).digest


def test_equal_policies_have_equal_digests_even_with_detector_settings() -> None:
    # Policy.__eq__ and __hash__ must agree: equal policies have one digest.
    first = parse_policy(HEAD + "detectors: {stub: {level: 1}}\nrules: []\n")
    second = parse_policy(HEAD + "detectors: {stub: {level: true}}\nrules: []\n")
    assert (first == second) == (first.digest == second.digest)
    third = parse_policy(HEAD + "detectors: {stub: {level: 1.0}}\nrules: []\n")
    assert (first == third) == (first.digest == third.digest)
