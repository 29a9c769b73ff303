"""The linter (POLICY_SPEC section 7): each warning fires exactly where it should,
never on the reference policies, and never stops a policy from loading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from policy_engine.diagnostics import DIAGNOSTIC_CODES, Severity
from policy_engine.errors import PolicyLoadError
from policy_engine.loader import check_policy_file, check_policy_text, parse_policy
from policy_engine.plugins import DetectorRegistry

MAIN = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "warnings"
CASES = sorted(GOLDEN.glob("*.yaml"))
FILE = "p.yaml"


@pytest.fixture(scope="module")
def registry() -> DetectorRegistry:
    return DetectorRegistry.installed()


def policy(rules: str, head: str = "") -> str:
    return f"version: 1\nname: p\n{head}rules:\n{rules}"


def warnings(text: str, registry: DetectorRegistry | None) -> list[tuple[str, int, int]]:
    """The warnings, but no-detectors: most policies here name none, to see rules
    against every installed detector (no-detectors has tests of its own)."""
    result = check_policy_text(text, FILE, registry=registry)
    assert result.errors == (), result.errors
    assert result.policy is not None  # warnings never stop a policy from loading
    return [(d.code, d.line, d.column) for d in result.warnings if d.code != "no-detectors"]


def messages(text: str, registry: DetectorRegistry | None, code: str) -> list[str]:
    result = check_policy_text(text, FILE, registry=registry)
    return [d.message for d in result.diagnostics if d.code == code]


# -- golden cases ----------------------------------------------------------------


def test_there_is_a_golden_case_for_every_warning() -> None:
    codes = {
        c
        for c, info in DIAGNOSTIC_CODES.items()
        if info.severity is Severity.WARNING
        and not c.startswith("migrate-")
        and info.topic != "policy sets"  # a set's warnings: tests/test_policy_set.py
    }
    # unknown names are errors, and warnings where they cannot be checked or are acknowledged
    codes |= {"unknown-name", "unknown-parent"}
    found = set()
    for case in CASES:
        text = case.with_suffix(".diagnostics.txt").read_text(encoding="utf-8")
        found.update(re.findall(r"warning\[([a-z0-9-]+)\]", text))
    assert found == codes


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_golden_warnings(
    case: Path, registry: DetectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(case.parent)
    expected = case.with_suffix(".diagnostics.txt").read_text(encoding="utf-8").splitlines()
    result = check_policy_file(case.name, registry=registry)
    assert result.policy is not None
    assert [d.render() for d in result.diagnostics] == expected


# -- unknown-name / unknown-parent ------------------------------------------------


def test_unknown_name_suggests_the_nearest_known_spelling(registry: DetectorRegistry) -> None:
    text = policy("  - id: w\n    match: {name: weapon violense}\n    block_at: 90\n")
    assert warnings(text, registry) == [("unknown-name", 5, 19)]
    assert "did you mean 'Weapon Violence'?" in messages(text, registry, "unknown-name")[0]


def test_unknown_names_need_a_registry() -> None:
    text = policy("  - id: w\n    match: {name: Nonsense}\n    block_at: 90\n")
    assert warnings(text, None) == []


def test_a_name_from_labels_is_known(registry: DetectorRegistry) -> None:
    head = "labels:\n  - {name: Toy Gun, parent: Weapons}\n"
    text = policy("  - id: w\n    match: {name: Toy Gun}\n    block_at: 90\n", head)
    assert warnings(text, registry) == []


def test_an_alias_is_known(registry: DetectorRegistry) -> None:
    text = policy(
        "  - id: w\n    match: {parent: Drug & Tobacco Paraphernalia & Use}\n    block_at: 90\n"
    )
    assert warnings(text, registry) == []


def test_custom_label_names_are_not_checked(registry: DetectorRegistry) -> None:
    text = policy(
        "  - id: w\n    match: {name: Replica Watch, source: rekognition-custom-labels}\n"
        "    block_at: 90\n"
    )
    assert warnings(text, registry) == []


def test_unknown_parent_of_a_rule_and_of_a_label(registry: DetectorRegistry) -> None:
    head = "labels:\n  - {name: Toy Gun, parent: Weapns}\n"
    text = policy("  - id: v\n    match: {parent: Violenc}\n    block_at: 90\n", head)
    assert warnings(text, registry) == [("unknown-parent", 4, 29), ("unknown-parent", 7, 21)]
    found = messages(text, registry, "unknown-parent")
    assert "did you mean 'Weapons'?" in found[0]
    assert "did you mean 'Violence'?" in found[1]


def test_a_new_category_that_rules_use_is_known(registry: DetectorRegistry) -> None:
    head = "labels:\n  - {name: Replica Watch, parent: Prohibited Items}\n"
    text = policy("  - id: p\n    match: {parent: Prohibited Items}\n    block_at: 90\n", head)
    assert warnings(text, registry) == []


# -- unknown names are errors where they can be checked (section 7, rev 1.1) ----------

MODERATION = "detectors: {rekognition-moderation: {}}\n"
MIXED = (
    "detectors:\n  rekognition-moderation: {}\n  rekognition-custom-labels:\n"
    "    project_version_arn: arn:aws:rekognition:eu-west-1:123456789012:project/l/version/l.1/1\n"
)


def errors(text: str, registry: DetectorRegistry) -> list[tuple[str, int, int]]:
    result = check_policy_text(text, FILE, registry=registry)
    assert (result.policy is None) == bool(result.errors)
    return [(d.code, d.line, d.column) for d in result.errors]


def test_a_misspelt_category_stops_the_policy_from_loading(registry: DetectorRegistry) -> None:
    # the case: the rule switched off in silence, and an explicit image was allowed
    text = policy("  - id: e\n    match: {parent: Explicitt}\n    block_at: 80\n", MODERATION)
    assert errors(text, registry) == [("unknown-parent", 6, 21)]
    message = messages(text, registry, "unknown-parent")[0]
    assert "did you mean 'Explicit'?" in message
    assert "# policy-engine: ignore[unknown-name]" in message
    with pytest.raises(PolicyLoadError):
        parse_policy(text, FILE, registry=registry)


def test_a_misspelt_name_stops_the_policy_from_loading(registry: DetectorRegistry) -> None:
    text = policy("  - id: w\n    match: {name: Weapon Violense}\n    block_at: 80\n", MODERATION)
    assert errors(text, registry) == [("unknown-name", 6, 19)]
    assert "did you mean 'Weapon Violence'?" in messages(text, registry, "unknown-name")[0]


def test_the_nearest_known_spelling_is_given_however_far(registry: DetectorRegistry) -> None:
    text = policy("  - id: w\n    match: {name: Qwxz}\n    block_at: 80\n", MODERATION)
    assert "the nearest known name is '" in messages(text, registry, "unknown-name")[0]


@pytest.mark.parametrize(
    "comment",
    [
        "  # policy-engine: ignore[unknown-name]",
        "  # policy-engine: ignore[unknown-parent]",
        "  #policy-engine:ignore[threshold-below-floor, unknown-name]",
    ],
)
def test_an_acknowledged_unknown_name_is_a_warning(
    comment: str, registry: DetectorRegistry
) -> None:
    text = policy(
        f"  - id: n\n    match: {{parent: Brand New Category}}{comment}\n    block_at: 80\n",
        MODERATION,
    )
    assert warnings(text, registry) == [("unknown-parent", 6, 21)]
    assert "acknowledged" in messages(text, registry, "unknown-parent")[0]


def test_an_acknowledgement_on_the_line_above_covers_the_name(registry: DetectorRegistry) -> None:
    text = policy(
        "  - id: n\n    # policy-engine: ignore[unknown-name]\n"
        "    match: {name: Brand New Label}\n    block_at: 80\n",
        MODERATION,
    )
    assert warnings(text, registry) == [("unknown-name", 7, 19)]


def test_an_acknowledgement_covers_its_line_only(registry: DetectorRegistry) -> None:
    text = policy(
        "  - id: n  # policy-engine: ignore[unknown-name]\n"
        "    match: {name: Brand New Label}\n    block_at: 80\n",
        MODERATION,
    )
    assert errors(text, registry) == [("unknown-name", 6, 19)]


@pytest.mark.parametrize(
    "name",
    [
        '"Brand New # policy-engine: ignore[unknown-name]"',
        "'Brand New # policy-engine: ignore[unknown-name]'",
    ],
)
def test_a_hash_inside_a_quoted_name_acknowledges_nothing(
    name: str, registry: DetectorRegistry
) -> None:
    text = policy(f"  - id: n\n    match: {{name: {name}}}\n    block_at: 80\n", MODERATION)
    assert errors(text, registry) == [("unknown-name", 6, 19)]


def test_a_hash_inside_a_block_string_acknowledges_nothing(registry: DetectorRegistry) -> None:
    text = policy(
        "  - id: n\n    description: |\n      # policy-engine: ignore[unknown-name]\n"
        "    match: {name: Brand New Label}\n    block_at: 80\n",
        MODERATION,
    )
    assert errors(text, registry) == [("unknown-name", 8, 19)]


def test_a_detector_without_a_taxonomy_keeps_an_unknown_name_a_warning(
    registry: DetectorRegistry,
) -> None:
    text = policy("  - id: w\n    match: {name: Weapon Violense}\n    block_at: 80\n", MIXED)
    assert warnings(text, registry) == [("unknown-name", 9, 19)]
    message = messages(text, registry, "unknown-name")[0]
    assert "'rekognition-custom-labels' has no taxonomy" in message
    assert "adding source: to the rule makes the name checkable" in message


def test_adding_source_makes_the_name_checkable(registry: DetectorRegistry) -> None:
    text = policy(
        "  - id: w\n    match: {name: Weapon Violense, source: rekognition-moderation}\n"
        "    block_at: 80\n",
        MIXED,
    )
    assert errors(text, registry) == [("unknown-name", 9, 19)]


def test_a_rule_that_sees_only_detectors_without_a_taxonomy_is_not_checked(
    registry: DetectorRegistry,
) -> None:
    text = policy("  - id: w\n    match: {name: Counterfeit Logo}\n    block_at: 80\n", MIXED)
    text = text.replace("  rekognition-moderation: {}\n", "")
    assert warnings(text, registry) == []


def test_the_rule_sees_its_source_not_the_policy_detectors(registry: DetectorRegistry) -> None:
    # a replaying stub has no taxonomy, but this rule decides rekognition-moderation labels
    head = "detectors: {stub: {recordings: rec}}\n"
    scoped = policy(
        "  - id: w\n    match: {parent: Violnce, source: rekognition-moderation}\n"
        "    block_at: 80\n",
        head,
    )
    assert errors(scoped, registry) == [("unknown-parent", 6, 21)]


def test_names_only_another_detectors_taxonomy_knows_are_unknown() -> None:
    from policy_engine.detectors import Detector
    from policy_engine.plugins import RegisteredDetector
    from policy_engine.taxonomy import Taxonomy, TaxonomyEntry

    class Animals(Detector):
        name = "animals"

        def taxonomies(self) -> tuple[Taxonomy, ...]:
            return (Taxonomy("animals/v1", (TaxonomyEntry("Cat"), TaxonomyEntry("Dog"))),)

    class Cars(Detector):
        name = "cars"

        def taxonomies(self) -> tuple[Taxonomy, ...]:
            return (Taxonomy("cars/v1", (TaxonomyEntry("Sedan"),)),)

    two = DetectorRegistry([RegisteredDetector(Animals(), "a"), RegisteredDetector(Cars(), "c")])
    text = policy(
        "  - id: s\n    match: {name: Sedan, source: animals}\n    block_at: 80\n"
        "  - id: c\n    match: {name: Cat}\n    block_at: 80\n",
        "detectors: {animals: {}, cars: {}}\n",
    )
    # Sedan is known, but not to the only detector the first rule can see; Cat is known
    # to one of the detectors the unscoped rule can see
    assert errors(text, two) == [("unknown-name", 6, 19)]
    # unscoped, a rule sees the policy's detectors, not every installed one
    only_animals = text.replace("{animals: {}, cars: {}}", "{animals: {}}").replace(
        "{name: Sedan, source: animals}", "{name: Sedan}"
    )
    assert errors(only_animals, two) == [("unknown-name", 6, 19)]


def test_a_broken_taxonomy_plugin_never_breaks_loading() -> None:
    from policy_engine.detectors import Detector
    from policy_engine.plugins import RegisteredDetector
    from policy_engine.taxonomy import Taxonomy

    class Broken(Detector):
        name = "broken"

        def taxonomies(self) -> tuple[Taxonomy, ...]:
            raise RuntimeError("no data")

        def taxonomy(self, model_version: str | None) -> Taxonomy | None:
            raise KeyError(model_version)

    broken = DetectorRegistry([RegisteredDetector(Broken(), "b")])
    text = policy(
        "  - id: w\n    match: {name: Anything}\n    block_at: 80\n", "detectors: {broken: {}}\n"
    )
    assert warnings(text, broken) == []


# -- name-spelling ----------------------------------------------------------------


@pytest.mark.parametrize("written", ["weapon violence", "Weapon  Violence", "WEAPON VIOLENCE"])
def test_name_spelling(written: str, registry: DetectorRegistry) -> None:
    text = policy(f"  - id: w\n    match: {{name: '{written}'}}\n    block_at: 90\n")
    assert warnings(text, registry) == [("name-spelling", 5, 19)]
    assert (
        "write 'Weapon Violence' as the taxonomy does"
        in messages(text, registry, "name-spelling")[0]
    )


def test_older_spelling_of_the_same_label_is_accepted(registry: DetectorRegistry) -> None:
    # model 6 writes "Female Swimwear Or Underwear", model 7 "... or ..." (POLICY_SPEC 5)
    text = policy("  - id: s\n    match: {name: Female Swimwear Or Underwear}\n    action: allow\n")
    assert warnings(text, registry) == []


# -- threshold-below-floor --------------------------------------------------------


def test_threshold_below_floor_needs_no_registry() -> None:
    text = policy("  - id: v\n    match: {parent: Violence}\n    review_at: 30\n")
    assert warnings(text, None) == [("threshold-below-floor", 6, 16)]
    assert (
        warnings(policy("  - id: v\n    match: {parent: Violence}\n    review_at: 0\n"), None) == []
    )


# -- narrowing-rule ----------------------------------------------------------------

CATEGORY = "  - id: violence\n    match: {parent: Violence}\n    review_at: 50\n    block_at: 80\n"


def test_narrowing_rule_names_both_rules_and_the_band(registry: DetectorRegistry) -> None:
    text = policy(CATEGORY + "  - id: weapons\n    match: {name: Weapons}\n    review_at: 60\n")
    assert warnings(text, registry) == [("narrowing-rule", 8, 5)]
    message = messages(text, registry, "narrowing-rule")[0]
    assert "'weapons'" in message and "'violence'" in message and "block_at" in message


def test_nearer_parent_rule_narrows_too(registry: DetectorRegistry) -> None:
    text = policy(
        CATEGORY + "  - id: graphic\n    match: {parent: Graphic Violence}\n    block_at: 95\n"
    )
    assert warnings(text, registry) == [("narrowing-rule", 8, 5)]
    assert "review_at" in messages(text, registry, "narrowing-rule")[0]


@pytest.mark.parametrize(
    "body",
    ["    review_at: 60\n    block_at: 90\n", "    action: block\n", "    action: review\n"],
)
def test_no_narrowing_when_every_band_is_set_or_an_action(
    body: str, registry: DetectorRegistry
) -> None:
    text = policy(CATEGORY + "  - id: weapons\n    match: {name: Weapons}\n" + body)
    assert warnings(text, registry) == []


def test_allowing_a_child_of_a_stricter_category_is_a_carve_out(
    registry: DetectorRegistry,
) -> None:
    text = policy(CATEGORY + "  - id: weapons-ok\n    match: {name: Weapons}\n    action: allow\n")
    assert warnings(text, registry) == [("carve-out-parent", 8, 5)]
    assert "{name: Violence, action: allow}" in messages(text, registry, "carve-out-parent")[0]


def test_the_category_own_label_is_not_narrowing(registry: DetectorRegistry) -> None:
    text = policy(CATEGORY + "  - id: top\n    match: {name: Violence}\n    review_at: 90\n")
    assert warnings(text, registry) == []


# -- carve-out-parent -------------------------------------------------------------


def test_carve_out_whose_parent_is_stricter(registry: DetectorRegistry) -> None:
    text = policy(
        "  - id: swimwear\n    match: {parent: Swimwear or Underwear}\n    review_at: 70\n"
        "  - id: female-ok\n    match: {name: Female Swimwear or Underwear}\n    action: allow\n"
    )
    assert warnings(text, registry) == [("carve-out-parent", 7, 5)]
    message = messages(text, registry, "carve-out-parent")[0]
    assert "{name: Swimwear or Underwear, action: allow}" in message
    assert "'swimwear'" in message and "70" in message


def test_carve_out_against_the_default(registry: DetectorRegistry) -> None:
    text = policy(
        "  - id: female-ok\n    match: {name: Female Swimwear or Underwear}\n    action: allow\n",
        "default: {block_at: 90}\n",
    )
    assert warnings(text, registry) == [("carve-out-parent", 5, 5)]
    assert "the default, which blocks from 90" in messages(text, registry, "carve-out-parent")[0]


def test_no_carve_out_warning_when_the_parent_is_allowed(registry: DetectorRegistry) -> None:
    text = policy(
        "  - id: swimwear\n    match: {parent: Swimwear or Underwear}\n    review_at: 70\n"
        "  - id: female-ok\n    match: {name: Female Swimwear or Underwear}\n    action: allow\n"
        "  - id: top-ok\n    match: {name: Swimwear or Underwear}\n    action: allow\n"
    )
    assert warnings(text, registry) == []


def test_a_parent_from_labels_is_not_reported_alongside(registry: DetectorRegistry) -> None:
    # custom labels come without their parents: allowing one silences it
    head = "labels:\n  - {name: Toy, parent: Products, source: rekognition-custom-labels}\n"
    text = policy(
        "  - id: toy-ok\n    match: {name: Toy, source: rekognition-custom-labels}\n"
        "    action: allow\n"
        "  - id: products\n    match: {parent: Products}\n    block_at: 70\n",
        head,
    )
    assert warnings(text, registry) == []


# -- rule-never-decides / unknown-source ------------------------------------------


def test_name_under_a_parent_the_taxonomies_never_give(registry: DetectorRegistry) -> None:
    text = policy(
        "  - id: w\n    match: {name: Weapon Violence, parent: Explicit}\n    action: block\n",
        MODERATION,
    )
    assert warnings(text, registry) == [("rule-never-decides", 5, 5)]
    message = messages(text, registry, "rule-never-decides")[0]
    assert "rekognition-moderation/v7 puts it under 'Graphic Violence'" in message
    assert "rekognition-moderation/v6 puts it under 'Violence'" in message


def test_labels_entry_makes_the_parent_possible(registry: DetectorRegistry) -> None:
    head = "labels:\n  - {name: Weapon Violence, parent: Explicit}\n"
    text = policy(
        "  - id: w\n    match: {name: Weapon Violence, parent: Explicit}\n    action: block\n", head
    )
    assert "rule-never-decides" not in [c for c, _, _ in warnings(text, registry)]


def test_right_parent_in_either_model_decides(registry: DetectorRegistry) -> None:
    for parent in ("Violence", "Graphic Violence"):
        match = f"{{name: Weapon Violence, parent: {parent}}}"
        text = policy(f"  - id: w\n    match: {match}\n    action: block\n")
        assert warnings(text, registry) == []


def test_shadowed_rule(registry: DetectorRegistry) -> None:
    text = policy(
        "  - id: weapons\n    match: {name: Weapons}\n    block_at: 80\n"
        "  - id: weapons-category\n    match: {parent: Weapons}\n    block_at: 50\n"
    )
    assert warnings(text, registry) == [("rule-never-decides", 7, 5)]
    assert "('weapons')" in messages(text, registry, "rule-never-decides")[0]


def test_unknown_source(registry: DetectorRegistry) -> None:
    text = policy("  - id: w\n    match: {name: Weapons, source: nope}\n    action: block\n")
    assert warnings(text, registry) == [("unknown-source", 5, 36)]


# -- model-6-name -----------------------------------------------------------------


def test_model_6_name(registry: DetectorRegistry) -> None:
    text = policy("  - id: n\n    match: {name: Graphic Male Nudity}\n    action: block\n")
    assert warnings(text, registry) == [("model-6-name", 5, 19)]
    message = messages(text, registry, "model-6-name")[0]
    assert "rekognition-moderation/v6" in message and "rekognition-moderation/v7" in message


def test_model_6_name_suggests_the_detectors_successors(registry: DetectorRegistry) -> None:
    text = policy(
        "  - id: n\n    match: {name: Illustrated Explicit Nudity}\n    action: block\n"
        "  - id: s\n    match: {parent: Suggestive}\n    review_at: 60\n"
    )
    found = messages(text, registry, "model-6-name")
    assert len(found) == 2
    assert "write 'Explicit Nudity' or 'Explicit Sexual Activity'" in found[0]
    assert (
        "write 'Non-Explicit Nudity of Intimate parts and Kissing' or 'Swimwear or Underwear'"
        in found[1]
    )


def test_a_name_both_models_have_is_not_a_model_6_name(registry: DetectorRegistry) -> None:
    text = policy("  - id: n\n    match: {parent: Violence}\n    action: block\n")
    assert warnings(text, registry) == []


# -- the loader ------------------------------------------------------------------


def test_errors_suppress_the_decision_checks_but_not_the_names(
    registry: DetectorRegistry,
) -> None:
    # unknown names are errors themselves (section 7): a file gets all its errors at once
    text = policy(
        "  - id: a\n    match: {name: Weapons}\n    action: block\n"
        "  - id: a\n    match: {name: Weapon Violense}\n    action: block\n"
        "  - id: b\n    match: {name: Weapons, parent: Explicit}\n    action: block\n",
        "detectors: {rekognition-moderation: {}}\n",
    )
    result = check_policy_text(text, FILE, registry=registry)
    # rule b never decides a label, but with errors that is not looked at
    assert [d.code for d in result.diagnostics] == ["duplicate-rule-id", "unknown-name"]


def test_diagnostics_are_sorted_by_position(registry: DetectorRegistry) -> None:
    text = policy(
        "  - id: z\n    match: {name: Weapon Violense}\n    review_at: 10\n"
        "  - id: y\n    match: {name: weapons}\n    block_at: 90\n",
        "min_confidence: 50\n",
    )
    result = check_policy_text(text, FILE, registry=registry)
    keys = [(d.line, d.column) for d in result.diagnostics]
    assert keys == sorted(keys) and len(keys) == 4  # no-detectors at 1:1 first


# -- on-error-allow, threshold-scale, no-detectors ---------------------------------


def test_on_error_allow_is_a_warning() -> None:
    text = policy(
        "  - id: v\n    match: {parent: Violence}\n    block_at: 80\n", "on_error: allow\n"
    )
    assert warnings(text, None) == [("on-error-allow", 3, 11)]
    for verdict in ("review", "block"):
        assert warnings(text.replace("allow", verdict), None) == []


@pytest.mark.parametrize(
    ("bodies", "head", "expected"),
    [
        (("    review_at: 0.5\n    block_at: 0.9\n",), "", [("threshold-scale", 7, 16)]),
        (("    block_at: 1\n", "    review_at: 0.7\n"), "", [("threshold-scale", 7, 15)]),
        (("    block_at: 0.8\n",), "default: {review_at: 0.6}\n", [("threshold-scale", 3, 22)]),
        (("    review_at: 0.5\n    block_at: 0.9\n",), "min_confidence: 0.3\n", "scale"),
        (("    review_at: 0.5\n    block_at: 0.9\n",), "min_confidence: 30\n", []),
        (("    block_at: 0.9\n", "    review_at: 60\n"), "", []),
        (("    block_at: 0\n",), "", []),
        (("    action: block\n",), "", []),
    ],
)
def test_thresholds_all_at_or_below_1_are_a_0_to_1_scale(
    bodies: tuple[str, ...], head: str, expected: object
) -> None:
    rules = "".join(
        f"  - id: r{i}\n    match: {{parent: P{i}}}\n{body}" for i, body in enumerate(bodies)
    )
    text = policy(rules, head + "min_confidence: 0\n" if "min_confidence" not in head else head)
    found = [w for w in warnings(text, None) if w[0] == "threshold-scale"]
    if expected == "scale":
        assert [w[0] for w in found] == ["threshold-scale"]
    else:
        assert found == expected


def test_threshold_scale_message_names_the_thresholds() -> None:
    text = policy(
        "  - id: v\n    match: {parent: Violence}\n    review_at: 0.5\n    block_at: 0.9\n"
    )
    (message,) = messages(text, None, "threshold-scale")
    assert "(0.5, 0.9)" in message and "0 to 100" in message


@pytest.mark.parametrize("head", ["", "detectors: {}\n"])
def test_a_policy_without_detectors_is_warned_about(head: str, registry: DetectorRegistry) -> None:
    text = policy("  - id: v\n    match: {parent: Violence}\n    block_at: 80\n", head)
    result = check_policy_text(text, FILE, registry=registry)
    assert [(d.code, d.line) for d in result.warnings] == [("no-detectors", 3 if head else 1)]
    installed = "hash-match, open-nsfw, rekognition-custom-labels, rekognition-moderation, stub"
    assert f"installed: {installed}" in result.warnings[0].message
    named = policy("  - id: v\n    match: {parent: Violence}\n    block_at: 80\n", MODERATION)
    assert check_policy_text(named, FILE, registry=registry).diagnostics == ()


def test_no_detectors_is_not_said_of_a_policy_with_errors() -> None:
    text = policy("  - id: v\n    match: {parent: Violence}\n    review_at: 90\n    block_at: 80\n")
    assert [d.code for d in check_policy_text(text, FILE).diagnostics] == ["threshold-order"]


# -- a detector's own settings checks -----------------------------------------------


def settings_registry(findings: object) -> DetectorRegistry:
    from collections.abc import Mapping, Sequence
    from typing import Any, ClassVar

    from policy_engine.detectors import Detector, SettingsFinding
    from policy_engine.plugins import RegisteredDetector

    class Configurable(Detector):
        name = "configurable"
        settings_schema: ClassVar[Mapping[str, Any]] = {"type": "object"}

        def lint_settings(self, settings: Mapping[str, Any]) -> Sequence[SettingsFinding]:
            if isinstance(findings, Exception):
                raise findings
            return [
                SettingsFinding(("zone",), "unknown-region", f"zone {settings['zone']!r} is odd")
            ]

    return DetectorRegistry([RegisteredDetector(Configurable(), "c")])


def test_a_detector_lints_its_own_settings_at_their_position() -> None:
    text = policy(
        "  - id: v\n    match: {name: V}\n    block_at: 80\n",
        "detectors:\n  configurable:\n    zone: moon-1\n",
    )
    result = check_policy_text(text, FILE, registry=settings_registry(None))
    assert [(d.code, d.line, d.column, d.message) for d in result.warnings] == [
        ("unknown-region", 5, 11, "zone 'moon-1' is odd")
    ]


def test_a_failing_settings_check_never_breaks_loading() -> None:
    text = policy(
        "  - id: v\n    match: {name: V}\n    block_at: 80\n",
        "detectors:\n  configurable:\n    zone: moon-1\n",
    )
    result = check_policy_text(text, FILE, registry=settings_registry(RuntimeError("boom")))
    assert result.policy is not None and result.diagnostics == ()


# -- comments ------------------------------------------------------------------------


def test_yaml_comments_are_found_around_the_tokens() -> None:
    from policy_engine.loader import yaml_comments

    text = (
        "a: 'x # no'  # one\n"
        "# two\n"
        "b: |\n"
        "  # no: text of b\n"
        'c: {d: "e#f", g: h}   # three\n'
        "i: j#k\n"
        "l: >-\n"
        "  m # no\n"
        "\n"
        "  # no\n"
        "n: o\n"
    )
    assert yaml_comments(text) == {1: ("# one", False), 2: ("# two", True), 5: ("# three", False)}


IGNORABLE = (
    "version: 1\nname: x\nmin_confidence: 60\nrules:\n"
    "  - id: a\n    match: {parent: Violence}\n"
    "    review_at: 40SAME_LINE\n"
    "LINE_ABOVE"
    "  - id: b\n    match: {parent: Explicit}\n    review_at: 45\n"
)


def variant(same_line: str = "") -> str:
    return IGNORABLE.replace("SAME_LINE", same_line).replace("LINE_ABOVE", "")


def below_floor_lines(text: str) -> list[int]:
    return [
        d.line
        for d in check_policy_text(text, FILE).diagnostics
        if d.code == "threshold-below-floor"
    ]


def test_warnings_are_reported_without_an_ignore_comment() -> None:
    assert below_floor_lines(variant()) == [7, 10]


def test_an_ignore_comment_at_the_end_of_the_line_silences_that_line_only() -> None:
    text = variant(same_line="  # policy-engine: ignore[threshold-below-floor]")
    assert below_floor_lines(text) == [10]


def test_an_ignore_comment_on_its_own_line_silences_the_next_line() -> None:
    text = variant().replace(
        "    review_at: 45\n",
        "    # policy-engine: ignore[threshold-below-floor, other]\n    review_at: 45\n",
    )
    assert below_floor_lines(text) == [7]


def test_an_ignore_comment_names_its_codes_and_never_silences_errors() -> None:
    text = variant(same_line="  # policy-engine: ignore[narrowing-rule]")
    assert below_floor_lines(text) == [7, 10]  # another code: still reported
    broken = (
        "version: 1\nname: x\nrules:\n  - id: a\n    match: {name: A}\n"
        "    review_at: 90  # policy-engine: ignore[threshold-order]\n    block_at: 80\n"
    )
    assert [d.code for d in check_policy_text(broken, FILE).errors] == ["threshold-order"]


def test_with_no_detector_installed_nor_named_a_name_is_not_checked() -> None:
    # no detector, so no taxonomy to check against: never an error naming none
    result = check_policy_text(
        "version: 1\nname: p\nrules:\n  - {id: v, match: {name: Violencee}, block_at: 90}\n",
        registry=DetectorRegistry(),
    )
    assert result.errors == ()
    assert all(d.code != "unknown-name" for d in result.diagnostics)
