"""Alias spellings (two spellings of one label in a taxonomy) are one name in a policy:
in the duplicate and cycle checks of labels:, in the matchers, in compiling and in the
digest, so that equal digests mean equal decisions (POLICY_SPEC 1, 2, 4, 8)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine import Label, PolicyLoadError, parse_policy
from policy_engine.compiler import compile_policy
from policy_engine.engine import Engine
from policy_engine.errors import PolicyDetectorsError
from policy_engine.loader import check_policy_text
from policy_engine.model import Policy
from policy_engine.names import alias_keys
from policy_engine.plugins import DetectorRegistry

ALIAS = "Drug & Tobacco Paraphernalia & Use"
CANONICAL = "Drugs & Tobacco Paraphernalia & Use"
MODERATION = "rekognition-moderation"
CUSTOM = "rekognition-custom-labels"
ARN = "arn:aws:rekognition:eu-west-1:123456789012:project/l/version/l.1/1"
HEAD = (
    "version: 1\nname: p\ndetectors:\n  rekognition-moderation: {}\n"
    f"  rekognition-custom-labels:\n    project_version_arn: {ARN}\n"
)


@pytest.fixture(scope="module")
def registry() -> DetectorRegistry:
    return DetectorRegistry.installed()


def load(text: str, registry: DetectorRegistry) -> Policy:
    return parse_policy(text, "p.yaml", registry=registry)


def error_codes(text: str, registry: DetectorRegistry) -> list[str]:
    return [d.code for d in check_policy_text(text, "p.yaml", registry=registry).errors]


def test_alias_keys_follow_chains_and_drop_cycles() -> None:
    assert alias_keys([("A", "B"), ("b", "C"), ("X", "x"), ("P", "Q"), ("Q", "P")]) == {
        "a": "c",
        "b": "c",
    }


# -- labels: ----------------------------------------------------------------------


def test_labels_entries_for_both_spellings_are_one_label_placed_twice(
    registry: DetectorRegistry,
) -> None:
    # before: both loaded, the last one won, and the order of the two changed decisions
    text = (
        HEAD + "labels:\n"
        f"  - {{name: {ALIAS}, parent: Drugs & Tobacco}}\n"
        f"  - {{name: {CANONICAL}, parent: Violence}}\n"
        "rules: []\n"
    )
    result = check_policy_text(text, "p.yaml", registry=registry)
    assert [(d.code, d.line) for d in result.errors] == [("duplicate-label", 9)]
    assert "another spelling of the same label" in result.errors[0].message


def test_entries_for_both_spellings_for_different_sources_are_fine(
    registry: DetectorRegistry,
) -> None:
    text = (
        HEAD + "labels:\n"
        f"  - {{name: {ALIAS}, parent: Drugs & Tobacco, source: {CUSTOM}}}\n"
        f"  - {{name: {CANONICAL}, parent: Violence}}\n"
        "rules: []\n"
    )
    assert error_codes(text, registry) == []


def test_a_labels_cycle_through_the_alias_pair_is_a_load_error(
    registry: DetectorRegistry,
) -> None:
    text = (
        HEAD + "labels:\n"
        f"  - {{name: Vaping, parent: {ALIAS}}}\n"
        f"  - {{name: {CANONICAL}, parent: Vaping}}\n"
        "rules: []\n"
    )
    assert error_codes(text, registry) == ["label-cycle"]
    with pytest.raises(PolicyLoadError):
        load(text, registry)


def test_rules_on_both_spellings_are_one_matcher(registry: DetectorRegistry) -> None:
    text = (
        HEAD + "rules:\n"
        f"  - id: a\n    match: {{parent: {ALIAS}, source: {CUSTOM}}}\n    block_at: 80\n"
        f"  - id: b\n    match: {{parent: {CANONICAL}, source: {CUSTOM}}}\n    review_at: 50\n"
    )
    assert error_codes(text, registry) == ["duplicate-match"]


# -- the digest and the decisions ----------------------------------------------------


def test_alias_spellings_give_one_digest(registry: DetectorRegistry) -> None:
    def policy(spelling: str) -> str:
        return (
            HEAD + "labels:\n"
            f"  - {{name: Vaping, parent: {spelling}, source: {CUSTOM}}}\n"
            "rules:\n"
            f"  - id: a\n    match: {{parent: {spelling}}}\n    block_at: 80\n"
        )

    assert load(policy(ALIAS), registry).digest == load(policy(CANONICAL), registry).digest
    # and a policy that means something else has another digest
    other = policy(CANONICAL).replace("block_at: 80", "block_at: 81")
    assert load(other, registry).digest != load(policy(CANONICAL), registry).digest


@pytest.mark.parametrize("source", [MODERATION, CUSTOM])
@pytest.mark.parametrize("model_version", [None, "7.0", "6.1"])
def test_either_spelling_decides_alike_whatever_the_detector(
    registry: DetectorRegistry, source: str, model_version: str | None
) -> None:
    # a custom labels model (no taxonomy) and model 6 (whose taxonomy has no alias)
    # included: one digest must mean one decision for every label
    decisions = []
    for spelling in (ALIAS, CANONICAL):
        policy = load(
            HEAD + f"rules:\n  - id: a\n    match: {{name: {spelling}}}\n    block_at: 80\n",
            registry,
        )
        compiled = compile_policy(policy, registry)
        decisions.append(
            [
                compiled.evaluate([Label(name, 90.0, source, model_version=model_version)]).verdict
                for name in (ALIAS, CANONICAL)
            ]
        )
    assert decisions[0] == decisions[1] == ["block", "block"]


def test_an_engine_checks_the_names_of_a_policy_loaded_without_taxonomies(
    registry: DetectorRegistry,
) -> None:
    text = (
        "version: 1\nname: p\ndetectors: {rekognition-moderation: {}}\nrules:\n"
        "  - id: e\n    match: {parent: Explicitt}\n    block_at: 80\n"
    )
    policy = parse_policy(text, "p.yaml")  # no registry: the name cannot be checked here
    with pytest.raises(PolicyDetectorsError, match=r"p.yaml:5:5: error\[unknown-parent\]"):
        Engine(policy, registry)
    Engine(load(text.replace("Explicitt", "Explicit"), registry), registry)


# -- the property ----------------------------------------------------------------------

NAMES = [CANONICAL, "Smoking", "Drugs & Tobacco", "Products", "Violence", "Vaping"]
PROPERTY = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def respelt(draw: st.DrawFn, name: str) -> str:
    """``name`` in another of its spellings: the alias, the case, the spaces."""
    if name == CANONICAL:
        name = draw(st.sampled_from([ALIAS, CANONICAL]))
    return draw(st.sampled_from([name, name.upper(), name.lower(), f"  {name} "]))


@st.composite
def shapes(draw: st.DrawFn) -> dict[str, Any]:
    """A policy's structure over NAMES, spelt canonically (one spelling per name)."""
    rules: list[dict[str, Any]] = []
    seen: set[tuple[str | None, str | None, str | None]] = set()
    for index in range(draw(st.integers(1, 5))):
        name = draw(st.sampled_from([None, *NAMES]))
        parent = draw(st.sampled_from([None, *NAMES])) if name is not None else None
        parent = parent if name is not None else draw(st.sampled_from(NAMES))
        source = draw(st.sampled_from([None, MODERATION, CUSTOM]))
        if (name, parent, source) in seen:
            continue
        seen.add((name, parent, source))
        body = draw(st.sampled_from([{"block_at": 80}, {"review_at": 60}, {"action": "allow"}]))
        match = {k: v for k, v in (("name", name), ("parent", parent)) if v is not None}
        if source is not None:
            match["source"] = source
        rules.append({"id": f"r{index}", "match": match, **body})
    # Vaping is the policy's own label (rules may name it), placed for every detector
    # and maybe otherwise for custom labels
    labels: list[dict[str, Any]] = [{"name": "Vaping", "parent": draw(st.sampled_from(NAMES[:4]))}]
    if draw(st.booleans()):
        labels.append(
            {"name": "Vaping", "parent": draw(st.sampled_from(NAMES[:4])), "source": CUSTOM}
        )
    return {"rules": rules, "labels": labels}


def written(draw: st.DrawFn, shape: dict[str, Any]) -> str:
    """The policy's text with every name respelt independently."""
    rules = []
    for rule in shape["rules"]:
        match = dict(rule["match"])
        for key in ("name", "parent"):
            if key in match:
                match[key] = respelt(draw, match[key])
        rules.append({**rule, "match": match})
    labels = [
        {**entry, "name": respelt(draw, entry["name"]), "parent": respelt(draw, entry["parent"])}
        for entry in shape["labels"]
    ]
    data: dict[str, Any] = {
        "version": 1,
        "name": "generated",
        "detectors": {MODERATION: {}, CUSTOM: {"project_version_arn": ARN}},
        "labels": labels,
        "rules": rules,
    }
    return yaml.safe_dump(data, sort_keys=False)


label_sets = st.lists(
    st.builds(
        Label,
        name=st.sampled_from([ALIAS, *NAMES]),
        confidence=st.sampled_from([55.0, 70.0, 90.0]),
        source=st.sampled_from([MODERATION, CUSTOM]),
        parent=st.sampled_from(["", ALIAS, *NAMES]),
        model_version=st.sampled_from([None, "7.0", "6.1"]),
    ),
    max_size=4,
)


@PROPERTY
@given(data=st.data())
def test_equal_digests_mean_equal_decisions(data: st.DataObject) -> None:
    registry = DetectorRegistry.installed()
    shape = data.draw(shapes())
    one = check_policy_text(written(data.draw, shape), "a.yaml", registry=registry).policy
    two = check_policy_text(written(data.draw, shape), "b.yaml", registry=registry).policy
    assert (one is None) == (two is None)  # a labels: cycle is refused whatever the spelling
    if one is None or two is None:
        return
    assert one.digest == two.digest
    compiled_one, compiled_two = compile_policy(one, registry), compile_policy(two, registry)
    for labels in data.draw(st.lists(label_sets, min_size=1, max_size=3)):
        a, b = compiled_one.evaluate(labels), compiled_two.evaluate(labels)
        assert a.verdict == b.verdict
        assert [(o.verdict, o.rule) for o in a.outcomes()] == [
            (o.verdict, o.rule) for o in b.outcomes()
        ]
