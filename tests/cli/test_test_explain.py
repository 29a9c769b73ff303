"""``policy-engine test`` and ``policy-engine explain`` through the real console script."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

CLOSING = re.compile(r"^(\d+) passed, (\d+) failed$")

TESTS = """\
policy: policy.yaml
cases:
  - name: weapon violence blocks
    labels:
      - {name: Weapon Violence, parent: Violence, confidence: 97.3}
    expect: block
    rules: [violence]
  - name: a wrong expectation
    labels:
      - {name: Weapon Violence, parent: Violence, confidence: 54}
    expect: review
source: rekognition-moderation  # the policy names no detectors: say where labels come from
invariants:
  - {category: Violence, at_least: 90, always: block}
  - {category: Violence, never: allow}
"""


def closing_line(out: str) -> tuple[int, int]:
    last = out.rstrip("\n").splitlines()[-1]
    match = CLOSING.match(last)
    assert match, f"last line is {last!r}"
    return int(match.group(1)), int(match.group(2))


def test_ci_runs_every_reference_policy_test_file(h):
    # every rule of a reference policy decides at least one of its cases
    result = h.run("test", h.MAIN / "policies", "--min-coverage", "100")

    assert result.code == 0, result
    passed, failed = closing_line(result.out)
    assert failed == 0 and passed >= 50, result
    for name in (
        "general-ugc",
        "young-audience",
        "marketplace",
        "illustrated",
        "teen-marketplace",
        "community.set",
    ):
        assert f"{name}.tests.yaml" in result.out
    # the reference set's routes are all taken (--min-coverage holds routes too)
    assert "community.set.yaml: 5/5 routes decided a case (100.0%)" in result.out


def test_a_set_s_tests_file_holds_route_coverage_and_locates_a_bad_context(h, tmp_path):
    import shutil

    for name in (
        "community.set.yaml",
        "general-ugc.yaml",
        "marketplace.yaml",
        "young-audience.yaml",
        "illustrated.yaml",
        "teen-marketplace.yaml",
    ):
        shutil.copy(h.MAIN / "policies" / name, tmp_path / name)
    reference = (h.MAIN / "policies" / "community.set.tests.yaml").read_text(encoding="utf-8")
    # keep only the cases up to the content_type route: routes 3 and 4 are never taken
    cut = reference.split("  # -- feed and chat with animated")[0]
    tests = h.write_text(tmp_path / "community.set.tests.yaml", cut)

    result = h.run("test", tests, "--min-coverage", "100")

    assert result.code == 1, result
    assert "(policy set community)" in result.out
    assert "community.set.yaml: 3/5 routes decided a case (60.0%)" in result.out
    assert "  never decided: route 3, route 4" in result.out
    assert f"coverage of {tmp_path / 'community.set.yaml'} is below 100%" in result.out

    h.write_text(
        tests, cut.replace("{surface: feed, audience: teen}", "{surface: fed, audience: teen}")
    )
    result = h.run("test", tests)

    assert result.code == 2, result
    assert f"{tests}:12:" in result.err and "error[invalid-context]" in result.err
    assert "'fed' is not a value of dimension 'surface'" in result.err
    assert "Traceback" not in result.err


def test_default_folder_is_policies_in_the_working_folder(h):
    result = h.run("test", cwd=h.MAIN)

    assert result.code == 0, result
    assert closing_line(result.out)[1] == 0


def test_failures_print_expected_actual_trace_and_counterexample(h, tmp_path):
    # named detectors: the counterexamples are Rekognition's, whatever else is installed
    moderation = "detectors: {rekognition-moderation: {}}\nrules:"
    h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY.replace("rules:", moderation))
    tests = h.write_text(tmp_path / "policy.tests.yaml", TESTS)

    result = h.run("test", tests)

    assert result.code == 1, result
    assert closing_line(result.out) == (2, 2)
    out = result.out
    assert "FAIL  case a wrong expectation" in out
    assert f"at {tests}:8" in out
    assert "expected: review" in out and "actual:   allow" in out
    assert "allow: 54 < 90 (block_at)  [rule violence]" in out
    assert "rank parent, distance 1" in out
    assert "FAIL  invariant category Violence: never allow" in out
    assert (
        "counterexample: Weapons (parent Violence; rekognition-moderation, taxonomy "
        "rekognition-moderation/v7) at 50: allow by rule violence (band [50, 90))"
    ) in out
    assert "counterexample: a label no taxonomy knows yet" in out
    assert "ok    invariant category Violence at 90+: always block" in out


def test_a_policy_path_finds_its_tests_file_and_junit_is_written(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    h.write_text(tmp_path / "policy.tests.yaml", TESTS)
    report = tmp_path / "out" / "junit.xml"
    report.parent.mkdir()

    result = h.run("test", policy, "--junit", report)

    assert result.code == 1, result
    root = ET.parse(report).getroot()
    (suite,) = root.findall("testsuite")
    assert suite.get("tests") == "4" and suite.get("failures") == "2"
    failed = [c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None]
    assert failed == ["a wrong expectation", "category Violence: never allow"]


def test_load_errors_exit_2_with_positions_and_the_closing_line_last(h, tmp_path):
    h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    h.write_text(tmp_path / "good.tests.yaml", "policy: policy.yaml\ncases: []\n")
    bad = h.write_text(
        tmp_path / "bad.tests.yaml", "policy: policy.yaml\ncases:\n  - name: x\n    expct: block\n"
    )

    result = h.run("test", tmp_path)

    assert result.code == 2, result
    assert closing_line(result.out) == (0, 0)
    found = {(d["file"], d["line"], d["column"], d["code"]) for d in result.diagnostics()}
    assert (str(bad), 4, 5, "unknown-key") in found
    assert (str(bad), 3, 5, "missing-key") in found


def test_no_tests_files_is_a_usage_error(h, tmp_path):
    result = h.run("test", tmp_path)

    assert result.code == 2, result
    assert "no *.tests.yaml files" in result.err


def test_coverage_and_min_coverage(h, tmp_path):
    h.write_text(
        tmp_path / "policy.yaml",
        h.VIOLENCE_POLICY + "  - {id: gambling, match: {parent: Gambling}, action: allow}\n",
    )
    h.write_text(
        tmp_path / "policy.tests.yaml",
        TESTS.split("invariants:")[0].replace("expect: review", "expect: allow"),
    )

    covered = h.run("test", tmp_path, "--coverage")
    strict = h.run("test", tmp_path, "--min-coverage", "75")
    lenient = h.run("test", tmp_path, "--min-coverage", "50")

    assert covered.code == 0, covered
    assert "1/2 rules decided a label (50.0%)" in covered.out
    assert "never decided: gambling" in covered.out
    assert strict.code == 1, strict
    assert "below 75%" in strict.out
    assert closing_line(strict.out) == (2, 0)
    assert lenient.code == 0, lenient
    assert h.run("test", tmp_path, "--min-coverage", "150").code == 2


def test_explain_text(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY + "min_confidence: 50\n")
    labels = h.write_json(
        tmp_path / "labels.json",
        h.moderation(
            ("Weapon Violence", "Violence", 97.3),
            ("Weapons", "Violence", 54),
            ("Explicit", "", 45),
        ),
    )

    result = h.run("explain", "--policy", policy, "--labels", labels, "--error", "stub:offline")

    assert result.code == 0, result
    out = result.out
    assert out.startswith("decision: block  (policy violence-test, sha256:")
    assert "Weapon Violence (parent Violence; rekognition-moderation; confidence 97.3)" in out
    assert '   * violence  {"parent": "Violence"}  rank parent, distance 1  <- decides' in out
    assert "block: 97.3 >= 90 (block_at)  [rule violence]" in out
    assert "allow: 54 < 90 (block_at)  [rule violence]" in out
    assert "dropped below min_confidence 50:\n  Explicit (rekognition-moderation): 45 < 50" in out
    assert "detector errors:\n  review  detector stub failed: offline  [rule on_error]" in out


def test_explain_json(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    labels = h.write_json(tmp_path / "aws.json", h.AWS_MODERATION_EXAMPLE)

    result = h.run("explain", "--policy", policy, "--labels", labels, "--format", "json")

    assert result.code == 0, result
    record = result.json()
    assert record["decision"] == "block"
    first, second = record["labels"]
    assert first["candidates"] == [
        {
            "rule": "violence",
            "match": {"parent": "Violence"},
            "rank": "parent",
            "distance": 1,
            "winner": True,
        }
    ]
    assert first["comparison"] == "97.29618072509766 >= 90 (block_at)"
    assert first["taxonomy"] == "rekognition-moderation/v6"  # model 3.0
    assert second["candidates"][0]["distance"] == 0
    assert record["dropped"] == [] and record["errors"] == []


def test_explain_usage_errors(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    bad = h.write_text(tmp_path / "bad.json", "{")

    assert h.run("explain", "--policy", policy).code == 2
    assert h.run("explain", "--policy", policy, "--error", "nocolon").code == 2
    result = h.run("explain", "--policy", policy, "--labels", bad)
    assert result.code == 2
    assert "not valid JSON" in result.err


def test_a_broken_strictness_promise_prints_its_counterexamples(h, tmp_path):
    h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    looser = h.VIOLENCE_POLICY.replace("block_at: 90", "block_at: 95")
    assert looser != h.VIOLENCE_POLICY
    h.write_text(tmp_path / "looser.yaml", looser)
    kept = h.write_text(
        tmp_path / "policy.tests.yaml",
        "policy: policy.yaml\ninvariants:\n  - at_least_as_strict_as: looser.yaml\n",
    )
    result = h.run("test", kept)
    assert result.code == 0 and closing_line(result.out) == (1, 0), result
    assert "ok    invariant policy.yaml is at least as strict as looser.yaml" in result.out
    h.write_text(
        tmp_path / "looser.tests.yaml",
        "policy: looser.yaml\ninvariants:\n  - at_least_as_strict_as: policy.yaml\n",
    )
    broken = h.run("test", tmp_path / "looser.tests.yaml")
    assert broken.code == 1 and closing_line(broken.out) == (0, 1), broken
    assert "FAIL  invariant looser.yaml is at least as strict as policy.yaml" in broken.out
    assert "[90, 95): looser.yaml allow (rule violence), policy.yaml block (rule violence)" in (
        broken.out
    )
