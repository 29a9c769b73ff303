"""Policy tests files (policy_engine.review.tests_file and runner): loading,
the schema, cases and their reasons, load errors, finding files, coverage."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from tests_file_builders import AWS_RESPONSE, POLICY, run, write

from policy_engine import DetectorRegistry
from policy_engine.errors import TestsLoadError
from policy_engine.review.runner import coverage
from policy_engine.review.tests_file import (
    check_tests_file,
    find_tests_files,
    load_tests_file,
    policy_tests_schema,
)


def test_the_schema_is_draft_2020_12_with_an_id_and_descriptions() -> None:
    schema = policy_tests_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "urn:policy-engine:schema:policy-tests:1"
    for name, prop in schema["properties"].items():
        assert "description" in prop or "$ref" in prop, name
    for name in ("case", "invariant", "label", "reason"):
        assert schema["$defs"][name]["description"]
    for name, prop in schema["$defs"]["invariant"]["properties"].items():
        assert "description" in prop or "$ref" in prop, name


def test_the_reference_tests_files_validate(registry: DetectorRegistry) -> None:
    files, problems = find_tests_files(["policies"])
    assert problems == [] and len(files) >= 3
    for path in files:
        loaded = check_tests_file(path, registry)
        assert loaded.diagnostics == (), [d.render() for d in loaded.diagnostics]


def test_labels_inline_response_inline_and_recording_pool(
    tmp_path: Path, registry: DetectorRegistry
) -> None:
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "aws.json").write_text(json.dumps(AWS_RESPONSE), encoding="utf-8")
    tests = f"""\
policy: p.yaml
cases:
  - name: compact
    labels:
      - {{name: Weapon Violence, parent: Graphic Violence, confidence: 97.3}}
    expect: block
    rules: [graphic]
  - name: inline response
    response: {json.dumps(AWS_RESPONSE)}
    expect: block
    reasons:
      - {{rule: graphic, label: weapon violence, verdict: block}}
      - {{rule: top, label: Violence}}
  - name: recording, relative to the tests file
    recording: rec/aws.json
    expect: block
    rules: [graphic, top]
  - name: an error reviews
    errors: [{{source: rekognition-moderation, error: down}}]
    expect: review
    reasons: [{{rule: on_error, source: rekognition-moderation}}]
"""
    result = run(tmp_path, tests, registry)
    assert [(c.case.name, c.problems) for c in result.cases] == [  # type: ignore[attr-defined]
        ("compact", ()),
        ("inline response", ()),
        ("recording, relative to the tests file", ()),
        ("an error reviews", ()),
    ]
    case = result.cases[1].case  # type: ignore[attr-defined]
    assert case.labels[0].model_version == "7.0"


def test_an_unexpected_extra_reason_fails_and_shows_the_trace(
    tmp_path: Path, registry: DetectorRegistry
) -> None:
    tests = """\
policy: p.yaml
cases:
  - name: the top-level label reviews too
    labels:
      - {name: Weapon Violence, parent: Graphic Violence, confidence: 97.3}
      - {name: Violence, confidence: 97.3}
      - {name: Gambling, confidence: 40}
    expect: block
    reasons: [{rule: graphic}]
"""
    result = run(tmp_path, tests, registry)
    (case,) = result.cases  # type: ignore[attr-defined]
    assert not case.passed
    assert case.problems == (
        "unexpected reason: review  Violence 97.3 >= 90  [rule top, rekognition-moderation]",
    )
    text = "\n".join(case.details())
    assert "expected: block" in text and "actual:   block" in text
    assert "* graphic" in text and "rank parent, distance 1" in text
    assert "block: 97.3 >= 90 (block_at)  [rule graphic]" in text
    assert "Gambling (rekognition-moderation): 40 < 50 (min_confidence): dropped" in text


def test_a_wrong_decision_and_a_missing_reason_fail(
    tmp_path: Path, registry: DetectorRegistry
) -> None:
    tests = """\
policy: p.yaml
cases:
  - name: wrong
    labels: [{name: Weapon Violence, parent: Graphic Violence, confidence: 70}]
    expect: block
    reasons: [{rule: graphic, verdict: block}]
    rules: [graphic, top]
"""
    (case,) = run(tmp_path, tests, registry).cases  # type: ignore[attr-defined]
    assert case.problems == (
        "the decision is review, expected block",
        "the reasons' rules are [graphic], expected [graphic, top]",
        "missing reason: rule graphic, verdict block",
        "unexpected reason: review  Weapon Violence 70 >= 60"
        "  [rule graphic, rekognition-moderation]",
    )
    assert "review: 70 >= 60 (review_at)  [rule graphic]" in "\n".join(case.details())


def test_reasons_empty_means_no_reason(tmp_path: Path, registry: DetectorRegistry) -> None:
    tests = """\
policy: p.yaml
cases:
  - {name: quiet, labels: [{name: Violence, confidence: 60}], expect: allow, reasons: []}
  - {name: loud, labels: [{name: Violence, confidence: 95}], expect: review, reasons: []}
"""
    quiet, loud = run(tmp_path, tests, registry).cases  # type: ignore[attr-defined]
    assert quiet.passed
    assert not loud.passed


@pytest.mark.parametrize(
    ("tests", "expected"),
    [
        (
            "policy: p.yaml\ncases:\n  - name: x\n    labels: []\n    expect: block\n"
            "    rule: [top]\n",
            [(6, 5, "unknown-key", "unknown key 'rule' in cases[0]; did you mean 'rules'?")],
        ),
        (
            "policy: p.yaml\ncases:\n  - name: x\n    expect: allow\n",
            [(3, 5, "schema", "a case needs labels, response, recording or errors")],
        ),
        (
            "policy: p.yaml\ncases:\n  - name: x\n    labels:\n"
            "      - {name: A, confidence: 101}\n    expect: allow\n",
            [(5, 31, "out-of-range", "cases[0].labels[0].confidence: 101 is greater than")],
        ),
        (
            "policy: p.yaml\ninvariants:\n  - {category: A, label: B, never: allow}\n",
            [(3, 5, "schema", "names exactly one of category, label or labels")],
        ),
        (
            "policy: p.yaml\ninvariants:\n  - {category: A}\n",
            [(3, 5, "schema", "needs never, always, min_verdict or max_verdict")],
        ),
        (
            "policy: p.yaml\ninvariants:\n  - {labels: [{name: A, confidence: 5}], never: allow}\n",
            [
                (3, 5, "schema", "needs min_decision, max_decision or both"),
                (3, 5, "schema", "takes min_decision / max_decision, not source"),
            ],
        ),
        (
            "policy: p.yaml\ncases:\n  - name: x\n    recording: missing.json\n    expect: allow\n",
            [(4, 16, "unreadable-recording", "cannot read recording missing.json")],
        ),
        (
            "policy: p.yaml\ncases:\n  - name: x\n    response: {Foo: 1}\n    expect: allow\n",
            [(4, 15, "unrecognised-response", "no installed detector recognises")],
        ),
        (
            "policy: p.yaml\ncases:\n  - name: x\n    response: {ModerationLabels: [{Name: A}]}\n"
            "    expect: allow\n",
            [(4, 15, "invalid-response", "ModerationLabels[0].Confidence")],
        ),
        (
            "policy: nowhere.yaml\ncases: []\n",
            [(1, 9, "policy-does-not-load", "the policy nowhere.yaml does not load")],
        ),
        (
            "policy: p.yaml\npolicy: q.yaml\n",
            [(2, 1, "duplicate-key", "duplicate key 'policy'")],
        ),
    ],
)
def test_load_errors_are_positioned(
    tmp_path: Path,
    registry: DetectorRegistry,
    tests: str,
    expected: list[tuple[int, int, str, str]],
) -> None:
    path = write(tmp_path, tests)
    loaded = check_tests_file(path, registry)
    assert loaded.tests is None
    found = [d for d in loaded.diagnostics if d.file == str(path)]
    assert len(found) == len(expected), [d.render() for d in loaded.diagnostics]
    for diagnostic, (line, column, code, message) in zip(found, expected, strict=True):
        assert (diagnostic.line, diagnostic.column, diagnostic.code) == (line, column, code), (
            diagnostic.render()
        )
        assert message in diagnostic.message
    with pytest.raises(TestsLoadError):
        load_tests_file(path, registry)


def test_find_tests_files(tmp_path: Path) -> None:
    path = write(tmp_path, "policy: p.yaml\n")
    (tmp_path / "other.yaml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "empty").mkdir()

    assert find_tests_files([str(tmp_path)]) == ([path], [])
    assert find_tests_files([str(tmp_path / "p.yaml"), str(path)]) == ([path], [])
    files, problems = find_tests_files(
        [str(tmp_path / "other.yaml"), str(tmp_path / "nope"), str(tmp_path / "empty")]
    )
    assert files == []
    assert [p.split(": ", 1)[1] for p in problems] == [
        f"no tests file for this policy ({tmp_path / 'other.tests.yaml'} is missing)",
        "no such file or folder",
        "no *.tests.yaml files in this folder",
    ]


def test_coverage_counts_rules_that_decided_a_label(
    tmp_path: Path, registry: DetectorRegistry
) -> None:
    tests = """\
policy: p.yaml
cases:
  - {name: a, labels: [{name: Violence, confidence: 10}], expect: allow}
  - name: b
    labels: [{name: Blood & Gore, parent: Graphic Violence, confidence: 60}]
    expect: review
  - {name: c, labels: [{name: Unknown, confidence: 60}], expect: allow}
"""
    result = run(tmp_path, tests, registry)
    (report,) = coverage([result])  # type: ignore[list-item]
    assert report.rules == ("graphic", "top", "unused")
    assert report.decided == {"graphic", "default"}  # Violence at 10 was dropped
    assert report.never == ("top", "unused")
    assert round(report.percent, 1) == 33.3
    assert report.lines()[0].endswith("1/3 rules decided a label (33.3%)")


# -- strictness promises ----------------------------------------------------------------

LOOSER = POLICY.replace("block_at: 90", "block_at: 95")


def test_a_strictness_promise_holds_or_lists_its_counterexamples(
    tmp_path: Path, registry: DetectorRegistry
) -> None:
    (tmp_path / "looser.yaml").write_text(LOOSER, encoding="utf-8")
    (tmp_path / "same.yaml").write_text(POLICY, encoding="utf-8")
    tests = (
        "policy: p.yaml\n"
        "invariants:\n"
        "  - at_least_as_strict_as: looser.yaml\n"
        "  - {name: no looser than itself, at_least_as_strict_as: same.yaml}\n"
    )
    result = run(tmp_path, tests, registry)
    assert [r.passed for r in result.invariants] == [True, True]  # type: ignore[attr-defined]
    assert result.invariants[0].invariant.describe() == (  # type: ignore[attr-defined]
        "p.yaml is at least as strict as looser.yaml"
    )
    # the other way round: the looser policy breaks the promise, band by band
    (tmp_path / "strict.yaml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "p.yaml").write_text(LOOSER, encoding="utf-8")
    path = tmp_path / "p.tests.yaml"
    path.write_text(
        "policy: p.yaml\nsource: rekognition-moderation\n"
        "invariants:\n  - at_least_as_strict_as: strict.yaml\n",
        encoding="utf-8",
    )
    from policy_engine.review.runner import run_tests_file

    outcome = run_tests_file(load_tests_file(path, registry), registry)
    (invariant,) = outcome.invariants
    assert not invariant.passed and outcome.failed == 1
    details = invariant.details()
    assert details[0].startswith("broken: p.yaml is more-lenient compared with strict.yaml")
    # the label is a made-up one from whichever installed detector sorts first
    assert details[1].startswith("counterexample: <any label under Graphic Violence> (")
    assert details[1].endswith(
        "parent Graphic Violence) [90, 95): "
        "p.yaml review (rule graphic), strict.yaml block (rule graphic)"
    )
    # how many more depends on the installed detectors' taxonomies
    assert len(details) == 12 and re.fullmatch(r"\.\.\. and \d+ more", details[-1])


@pytest.mark.parametrize(
    ("invariant", "message"),
    [
        (
            "{at_least_as_strict_as: missing.yaml}",
            "the policy missing.yaml (at_least_as_strict_as)",
        ),
        (
            "{at_least_as_strict_as: p.yaml, never: block}",
            "a strictness invariant (at_least_as_strict_as) takes only name and description",
        ),
        (
            "{at_least_as_strict_as: p.yaml, category: Violence, never: block}",
            "an invariant names exactly one of category, label or labels (or at_least_as_strict_as",
        ),
    ],
)
def test_a_strictness_promise_that_cannot_be_checked_is_a_load_error(
    tmp_path: Path, registry: DetectorRegistry, invariant: str, message: str
) -> None:
    path = write(tmp_path, f"policy: p.yaml\ninvariants:\n  - {invariant}\n")
    loaded = check_tests_file(path, registry)
    assert loaded.tests is None
    found = [d for d in loaded.diagnostics if d.file == str(path)]
    assert any(message in d.message and d.line == 3 for d in found), [
        d.render() for d in loaded.diagnostics
    ]
