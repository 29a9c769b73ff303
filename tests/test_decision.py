"""The decision record's value semantics: the verdict's name, equality that
includes the deciding policy, and pickling (for process pools and queues)."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine import (
    CompiledPolicy,
    Decision,
    DetectorFailure,
    DetectorResult,
    Label,
    Taxonomy,
    TaxonomyEntry,
    parse_policy,
)
from policy_engine.decision import Resolution
from policy_engine.model import Verdict

TAXONOMY = Taxonomy(
    "test/v1",
    (
        TaxonomyEntry("Violence", ""),
        TaxonomyEntry("Weapons", "Violence"),
        TaxonomyEntry("Knife", "Weapons"),
        TaxonomyEntry("Explicit", ""),
        TaxonomyEntry("Nudity", "Explicit"),
    ),
)

RULES = (
    "min_confidence: 40\n"
    "on_error: review\n"
    "rules:\n"
    "  - {id: weapons, match: {parent: Weapons}, review_at: 60, block_at: 90}\n"
    "  - {id: nudity, match: {name: Nudity}, action: block}\n"
    "  - {id: gambling, match: {name: Gambling, source: other}, review_at: 50}\n"
)


def compiled(name: str = "p", rules: str = RULES) -> CompiledPolicy:
    policy = parse_policy(f"version: 1\nname: {name}\n{rules}")
    return CompiledPolicy(policy, lambda source, model_version: TAXONOMY)


POLICY = compiled()
NAMES = ["Knife", "Weapons", "Nudity", "Gambling", "Unknown thing", "Explicit"]
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=6)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)

labels = st.builds(
    Label,
    name=st.sampled_from(NAMES),
    confidence=st.floats(min_value=0, max_value=100),
    source=st.sampled_from(["stub", "other"]),
    parent=st.sampled_from(["", "Weapons", "Explicit"]),
    model_version=st.none() | st.sampled_from(["6.1", "7.0"]),
    extra=st.dictionaries(st.text(max_size=4), JSON, max_size=3),
)
failures = st.builds(
    DetectorFailure,
    source=st.sampled_from(["stub", "other"]),
    error=st.text(max_size=20),
    code=st.sampled_from(["detector-error", "timeout"]),
    retryable=st.booleans(),
)
metadata = st.dictionaries(st.sampled_from(["model_version", "adapter"]), JSON, max_size=2)
SETTINGS = settings(max_examples=60, deadline=None, database=None)


def decisions() -> st.SearchStrategy[Decision]:
    return st.builds(
        POLICY.evaluate,
        st.lists(labels, max_size=5),
        st.lists(failures, max_size=2),
        st.dictionaries(st.sampled_from(["stub", "other"]), metadata, max_size=2),
    )


@SETTINGS
@given(decisions())
def test_a_decision_survives_pickle_and_deepcopy(decision: Decision) -> None:
    """A copy equals the decision and gives the same record, reasons and
    outcomes, without the compiled policy (nor its registry) going along."""
    for copied in (pickle.loads(pickle.dumps(decision)), copy.deepcopy(decision)):
        assert copied == decision and hash(copied) == hash(decision)
        assert copied.to_dict() == decision.to_dict()
        assert copied.reasons() == decision.reasons()
        assert copied.outcomes() == decision.outcomes()
        assert not isinstance(copied.policy, CompiledPolicy)
        with pytest.raises(TypeError):
            copied.detectors["added"] = {}  # type: ignore[index]
        for meta in copied.detectors.values():
            with pytest.raises(TypeError):
                meta["added"] = 1  # type: ignore[index]


@SETTINGS
@given(
    source=st.sampled_from(["stub", "other"]),
    found=st.lists(labels, max_size=4),
    meta=metadata,
    raw=st.none() | st.dictionaries(st.text(max_size=6), JSON, max_size=3),
)
def test_a_detector_result_survives_pickle_and_deepcopy(
    source: str, found: list[Label], meta: dict[str, Any], raw: dict[str, Any] | None
) -> None:
    result = DetectorResult(source, tuple(found), meta, raw)
    for copied in (pickle.loads(pickle.dumps(result)), copy.deepcopy(result)):
        assert copied == result
        assert copied.raw == result.raw
        with pytest.raises(TypeError):
            copied.metadata["added"] = 1  # type: ignore[index]


def test_equal_decisions_need_the_same_policy_name_and_digest() -> None:
    found = [Label("Knife", 95, "stub", parent="Weapons")]
    same = POLICY.evaluate(found)
    assert same == compiled().evaluate(found)  # the same policy compiled again
    renamed = compiled(name="q").evaluate(found)
    assert renamed.verdict is same.verdict and renamed.labels == same.labels
    assert renamed != same  # another policy's name
    changed = compiled(rules=RULES + "  - {id: extra, match: {name: Other}, action: allow}\n")
    other_digest = changed.evaluate(found)
    assert other_digest.policy_name == same.policy_name
    assert other_digest.verdict is same.verdict and other_digest != same  # another digest


def test_decision_is_a_deprecated_alias_of_verdict() -> None:
    decision = POLICY.evaluate([Label("Nudity", 80, "stub")])
    assert decision.verdict is Verdict.BLOCK
    with pytest.warns(DeprecationWarning, match="Decision.verdict"):
        assert decision.decision is Verdict.BLOCK


def test_a_resolution_names_its_fields() -> None:
    resolution = POLICY.resolve(Label("Knife", 70, "stub", parent="Weapons"))
    assert isinstance(resolution, Resolution)
    assert (resolution.block_from, resolution.review_from) == (90.0, 60.0)
    assert (resolution.rule, resolution.parent) == ("weapons", "Weapons")
