"""Schema and meaning checks of a policy file (POLICY_SPEC 2-4 and 7)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from policy_engine import DetectorRegistry, PolicyLoadError, parse_policy
from policy_engine.diagnostics import Severity
from policy_engine.loader import check_policy_file, check_policy_text
from policy_engine.model import Verdict

FILE = "f.yaml"
HEAD = "version: 1\nname: p\n"


def found(text: str, registry: DetectorRegistry | None = None) -> list[tuple[str, int, int]]:
    return [
        (d.code, d.line, d.column) for d in check_policy_text(text, FILE, registry=registry).errors
    ]


def only_error(text: str, registry: DetectorRegistry | None = None):  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text, FILE, registry=registry)
    assert len(info.value.diagnostics) == 1, info.value
    return info.value.diagnostics[0]


def rule(body: str, match: str = "{name: X}", rid: str = "a") -> str:
    return f"  - id: {rid}\n    match: {match}\n{body}"


# -- defaults ----------------------------------------------------------------


def test_defaults_of_a_minimal_policy() -> None:
    policy = parse_policy(HEAD + "rules: []\n")
    assert policy.min_confidence == 50
    assert policy.default.action is Verdict.ALLOW
    assert policy.on_error is Verdict.REVIEW
    assert policy.rules == ()
    assert policy.labels == ()
    assert dict(policy.detectors) == {}
    assert policy.description is None


def test_every_top_level_key_is_accepted() -> None:
    policy = parse_policy(
        HEAD
        + "description: d\nmin_confidence: 70\ndefault: review\non_error: block\n"
        + "detectors: {stub: {}}\nlabels:\n  - {name: Knife, parent: Weapons, source: stub}\n"
        + "rules: []\n"
    )
    assert policy.description == "d"
    assert policy.min_confidence == 70
    assert policy.default.action is Verdict.REVIEW
    assert policy.on_error is Verdict.BLOCK
    assert list(policy.detectors) == ["stub"]
    assert policy.labels[0].source == "stub"


@pytest.mark.parametrize("value", ["allow", "review", "block"])
def test_default_as_bare_string_is_an_action(value: str) -> None:
    policy = parse_policy(HEAD + f"default: {value}\nrules: []\n")
    assert policy.default.action is Verdict(value)
    assert policy.default.review_at is None and policy.default.block_at is None


def test_default_as_thresholds_body() -> None:
    policy = parse_policy(HEAD + "default: {review_at: 60, block_at: 95}\nrules: []\n")
    assert policy.default.action is None
    assert (policy.default.review_at, policy.default.block_at) == (60, 95)


def test_default_as_action_body() -> None:
    policy = parse_policy(HEAD + "default: {action: block}\nrules: []\n")
    assert policy.default.action is Verdict.BLOCK


def test_default_with_unknown_word_is_an_error() -> None:
    diagnostic = only_error(HEAD + "default: allw\nrules: []\n")
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("invalid-value", 3, 10)
    assert "'allw'" in diagnostic.message


@pytest.mark.parametrize("value", ["allow", "review", "block"])
def test_on_error_accepts_the_three_verdicts(value: str) -> None:
    assert parse_policy(HEAD + f"on_error: {value}\nrules: []\n").on_error is Verdict(value)


def test_on_error_rejects_other_words() -> None:
    diagnostic = only_error(HEAD + "on_error: ignore\nrules: []\n")
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("invalid-value", 3, 11)


# -- required keys and top-level values -------------------------------------


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("name: p\nrules: []\n", "version"),
        ("version: 1\nrules: []\n", "name"),
        ("version: 1\nname: p\n", "rules"),
    ],
)
def test_required_top_level_key_missing_is_an_error(text: str, missing: str) -> None:
    diagnostic = only_error(text)
    assert diagnostic.code == "missing-key"
    assert f"'{missing}'" in diagnostic.message
    assert (diagnostic.line, diagnostic.column) == (1, 1)


def test_empty_rules_list_is_valid() -> None:
    assert parse_policy(HEAD + "rules: []\n").rules == ()


@pytest.mark.parametrize("value", ["2", "0", "'1'", "true", "null"])
def test_version_must_be_the_integer_1(value: str) -> None:
    errors = found(f"version: {value}\nname: p\nrules: []\n")
    assert errors
    assert all((line, column) == (1, 10) for _, line, column in errors)


@pytest.mark.parametrize(
    "name",
    ["p", "P1", "0abc", "a.b_c-d", "marketplace-v2.1", "a" * 128],
)
def test_valid_policy_names(name: str) -> None:
    assert parse_policy(f"version: 1\nname: '{name}'\nrules: []\n").name == name


@pytest.mark.parametrize(
    "name",
    ["-abc", ".abc", "_abc", "a b", "a/b", "é", "", "a" * 129, "abc\\n", "abc\\nx"],
)
def test_invalid_policy_names(name: str) -> None:
    errors = found(f'version: 1\nname: "{name}"\nrules: []\n')
    assert errors
    assert [(line, column) for _, line, column in errors] == [(2, 7)]


@pytest.mark.parametrize("value", ["-0.01", "100.01", "-1", "1000", "'50'", "true", ".inf", ".nan"])
def test_min_confidence_must_be_a_number_from_0_to_100(value: str) -> None:
    errors = found(HEAD + f"min_confidence: {value}\nrules: []\n")
    assert [(line, column) for _, line, column in errors] == [(3, 17)]


@pytest.mark.parametrize("value", ["0", "100", "0.5", "50.0"])
def test_min_confidence_bounds_are_valid(value: str) -> None:
    assert parse_policy(HEAD + f"min_confidence: {value}\nrules: []\n").min_confidence == float(
        value
    )


# -- unknown keys at every level -----------------------------------------


def test_unknown_top_level_key_is_reported_at_the_key_with_a_suggestion() -> None:
    diagnostic = only_error(HEAD + "rules: []\nmin_confidance: 60\n")
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("unknown-key", 4, 1)
    assert "did you mean 'min_confidence'" in diagnostic.message


def test_unknown_top_level_key_without_a_close_match_lists_allowed_keys() -> None:
    diagnostic = only_error(HEAD + "rules: []\nzzz: 1\n")
    assert diagnostic.code == "unknown-key"
    assert "allowed:" in diagnostic.message and "min_confidence" in diagnostic.message


def test_unknown_key_in_a_rule_is_reported_at_the_key() -> None:
    text = HEAD + "rules:\n" + rule("    block_at: 90\n    descripton: x\n")
    diagnostic = only_error(text)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("unknown-key", 7, 5)
    assert "did you mean 'description'" in diagnostic.message
    assert "rules[0]" in diagnostic.message


def test_misspelt_action_reports_the_key_and_the_missing_body() -> None:
    text = HEAD + "rules:\n" + rule("    acton: block\n")
    errors = check_policy_text(text, FILE).errors
    assert [(d.code, d.line, d.column) for d in errors] == [
        ("schema", 4, 5),  # the rule: no action nor thresholds
        ("unknown-key", 6, 5),
    ]
    assert "did you mean 'action'" in errors[1].message


def test_unknown_key_in_a_match_is_reported_at_the_key() -> None:
    text = HEAD + "rules:\n" + rule("    action: block\n", match="{name: X, sourse: stub}")
    diagnostic = only_error(text)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("unknown-key", 5, 22)
    assert "did you mean 'source'" in diagnostic.message


def test_unknown_key_in_a_block_style_match_is_reported_at_the_key() -> None:
    text = (
        HEAD + "rules:\n  - id: a\n    match:\n      name: X\n      prent: Y\n    action: block\n"
    )
    diagnostic = only_error(text)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("unknown-key", 7, 7)
    assert "did you mean 'parent'" in diagnostic.message


def test_unknown_key_in_a_labels_entry_is_reported_at_the_key() -> None:
    text = HEAD + "labels:\n  - name: Knife\n    parent: Weapons\n    sorce: stub\nrules: []\n"
    diagnostic = only_error(text)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("unknown-key", 6, 5)
    assert "did you mean 'source'" in diagnostic.message


def test_unknown_key_in_default_body_is_reported_at_the_key() -> None:
    text = HEAD + "default:\n  reviw_at: 50\n  block_at: 90\nrules: []\n"
    diagnostic = only_error(text)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("unknown-key", 4, 3)
    assert "did you mean 'review_at'" in diagnostic.message


def test_unknown_key_in_detector_settings_is_reported_at_the_key(
    settings_registry: DetectorRegistry,
) -> None:
    text = HEAD + "detectors:\n  throwaway:\n    region: eu\n    treshold: 5\nrules: []\n"
    diagnostic = only_error(text, settings_registry)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("unknown-key", 6, 5)
    assert "did you mean 'threshold'" in diagnostic.message


# -- detectors -----------------------------------------------------------------


def test_detector_settings_valid_against_its_schema_load(
    settings_registry: DetectorRegistry,
) -> None:
    text = HEAD + "detectors:\n  throwaway: {region: eu, threshold: 10}\nrules: []\n"
    policy = parse_policy(text, FILE, registry=settings_registry)
    assert dict(policy.detectors["throwaway"]) == {"region": "eu", "threshold": 10}


def test_detector_setting_of_wrong_type_is_positioned_inside_the_settings(
    settings_registry: DetectorRegistry,
) -> None:
    text = HEAD + "detectors:\n  throwaway:\n    region: eu\n    threshold: high\nrules: []\n"
    diagnostic = only_error(text, settings_registry)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("wrong-type", 6, 16)
    assert "detectors.throwaway.threshold" in diagnostic.message


def test_detector_setting_out_of_range_is_positioned_inside_the_settings(
    settings_registry: DetectorRegistry,
) -> None:
    text = HEAD + "detectors:\n  throwaway: {region: eu, threshold: 101}\nrules: []\n"
    diagnostic = only_error(text, settings_registry)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("out-of-range", 4, 38)


def test_detector_missing_required_setting(settings_registry: DetectorRegistry) -> None:
    text = HEAD + "detectors:\n  throwaway: {}\nrules: []\n"
    diagnostic = only_error(text, settings_registry)
    assert diagnostic.code == "missing-key"
    assert "'region'" in diagnostic.message
    assert (diagnostic.line, diagnostic.column) == (4, 14)


def test_unknown_detector_is_an_error_with_a_registry(settings_registry: DetectorRegistry) -> None:
    text = HEAD + "detectors:\n  throwaway: {region: eu}\n  nonesuch: {}\nrules: []\n"
    diagnostic = only_error(text, settings_registry)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("unknown-detector", 5, 3)
    assert "throwaway" in diagnostic.message  # lists what is installed


def test_unknown_detector_is_not_checked_without_a_registry() -> None:
    policy = parse_policy(HEAD + "detectors:\n  nonesuch: {anything: 1}\nrules: []\n")
    assert "nonesuch" in policy.detectors


def test_detector_settings_must_be_a_map() -> None:
    diagnostic = only_error(HEAD + "detectors:\n  stub: fast\nrules: []\n")
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("wrong-type", 4, 9)


# -- rule bodies -----------------------------------------------------------


@pytest.mark.parametrize(("review_at", "block_at"), [(80, 80), (90, 80), (100, 0), (50.5, 50.5)])
def test_review_at_not_below_block_at_is_an_error(review_at: float, block_at: float) -> None:
    text = HEAD + "rules:\n" + rule(f"    review_at: {review_at}\n    block_at: {block_at}\n")
    diagnostic = only_error(text)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("threshold-order", 6, 16)


def test_review_at_just_below_block_at_is_valid() -> None:
    text = HEAD + "rules:\n" + rule("    review_at: 79.999\n    block_at: 80\n")
    assert parse_policy(text).rules[0].body.review_at == 79.999


def test_threshold_order_is_checked_in_default_too() -> None:
    diagnostic = only_error(HEAD + "default: {review_at: 90, block_at: 60}\nrules: []\n")
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("threshold-order", 3, 22)


@pytest.mark.parametrize(
    "body",
    [
        "    action: block\n    block_at: 90\n",
        "    action: allow\n    review_at: 50\n",
        "    action: review\n    review_at: 50\n    block_at: 90\n",
    ],
)
def test_action_and_thresholds_together_is_an_error(body: str) -> None:
    diagnostic = only_error(HEAD + "rules:\n" + rule(body))
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("schema", 4, 5)
    assert "not both" in diagnostic.message


def test_body_with_neither_action_nor_thresholds_is_an_error() -> None:
    diagnostic = only_error(HEAD + "rules:\n" + rule(""))
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("schema", 4, 5)
    assert "give either an action" in diagnostic.message


def test_default_body_with_neither_is_an_error() -> None:
    assert found(HEAD + "default: {}\nrules: []\n")


def test_default_body_with_action_and_threshold_is_an_error() -> None:
    assert found(HEAD + "default: {action: allow, block_at: 90}\nrules: []\n")


@pytest.mark.parametrize("key", ["review_at", "block_at"])
@pytest.mark.parametrize("value", ["-0.01", "100.01", "'90'", "true", ".inf", ".nan", "null"])
def test_threshold_must_be_a_number_from_0_to_100(key: str, value: str) -> None:
    text = HEAD + "rules:\n" + rule(f"    {key}: {value}\n")
    errors = found(text)
    assert errors, f"{key}: {value} loaded"
    assert (6, 5 + len(key) + 2) in [(line, column) for _, line, column in errors]


@pytest.mark.parametrize("value", ["0", "100", "0.0", "99.5"])
def test_threshold_bounds_are_valid(value: str) -> None:
    text = HEAD + "min_confidence: 0\nrules:\n" + rule(f"    block_at: {value}\n")
    assert parse_policy(text).rules[0].body.block_at == float(value)


@pytest.mark.parametrize("value", ["allw", "deny", "true", "1"])
def test_action_must_be_allow_review_or_block(value: str) -> None:
    text = HEAD + "rules:\n" + rule(f"    action: {value}\n")
    assert [(line, column) for _, line, column in found(text)] == [(6, 13)]


def test_rule_needs_an_id_and_a_match() -> None:
    text = HEAD + "rules:\n  - action: block\n"
    errors = check_policy_text(text, FILE).errors
    assert sorted(d.message.split("'")[1] for d in errors if d.code == "missing-key") == [
        "id",
        "match",
    ]
    assert {(d.line, d.column) for d in errors} == {(4, 5)}


@pytest.mark.parametrize("match", ["{}", "{source: stub}"])
def test_match_needs_name_or_parent(match: str) -> None:
    diagnostic = only_error(HEAD + "rules:\n" + rule("    action: block\n", match=match))
    assert (diagnostic.line, diagnostic.column) == (5, 12)
    assert "name, parent or both" in diagnostic.message


@pytest.mark.parametrize("name", ["''", "'   '", "1", "[X]"])
def test_match_name_must_be_a_non_blank_string(name: str) -> None:
    assert found(HEAD + "rules:\n" + rule("    action: block\n", match=f"{{name: {name}}}"))


def test_empty_rule_id_is_an_error() -> None:
    assert found(HEAD + "rules:\n" + rule("    action: block\n", rid="''"))


# -- duplicates --------------------------------------------------------------


def test_duplicate_rule_ids_are_an_error_at_the_second_id() -> None:
    text = (
        HEAD
        + "rules:\n"
        + rule("    action: block\n", match="{name: X}", rid="same")
        + rule("    action: review\n", match="{name: Y}", rid="same")
    )
    diagnostic = only_error(text)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("duplicate-rule-id", 7, 9)
    assert "rules[0]" in diagnostic.message and "line 4" in diagnostic.message


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("{name: Weapon Violence}", "{name: weapon violence}"),
        ("{name: Weapon Violence}", "{name: '  WEAPON   violence '}"),
        ("{parent: Violence}", "{parent: VIOLENCE}"),
        ("{name: Knife, parent: Weapons}", "{parent: weapons, name: knife}"),
        ("{name: Knife, source: stub}", "{source: stub, name: KNIFE}"),
    ],
)
def test_duplicate_matchers_differing_only_in_case_or_spaces_are_an_error(
    first: str, second: str
) -> None:
    text = (
        HEAD
        + "rules:\n"
        + rule("    action: block\n", match=first, rid="one")
        + rule("    action: review\n", match=second, rid="two")
    )
    diagnostic = only_error(text)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("duplicate-match", 8, 12)
    assert "'one'" in diagnostic.message and "'two'" in diagnostic.message


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("{name: Knife}", "{name: Knife, source: stub}"),
        ("{name: Knife}", "{name: Knife, parent: Weapons}"),
        ("{name: Knife}", "{parent: Knife}"),
        ("{name: Knife, source: a}", "{name: Knife, source: b}"),
    ],
)
def test_different_matchers_are_not_duplicates(first: str, second: str) -> None:
    text = (
        HEAD
        + "rules:\n"
        + rule("    action: block\n", match=first, rid="one")
        + rule("    action: review\n", match=second, rid="two")
    )
    assert len(parse_policy(text).rules) == 2


# -- labels: -------------------------------------------------------------------


def test_labels_extend_with_names_tidied() -> None:
    policy = parse_policy(
        HEAD + "labels:\n  - {name: ' Knife  Crime ', parent: Weapons}\nrules: []\n"
    )
    assert policy.labels[0].name == "Knife Crime"
    assert policy.labels[0].parent == "Weapons"


def test_label_with_empty_parent_is_top_level_and_valid() -> None:
    policy = parse_policy(HEAD + "labels:\n  - {name: House, parent: ''}\nrules: []\n")
    assert policy.labels[0].parent == ""


def test_labels_entry_needs_name_and_parent() -> None:
    errors = check_policy_text(HEAD + "labels:\n  - {name: Knife}\nrules: []\n", FILE).errors
    assert [(d.code, d.line, d.column) for d in errors] == [("missing-key", 4, 5)]
    assert "'parent'" in errors[0].message


def test_labels_two_cycle_is_an_error() -> None:
    text = HEAD + "labels:\n  - {name: A, parent: B}\n  - {name: B, parent: A}\nrules: []\n"
    diagnostic = only_error(text)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("label-cycle", 4, 5)


def test_labels_self_cycle_is_an_error() -> None:
    text = HEAD + "labels:\n  - {name: Top, parent: ''}\n  - {name: A, parent: ' a '}\nrules: []\n"
    diagnostic = only_error(text)
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("label-cycle", 5, 5)


def test_labels_longer_cycle_is_reported_once() -> None:
    text = (
        HEAD
        + "labels:\n  - {name: A, parent: B}\n  - {name: B, parent: C}\n  - {name: C, parent: a}\n"
        + "rules: []\n"
    )
    diagnostic = only_error(text)
    assert diagnostic.code == "label-cycle"
    assert (diagnostic.line, diagnostic.column) == (4, 5)


def test_labels_cycle_through_a_source_scoped_entry_is_an_error() -> None:
    text = (
        HEAD
        + "labels:\n  - {name: A, parent: B}\n  - {name: B, parent: A, source: stub}\nrules: []\n"
    )
    assert [code for code, _, _ in found(text)] == ["label-cycle"]


def test_labels_chain_without_cycle_is_valid() -> None:
    text = HEAD + "labels:\n  - {name: A, parent: B}\n  - {name: B, parent: C}\nrules: []\n"
    assert len(parse_policy(text).labels) == 2


def test_labels_in_different_source_scopes_do_not_form_a_cycle() -> None:
    text = (
        HEAD
        + "labels:\n  - {name: A, parent: B, source: s1}\n  - {name: B, parent: A, source: s2}\n"
        + "rules: []\n"
    )
    assert len(parse_policy(text).labels) == 2


def test_label_placed_twice_is_an_error() -> None:
    text = HEAD + "labels:\n  - {name: A, parent: B}\n  - {name: a, parent: C}\nrules: []\n"
    assert [(code, line) for code, line, _ in found(text)] == [("duplicate-label", 5)]


# -- several errors, sorted ----------------------------------------------------


def test_several_schema_errors_are_all_reported_sorted_by_position() -> None:
    text = (
        "version: 2\n"
        "name: -bad\n"
        "min_confidence: 101\n"
        "rules:\n"
        "  - id: a\n"
        "    match: {name: X, nme: Y}\n"
        "    block_at: 200\n"
        "bogus: 1\n"
    )
    with pytest.raises(PolicyLoadError) as info:
        parse_policy(text, FILE)
    positions = [(d.line, d.column) for d in info.value.diagnostics]
    assert positions == sorted(positions)
    lines = {d.line for d in info.value.diagnostics}
    assert lines == {1, 2, 3, 6, 7, 8}
    assert str(info.value).splitlines() == [d.render() for d in info.value.diagnostics]


def test_several_meaning_errors_are_all_reported_sorted_by_position() -> None:
    text = (
        HEAD
        + "labels:\n  - {name: A, parent: A}\n"
        + "rules:\n"
        + rule("    review_at: 90\n    block_at: 80\n", rid="x", match="{name: N}")
        + rule("    action: block\n", rid="x", match="{name: n}")
    )
    result = check_policy_text(text, FILE)
    assert [d.code for d in result.errors] == [
        "label-cycle",
        "threshold-order",
        "duplicate-rule-id",
        "duplicate-match",
    ]
    assert result.policy is None


def test_rendered_diagnostic_format() -> None:
    diagnostic = only_error(HEAD + "rules: []\nbogus: 1\n")
    assert diagnostic.render().startswith("f.yaml:4:1: error[unknown-key]: unknown key 'bogus'")


# -- warnings do not stop loading ------------------------------------------------


def test_threshold_below_min_confidence_is_a_warning_and_loads() -> None:
    text = HEAD + "rules:\n" + rule("    review_at: 30\n") + "detectors: {stub: {labels: []}}\n"
    result = check_policy_text(text, FILE)
    assert result.policy is not None
    assert [(d.code, d.severity, d.line) for d in result.warnings] == [
        ("threshold-below-floor", Severity.WARNING, 6)
    ]
    assert result.errors == ()


def test_schema_error_and_duplicate_rule_id_in_one_file_are_both_reported() -> None:
    # POLICY_SPEC 2: "a file with several errors gets all of them reported, not only the first".
    text = (
        HEAD
        + "on_error: ignore\n"
        + "rules:\n"
        + rule("    action: block\n", match="{name: X}", rid="same")
        + rule("    action: review\n", match="{name: Y}", rid="same")
    )
    codes = [code for code, _, _ in found(text)]
    assert "invalid-value" in codes
    assert "duplicate-rule-id" in codes


@pytest.mark.parametrize("written", ["1.0", "1.00"])
def test_version_must_be_the_integer_one_not_a_decimal(written: str) -> None:
    diagnostic = only_error(f"version: {written}\nname: p\nrules: []\n")
    assert (diagnostic.code, diagnostic.line, diagnostic.column) == ("invalid-value", 1, 10)
    assert "integer 1" in diagnostic.message


@pytest.mark.parametrize("reserved", ["default", "on_error"])
def test_rule_ids_used_by_records_are_reserved(reserved: str) -> None:
    diagnostic = only_error(HEAD + rule("    action: block\n", rid=reserved).join(["rules:\n", ""]))
    assert diagnostic.code == "schema"
    assert "reserved" in diagnostic.message


def test_loading_a_file_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nname: p\ndetectors: {}\nrules: []\n", encoding="utf-8")
    assert gc.isenabled()
    check_policy_file(path)
    assert gc.isenabled()
    gc.disable()
    try:
        check_policy_file(path)
        assert not gc.isenabled()  # a caller's own pause is kept
    finally:
        gc.enable()
