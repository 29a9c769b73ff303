"""Compiling a policy and evaluating labels (POLICY_SPEC sections 1, 4, 5 and 6):
specificity, ancestors, aliases, verdicts, the decision, detector errors, purity."""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from policy_builders import FAILURE, HEAD, IMAGE, TAXONOMY, compiled, decide, label

from policy_engine import (
    CompiledPolicy,
    Detector,
    DetectorRegistry,
    DetectorResult,
    Engine,
    Image,
    Label,
    Taxonomy,
    TaxonomyEntry,
    parse_policy,
)
from policy_engine.detectors import DetectContext
from policy_engine.errors import InvalidDetectorResult
from policy_engine.model import Verdict
from policy_engine.plugins import RegisteredDetector

# -- specificity (section 4) ------------------------------------------------------


def test_name_and_parent_beats_name_alone() -> None:
    policy = compiled(
        "rules:\n"
        "  - {id: name, match: {name: Knife}, action: allow}\n"
        "  - {id: name-parent, match: {name: Knife, parent: Weapons}, action: block}\n"
    )
    assert decide(policy, label("Knife", 90, "Weapons")) == ("block", "name-parent")


def test_name_alone_beats_parent() -> None:
    policy = compiled(
        "rules:\n"
        "  - {id: category, match: {parent: Weapons}, action: block}\n"
        "  - {id: name, match: {name: Knife}, action: allow}\n"
    )
    assert decide(policy, label("Knife", 90, "Weapons")) == ("allow", "name")


def test_name_and_parent_beats_parent_alone_at_distance_zero() -> None:
    policy = compiled(
        "rules:\n"
        "  - {id: itself, match: {parent: Knife}, action: block}\n"
        "  - {id: name-parent, match: {name: Knife, parent: Weapons}, review_at: 50}\n"
    )
    assert decide(policy, label("Knife", 90, "Weapons")) == ("review", "name-parent")


def test_name_and_parent_requires_the_direct_parent() -> None:
    policy = compiled(
        "rules:\n"
        "  - {id: grandparent, match: {name: Knife, parent: Violence}, action: block}\n"
        "  - {id: name, match: {name: Knife}, review_at: 50}\n"
    )
    assert decide(policy, label("Knife", 90, "Weapons")) == ("review", "name")
    assert decide(policy, label("Knife", 90)) == ("review", "name")  # taxonomy: Weapons


def test_name_and_parent_uses_the_taxonomy_parent_when_none_reported() -> None:
    policy = compiled(
        "rules:\n  - {id: name-parent, match: {name: Knife, parent: Weapons}, action: block}\n"
    )
    assert decide(policy, label("Knife", 90)) == ("block", "name-parent")


def test_name_and_parent_does_not_select_a_label_with_another_parent() -> None:
    policy = compiled(
        "rules:\n  - {id: name-parent, match: {name: Knife, parent: Weapons}, action: block}\n"
    )
    assert decide(policy, label("Knife", 90, "Kitchen")) == ("allow", "default")


def test_nearest_parent_wins() -> None:
    policy = compiled(
        "rules:\n"
        "  - {id: violence, match: {parent: Violence}, action: block}\n"
        "  - {id: weapons, match: {parent: Weapons}, review_at: 50}\n"
    )
    assert decide(policy, label("Knife", 90, "Weapons")) == ("review", "weapons")
    assert decide(policy, label("Graphic Violence", 90, "Violence")) == ("block", "violence")


def test_parent_rule_selects_the_parent_label_itself_at_distance_zero() -> None:
    policy = compiled(
        "rules:\n"
        "  - {id: violence, match: {parent: Violence}, action: block}\n"
        "  - {id: weapons, match: {parent: Weapons}, review_at: 50}\n"
    )
    assert decide(policy, label("Weapons", 90, "Violence")) == ("review", "weapons")
    assert decide(policy, label("Violence", 90)) == ("block", "violence")


def test_parent_rule_reaches_grandchildren_through_the_taxonomy() -> None:
    policy = compiled("rules:\n  - {id: violence, match: {parent: Violence}, action: block}\n")
    assert decide(policy, label("Knife", 90, "Weapons")) == ("block", "violence")
    assert decide(policy, label("Knife", 90)) == ("block", "violence")


def test_parent_rule_does_not_select_unrelated_labels() -> None:
    policy = compiled("rules:\n  - {id: violence, match: {parent: Violence}, action: block}\n")
    assert decide(policy, label("Nudity", 90, "Explicit")) == ("allow", "default")


@pytest.mark.parametrize(
    ("plain", "scoped"),
    [
        ("{name: Knife}", "{name: Knife, source: stub}"),
        ("{parent: Weapons}", "{parent: Weapons, source: stub}"),
        ("{name: Knife, parent: Weapons}", "{name: Knife, parent: Weapons, source: stub}"),
    ],
)
@pytest.mark.parametrize("scoped_first", [True, False])
def test_source_beats_no_source_at_same_rank_and_distance(
    plain: str, scoped: str, scoped_first: bool
) -> None:
    rules = [
        f"  - {{id: plain, match: {plain}, action: allow}}\n",
        f"  - {{id: scoped, match: {scoped}, action: block}}\n",
    ]
    if scoped_first:
        rules.reverse()
    policy = compiled("rules:\n" + "".join(rules))
    assert decide(policy, label("Knife", 90, "Weapons", source="stub")) == ("block", "scoped")
    assert decide(policy, label("Knife", 90, "Weapons", source="other")) == ("allow", "plain")


def test_source_does_not_beat_a_more_specific_rank() -> None:
    policy = compiled(
        "rules:\n"
        "  - {id: category, match: {parent: Weapons, source: stub}, action: block}\n"
        "  - {id: name, match: {name: Knife}, action: allow}\n"
    )
    assert decide(policy, label("Knife", 90, "Weapons")) == ("allow", "name")


def test_source_does_not_beat_a_nearer_parent() -> None:
    policy = compiled(
        "rules:\n"
        "  - {id: far, match: {parent: Violence, source: stub}, action: block}\n"
        "  - {id: near, match: {parent: Weapons}, action: allow}\n"
    )
    assert decide(policy, label("Knife", 90, "Weapons")) == ("allow", "near")


def test_source_rule_never_selects_labels_of_another_detector() -> None:
    policy = compiled(
        "rules:\n  - {id: stub-only, match: {name: Knife, source: stub}, action: block}\n"
    )
    assert decide(policy, label("Knife", 90, source="other")) == ("allow", "default")


# -- ancestors (section 1) ----------------------------------------------------------


def test_reported_parent_overrides_the_taxonomy_direct_parent() -> None:
    policy = compiled(
        "rules:\n"
        "  - {id: weapons, match: {parent: Weapons}, action: block}\n"
        "  - {id: kitchen, match: {parent: Kitchen}, review_at: 50}\n"
    )
    assert decide(policy, label("Knife", 90, "Kitchen")) == ("review", "kitchen")


def test_labels_section_extends_an_empty_taxonomy() -> None:
    policy = compiled(
        "labels:\n  - {name: Knife Crime, parent: Crime}\n  - {name: Crime, parent: Bad Things}\n"
        "rules:\n  - {id: bad, match: {parent: Bad Things}, action: block}\n",
        taxonomy=None,
    )
    assert decide(policy, label("knife  crime", 90)) == ("block", "bad")


def test_labels_section_overrides_the_taxonomy_parent() -> None:
    policy = compiled(
        "labels:\n  - {name: Knife, parent: Kitchen}\n"
        "rules:\n"
        "  - {id: weapons, match: {parent: Weapons}, action: block}\n"
        "  - {id: kitchen, match: {parent: Kitchen}, action: allow}\n"
    )
    assert decide(policy, label("Knife", 90)) == ("allow", "kitchen")


def test_labels_section_overrides_ancestors_above_the_reported_parent() -> None:
    policy = compiled(
        "labels:\n  - {name: Weapons, parent: Crime}\n"
        "rules:\n"
        "  - {id: violence, match: {parent: Violence}, action: block}\n"
        "  - {id: crime, match: {parent: Crime}, review_at: 50}\n"
    )
    assert decide(policy, label("Knife", 90, "Weapons")) == ("review", "crime")


def test_labels_section_scoped_by_source_applies_only_to_that_source() -> None:
    policy = compiled(
        "labels:\n  - {name: Spoon, parent: Weapons, source: custom}\n"
        "rules:\n  - {id: weapons, match: {parent: Weapons}, action: block}\n"
    )
    assert decide(policy, label("Spoon", 90, source="custom")) == ("block", "weapons")
    assert decide(policy, label("Spoon", 90, source="stub")) == ("allow", "default")


def test_scoped_labels_entry_wins_over_unscoped_for_its_source() -> None:
    policy = compiled(
        "labels:\n"
        "  - {name: Spoon, parent: Kitchen}\n"
        "  - {name: Spoon, parent: Weapons, source: custom}\n"
        "rules:\n"
        "  - {id: weapons, match: {parent: Weapons}, action: block}\n"
        "  - {id: kitchen, match: {parent: Kitchen}, review_at: 50}\n"
    )
    assert decide(policy, label("Spoon", 90, source="custom")) == ("block", "weapons")
    assert decide(policy, label("Spoon", 90, source="stub")) == ("review", "kitchen")


def test_chain_ends_at_a_name_the_taxonomy_does_not_know() -> None:
    policy = compiled("rules:\n  - {id: violence, match: {parent: Violence}, action: block}\n")
    lab = label("Thing", 90, "Mystery")
    assert policy.lineage(lab).chain == ("thing", "mystery")
    assert decide(policy, lab) == ("allow", "default")


def _evaluate_in_thread(policy: CompiledPolicy, labels: list[Label]) -> Any:
    box: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: box.update(decision=policy.evaluate(labels)), daemon=True
    )
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "evaluation did not finish: the ancestor chain loops"
    return box["decision"]


def test_cycle_made_by_taxonomy_and_labels_together_ends_where_it_repeats() -> None:
    taxonomy = Taxonomy("cyc", (TaxonomyEntry("A", "B"), TaxonomyEntry("B", "")))
    policy = compiled(
        "labels:\n  - {name: B, parent: A}\n"
        "rules:\n  - {id: b, match: {parent: B}, action: block}\n",
        taxonomy=taxonomy,
    )
    decision = _evaluate_in_thread(policy, [label("A", 90)])
    assert decision.verdict == "block"
    assert policy.lineage(label("A", 90)).chain == ("a", "b")


def test_cycle_in_taxonomy_alone_does_not_hang() -> None:
    taxonomy = Taxonomy(
        "cyc", (TaxonomyEntry("A", "B"), TaxonomyEntry("B", "C"), TaxonomyEntry("C", "A"))
    )
    policy = compiled("rules:\n  - {id: c, match: {parent: C}, review_at: 50}\n", taxonomy=taxonomy)
    decision = _evaluate_in_thread(policy, [label("A", 90)])
    assert decision.verdict == "review"
    assert policy.lineage(label("A", 90)).chain == ("a", "b", "c")


def test_label_reported_as_its_own_parent_does_not_loop() -> None:
    policy = compiled(
        "rules:\n"
        "  - {id: gambling, match: {parent: Gambling}, review_at: 50}\n"
        "  - {id: other, match: {parent: Violence}, action: block}\n"
    )
    decision = _evaluate_in_thread(policy, [label("Gambling", 90, "Gambling")])
    assert decision.verdict == "review"
    assert policy.lineage(label("Gambling", 90, "Gambling")).chain == ("gambling",)


# -- aliases ------------------------------------------------------------------------


def test_rule_on_an_alias_matches_the_canonical_label() -> None:
    policy = compiled("rules:\n  - {id: w, match: {name: Weapon}, action: block}\n")
    assert decide(policy, label("Weapons", 90, "Violence")) == ("block", "w")


def test_rule_on_the_canonical_name_matches_a_label_spelt_as_the_alias() -> None:
    policy = compiled("rules:\n  - {id: w, match: {name: Weapons}, action: block}\n")
    assert decide(policy, label("weapon", 90, "Violence")) == ("block", "w")


def test_parent_rule_on_an_alias_matches_the_category() -> None:
    policy = compiled("rules:\n  - {id: w, match: {parent: weapon}, action: block}\n")
    assert decide(policy, label("Knife", 90, "Weapons")) == ("block", "w")
    assert decide(policy, label("Blade", 90)) == ("block", "w")


def test_name_and_parent_rule_compares_both_through_aliases() -> None:
    policy = compiled("rules:\n  - {id: w, match: {name: Blade, parent: Weapon}, action: block}\n")
    assert decide(policy, label("Knife", 90, "Weapons")) == ("block", "w")


def test_names_in_rules_compare_case_and_space_insensitively() -> None:
    policy = compiled("rules:\n  - {id: g, match: {name: '  GRAPHIC   violence'}, action: block}\n")
    assert decide(policy, label("Graphic Violence", 90, "Violence")) == ("block", "g")


# -- verdicts (section 5) -----------------------------------------------------------


def test_rules_do_not_combine_narrow_rule_leaves_band_off() -> None:
    policy = compiled(
        "rules:\n"
        "  - {id: weapons, match: {parent: Weapons}, review_at: 50, block_at: 80}\n"
        "  - {id: knife, match: {name: Knife}, review_at: 60}\n"
    )
    assert decide(policy, label("Knife", 99, "Weapons")) == ("review", "knife")
    assert decide(policy, label("Knife", 55, "Weapons")) == ("allow", "knife")


def test_block_threshold_is_inclusive_and_exact() -> None:
    policy = compiled("rules:\n  - {id: k, match: {name: Knife}, review_at: 60, block_at: 80}\n")
    assert decide(policy, label("Knife", 80)) == ("block", "k")
    assert decide(policy, label("Knife", 80 - 1e-9)) == ("review", "k")


def test_review_threshold_is_inclusive_and_exact() -> None:
    policy = compiled("rules:\n  - {id: k, match: {name: Knife}, review_at: 60.5}\n")
    assert decide(policy, label("Knife", 60.5)) == ("review", "k")
    assert decide(policy, label("Knife", 60.5 - 1e-9)) == ("allow", "k")


def test_block_only_rule_never_reviews() -> None:
    policy = compiled("rules:\n  - {id: k, match: {name: Knife}, block_at: 90}\n")
    assert decide(policy, label("Knife", 89.9)) == ("allow", "k")
    assert decide(policy, label("Knife", 90)) == ("block", "k")


def test_label_below_min_confidence_is_dropped_without_verdict() -> None:
    policy = compiled(
        "min_confidence: 70\nrules:\n  - {id: k, match: {name: Knife}, action: block}\n"
    )
    below = label("Knife", 70 - 1e-9)
    decision = policy.evaluate([below])
    assert decision.verdict == "allow"
    assert decision.outcomes() == ()
    assert decision.dropped == (below,)
    assert decision.to_dict()["labels"] == []
    assert decision.to_dict()["dropped"][0]["name"] == "Knife"


def test_label_at_min_confidence_is_kept() -> None:
    policy = compiled(
        "min_confidence: 70\nrules:\n  - {id: k, match: {name: Knife}, action: block}\n"
    )
    decision = policy.evaluate([label("Knife", 70)])
    assert decision.verdict == "block"
    assert decision.dropped == ()


def test_default_min_confidence_is_50() -> None:
    policy = compiled("rules:\n  - {id: k, match: {name: Knife}, action: block}\n")
    assert policy.evaluate([label("Knife", 49.99)]).verdict == "allow"
    assert policy.evaluate([label("Knife", 50)]).verdict == "block"


@pytest.mark.parametrize("confidence", [0, 1e-9, 30, 50, 99.999, 100])
def test_action_review_equals_review_at_zero(confidence: float) -> None:
    text = "min_confidence: 0\nrules:\n  - {id: k, match: {name: Knife}, %s}\n"
    action = compiled(text % "action: review")
    threshold = compiled(text % "review_at: 0")
    assert decide(action, label("Knife", confidence)) == decide(
        threshold, label("Knife", confidence)
    )
    assert decide(action, label("Knife", confidence)) == ("review", "k")


@pytest.mark.parametrize("confidence", [0, 1e-9, 30, 50, 99.999, 100])
def test_action_block_equals_block_at_zero(confidence: float) -> None:
    text = "min_confidence: 0\nrules:\n  - {id: k, match: {name: Knife}, %s}\n"
    action = compiled(text % "action: block")
    threshold = compiled(text % "block_at: 0")
    assert decide(action, label("Knife", confidence)) == decide(
        threshold, label("Knife", confidence)
    )
    assert decide(action, label("Knife", confidence)) == ("block", "k")


@pytest.mark.parametrize("confidence", [50, 99, 100])
def test_action_allow_allows_at_any_confidence(confidence: float) -> None:
    policy = compiled("default: block\nrules:\n  - {id: k, match: {name: Knife}, action: allow}\n")
    assert decide(policy, label("Knife", confidence)) == ("allow", "k")


def test_default_body_decides_unmatched_labels() -> None:
    policy = compiled(
        "default: {review_at: 60, block_at: 90}\n"
        "rules:\n  - {id: k, match: {name: Knife}, action: allow}\n"
    )
    assert decide(policy, label("Nudity", 59)) == ("allow", "default")
    assert decide(policy, label("Nudity", 60)) == ("review", "default")
    assert decide(policy, label("Nudity", 90)) == ("block", "default")
    assert decide(policy, label("Knife", 99)) == ("allow", "k")


def test_default_bare_string_block() -> None:
    policy = compiled("default: block\nrules: []\n")
    assert decide(policy, label("Anything", 50)) == ("block", "default")


def test_default_is_allow() -> None:
    policy = compiled("rules: []\n")
    assert decide(policy, label("Anything", 100)) == ("allow", "default")


# -- the decision ----------------------------------------------------------------


def test_no_labels_and_no_errors_is_allow() -> None:
    decision = compiled("default: block\nrules: []\n").evaluate([])
    assert decision.verdict == "allow"
    assert decision.reasons() == ()
    assert decision.to_dict()["reasons"] == []


def test_decision_is_the_most_severe_verdict() -> None:
    policy = compiled(
        "rules:\n"
        "  - {id: r, match: {name: R}, action: review}\n"
        "  - {id: b, match: {name: B}, action: block}\n"
        "  - {id: a, match: {name: A}, action: allow}\n"
    )
    assert policy.evaluate([label("A", 90), label("R", 90)]).verdict == "review"
    assert policy.evaluate([label("A", 90), label("R", 90), label("B", 60)]).verdict == "block"
    assert policy.evaluate([label("A", 90)]).verdict == "allow"


def test_each_ancestor_label_is_decided_by_its_own_rule() -> None:
    policy = compiled(
        "rules:\n"
        "  - {id: explicit, match: {parent: Explicit}, action: block}\n"
        "  - {id: nudity-ok, match: {name: Nudity}, action: allow}\n"
    )
    decision = policy.evaluate([label("Nudity", 90, "Explicit"), label("Explicit", 90)])
    assert decision.verdict == "block"
    assert [(o.label.name, o.verdict.value, o.rule) for o in decision.outcomes()] == [
        ("Nudity", "allow", "nudity-ok"),
        ("Explicit", "block", "explicit"),
    ]


# -- detector errors (section 6) -----------------------------------------------------


@pytest.mark.parametrize(
    ("on_error", "expected"), [("allow", "allow"), ("review", "review"), ("block", "block")]
)
def test_on_error_is_the_verdict_of_a_failure(on_error: str, expected: str) -> None:
    policy = compiled(f"on_error: {on_error}\nrules: []\n")
    assert policy.evaluate([], [FAILURE]).verdict == expected


def test_failure_with_default_on_error_never_allows() -> None:
    policy = compiled("rules: []\n")
    assert policy.evaluate([label("Harmless", 99)], [FAILURE]).verdict == "review"


def test_failure_does_not_lower_a_block_from_labels() -> None:
    policy = compiled("rules:\n  - {id: k, match: {name: Knife}, action: block}\n")
    assert policy.evaluate([label("Knife", 90)], [FAILURE]).verdict == "block"


def test_on_error_allow_lists_the_error_but_gives_no_reason() -> None:
    record = compiled("on_error: allow\nrules: []\n").evaluate([], [FAILURE]).to_dict()
    assert record["decision"] == "allow"
    assert record["errors"] == [
        {"source": "broken", "error": "boom", "code": "plugin-exception", "retryable": False}
    ]
    assert record["reasons"] == []


def test_failure_reason_has_rule_on_error_source_and_error() -> None:
    record = compiled("on_error: block\nrules: []\n").evaluate([], [FAILURE]).to_dict()
    assert record["reasons"] == [
        {"verdict": "block", "rule": "on_error", "source": "broken", "error": "boom"}
    ]
    assert [e["source"] for e in record["errors"]] == ["broken"]


# -- purity --------------------------------------------------------------------------


def test_evaluation_does_not_mutate_inputs() -> None:
    policy = compiled("rules:\n  - {id: k, match: {name: Knife}, block_at: 90}\n")
    labels = [label("Knife", 95, "Weapons"), label("Low", 10), label("Other", 60)]
    failures = [FAILURE]
    detectors = {"stub": {"model": "x"}}
    before = ([x.to_dict() for x in labels], list(failures), copy.deepcopy(detectors))
    ids_before = [id(x) for x in labels]
    first = policy.evaluate(labels, failures, detectors).to_dict()
    assert ([x.to_dict() for x in labels], failures, detectors) == before
    assert [id(x) for x in labels] == ids_before
    assert policy.evaluate(labels, failures, detectors).to_dict() == first


def test_evaluation_accepts_any_iterable() -> None:
    policy = compiled("rules:\n  - {id: k, match: {name: Knife}, block_at: 90}\n")
    assert policy.evaluate(iter([label("Knife", 95)]), iter([])).verdict == "block"


def test_verdict_is_a_string_enum() -> None:
    assert Verdict.BLOCK == "block"
    assert Verdict.BLOCK.severity > Verdict.REVIEW.severity > Verdict.ALLOW.severity


def test_reasons_do_not_depend_on_label_order_when_confidences_tie() -> None:
    policy = compiled("rules:\n  - {id: k, match: {name: Knife}, action: block}\n")
    one, two = label("Knife", 90, "Weapons"), label("Knife", 90, "Kitchen")
    forward = policy.evaluate([one, two]).to_dict()["reasons"]
    backward = policy.evaluate([two, one]).to_dict()["reasons"]
    assert forward == backward


def test_labels_entry_written_with_an_alias_places_the_canonical_label() -> None:
    # "Blade" is the taxonomy's alias of "Knife": an entry for either spelling places both
    policy = compiled(
        "labels:\n  - {name: Blade, parent: Kitchen}\n"
        "rules:\n  - id: kitchen\n    match: {parent: Kitchen}\n    action: allow\n"
        "  - id: weapons\n    match: {parent: Weapons}\n    action: block\n"
    )
    assert decide(policy, label("Knife", 90)) == ("allow", "kitchen")
    assert decide(policy, label("Blade", 90)) == ("allow", "kitchen")


def test_labels_entry_parent_written_with_an_alias_joins_the_canonical_category() -> None:
    policy = compiled(
        "labels:\n  - {name: Cleaver, parent: Blade}\n"
        "rules:\n  - id: knives\n    match: {parent: Knife}\n    action: block\n"
    )
    assert decide(policy, label("Cleaver", 90)) == ("block", "knives")


def test_engine_refuses_settings_the_detector_refuses_even_if_loaded_without_registry() -> None:
    from policy_engine.errors import PolicyDetectorsError

    class Strict(Detector):
        name = "strict"
        settings_schema: ClassVar[Mapping[str, Any]] = {"type": "object", "required": ["folder"]}

        def detect(self, image: Image, context: DetectContext) -> DetectorResult:
            raise AssertionError("never called: the engine must refuse to start")

    registry = DetectorRegistry([RegisteredDetector(Strict(), "p")])
    policy = parse_policy(HEAD + "detectors: {strict: {}}\nrules: []\n")  # no registry here
    with pytest.raises(
        PolicyDetectorsError,
        match=r"error\[missing-key\]: detectors\.strict: missing required key 'folder'",
    ):
        Engine(policy, registry)


def test_engine_refuses_rules_that_are_one_match_under_the_detectors_aliases() -> None:
    from policy_engine.errors import PolicyDetectorsError

    class Aliased(Detector):
        name = "aliased"

        def taxonomies(self) -> tuple[Taxonomy, ...]:
            return (TAXONOMY,)

    registry = DetectorRegistry([RegisteredDetector(Aliased(), "p")])
    policy = parse_policy(
        HEAD + "detectors: {aliased: {}}\nrules:\n"
        "  - {id: a, match: {name: Knife}, action: allow}\n"
        "  - {id: b, match: {name: Blade}, action: block}\n"
    )
    with pytest.raises(
        PolicyDetectorsError,
        match=r"6:5: error\[duplicate-match\]: rule 'b' has the same match as rule 'a'",
    ):
        Engine(policy, registry)


def test_engine_turns_a_plugin_taxonomy_failure_into_that_detectors_error() -> None:
    class Broken(Detector):
        name = "broken"

        def taxonomy(self, model_version: str | None) -> Taxonomy | None:
            raise KeyError(model_version)

        def detect(self, image: Image, context: DetectContext) -> DetectorResult:
            return DetectorResult("broken", (Label("X", 99.0, "broken", model_version="9"),))

    registry = DetectorRegistry([RegisteredDetector(Broken(), "p")])
    policy = parse_policy(HEAD + "detectors: {broken: {}}\nrules: []\n")
    decision = Engine(policy, registry).check(IMAGE)
    assert decision.verdict == "review"
    assert decision.failures[0].source == "broken"


def test_engine_refuses_subclassed_results_and_labels() -> None:
    class Sneaky(DetectorResult):
        __slots__ = ()

    class Spoofing(Detector):
        name = "spoofing"

        def detect(self, image: Image, context: DetectContext) -> DetectorResult:
            return Sneaky("spoofing", (Label("Violence", 99.0, "spoofing"),))

    registry = DetectorRegistry([RegisteredDetector(Spoofing(), "p")])
    policy = parse_policy(HEAD + "detectors: {spoofing: {}}\nrules: []\n")
    decision = Engine(policy, registry).check(IMAGE)
    assert decision.verdict == "review"
    assert decision.failures[0].code == "invalid-result"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"model_version": ["7"]}, "model_version"),
        ({"source": ""}, "source"),
    ],
)
def test_label_fields_have_their_types(options: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"name": "X", "confidence": 50.0, "source": "s", **options}
    with pytest.raises(InvalidDetectorResult) as info:
        Label(**arguments)
    assert info.value.field == field


def test_a_detectors_extras_never_overwrite_the_evaluated_fields() -> None:
    label = Label("Weapons", 95.0, "det", extra={"name": "Cat", "confidence": 1, "box": {"w": 1}})
    record = label.to_dict()
    assert (record["name"], record["confidence"], record["source"]) == ("Weapons", 95.0, "det")
    record["box"]["w"] = 0
    assert label.to_dict()["box"] == {"w": 1}  # the record is a copy


def test_digest_ignores_rule_order_and_integral_settings_numbers() -> None:
    rules = [
        "  - {id: a, match: {name: X}, action: block}\n",
        "  - {id: b, match: {name: Y}, action: allow}\n",
    ]
    first = parse_policy(HEAD + "detectors: {d: {t: 5}}\nrules:\n" + "".join(rules))
    second = parse_policy(HEAD + "detectors: {d: {t: 5.0}}\nrules:\n" + "".join(rules[::-1]))
    assert first.digest == second.digest


def test_parent_named_only_in_labels_keeps_its_spelling_in_the_record() -> None:
    policy = compiled("labels:\n  - {name: Widget, parent: My Category}\nrules: []\n", None)
    decision = policy.evaluate([label("Widget", 90)])
    assert decision.to_dict()["labels"][0]["parent"] == "My Category"
