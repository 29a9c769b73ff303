"""``policy-engine validate``: every diagnostic of every file, text or JSON."""

from __future__ import annotations

import pytest

GOOD = """\
version: 1
name: good
min_confidence: 60
detectors:
  stub: {recordings: rec}
rules:
  - id: violence
    match: {parent: Violence}
    review_at: 70
    block_at: 90
  - id: swimwear-ok
    match: {parent: Swimwear or Underwear}
    action: allow
"""

BAD = """\
version: 1
name: bad
rules:
  - id: violence
    match: {parent: Violence}
    review_at: 95
    block_at: 90
  - id: violence
    match: {name: Weapons}
    action: block
"""

# loads, with one warning: a threshold below min_confidence
WARNS = """\
version: 1
name: warns
min_confidence: 60
rules:
  - id: violence
    match: {parent: Violence}
    review_at: 40
detectors: {rekognition-moderation: {}}
"""


@pytest.fixture
def files(h, tmp_path):
    return {
        "good": h.write_text(tmp_path / "good.yaml", GOOD),
        "bad": h.write_text(tmp_path / "bad.yaml", BAD),
        "warns": h.write_text(tmp_path / "warns.yaml", WARNS),
    }


def test_good_policy(h, files):
    result = h.run("validate", files["good"])

    assert result.code == 0, result
    assert result.out == ""
    assert result.diagnostics("err") == []


def test_bad_policy_diagnostics_on_stdout(h, files):
    result = h.run("validate", files["bad"])

    assert result.code == 2, result
    found = result.diagnostics("out")
    assert [(d["file"], d["line"], d["severity"]) for d in found] == [
        (str(files["bad"]), 6, "error"),  # review_at >= block_at
        (str(files["bad"]), 8, "error"),  # duplicate rule id
    ], result
    assert "violence" in found[1]["message"]


def test_several_files_at_once(h, files):
    result = h.run("validate", files["good"], files["bad"], files["warns"])

    assert result.code == 2, result
    found = result.diagnostics("out")
    by_file = {}
    for d in found:
        by_file.setdefault(d["file"], []).append((d["severity"], d["line"]))
    assert str(files["good"]) not in by_file
    assert by_file[str(files["bad"])] == [("error", 6), ("error", 8)]
    assert by_file[str(files["warns"])] == [("warning", 7)]
    # and a file without errors alone still passes
    assert h.run("validate", files["good"], files["warns"]).code == 0


def test_json_format(h, files):
    result = h.run("validate", "--format", "json", files["good"], files["bad"], files["warns"])

    assert result.code == 2, result
    report = result.json()
    assert [entry["file"] for entry in report] == [str(files[k]) for k in ("good", "bad", "warns")]
    good, bad, warns = report
    assert (good["ok"], bad["ok"], warns["ok"]) == (True, False, True)
    assert good["diagnostics"] == []
    assert [(d["code"], d["severity"], d["line"], d["column"]) for d in bad["diagnostics"]] == [
        ("threshold-order", "error", 6, 16),
        ("duplicate-rule-id", "error", 8, 9),
    ], bad
    assert [(d["code"], d["severity"], d["line"], d["column"]) for d in warns["diagnostics"]] == [
        ("threshold-below-floor", "warning", 7, 16)
    ], warns
    for entry in report:
        for d in entry["diagnostics"]:
            assert isinstance(d["line"], int) and isinstance(d["column"], int)
            assert d["file"] == entry["file"] and d["message"]


def test_strict_turns_a_warning_into_failure(h, files):
    lenient = h.run("validate", files["warns"])
    strict = h.run("validate", "--strict", files["warns"])

    assert lenient.code == 0, lenient
    assert strict.code == 2, strict
    for result in (lenient, strict):
        assert [(d["severity"], d["code"], d["line"]) for d in result.diagnostics("out")] == [
            ("warning", "threshold-below-floor", 7)
        ], result


def test_missing_and_unparsable_files(h, tmp_path):
    missing = tmp_path / "missing.yaml"
    broken = h.write_text(tmp_path / "broken.yaml", "version: 1\nname: x\nrules: [\n")

    result = h.run("validate", missing, broken)

    assert result.code == 2, result
    files = {d["file"] for d in result.diagnostics("out") if d["severity"] == "error"}
    assert files == {str(missing), str(broken)}, result


def test_equal_policies_have_equal_digests_whatever_their_formatting(h, tmp_path):
    variants = {
        "plain": GOOD,
        "flow-style, reordered, defaults written out, 90.0": (
            "# the same policy\n"
            "rules:\n"
            "  - {id: violence, block_at: 90.0, review_at: 70, match: {parent: ' Violence '}}\n"
            "  - {action: allow, id: swimwear-ok, match: {parent: Swimwear  or Underwear}}\n"
            "detectors: {stub: {recordings: rec}}\n"
            "on_error: review\n"
            "default: {action: allow}\n"
            "min_confidence: 60.0\n"
            "name: good\n"
            "version: 1\n"
        ),
        "different threshold": GOOD.replace("block_at: 90", "block_at: 91"),
    }
    paths = [
        h.write_text(tmp_path / f"v{i}.yaml", text) for i, text in enumerate(variants.values())
    ]

    result = h.run("validate", "--format", "json", *paths)

    assert result.code == 0, result
    digests = [entry["digest"] for entry in result.json()]
    assert all(d and d.startswith("sha256:") for d in digests), result
    assert digests[0] == digests[1], result
    assert digests[2] != digests[0]


def test_validate_checks_tests_files_as_tests_files(h, tmp_path):
    # `policy-engine validate policies/*.yaml` takes the tests files too
    good = h.MAIN / "policies" / "general-ugc.tests.yaml"
    bad = tmp_path / "broken.tests.yaml"
    bad.write_text("policy: nowhere.yaml\ncases:\n  - name: x\n    expect: maybe\n")

    assert h.run("validate", good).code == 0
    result = h.run("validate", good, bad)
    assert result.code == 2, result
    assert f"{bad}:4:13: error[invalid-value]" in result.out
    assert str(good) not in result.out


SET = """\
version: 1
kind: policy-set
name: routes
context:
  surface:
    values: [feed]
    default: feed
routes:
  - policy: good.yaml
"""


def test_a_folder_is_validated_recursively_policies_and_sets(h, tmp_path):
    folder = tmp_path / "policies"
    good = h.write_text(folder / "good.yaml", GOOD)
    policy_set = h.write_text(folder / "routes.set.yaml", SET)
    bad = h.write_text(folder / "team" / "bad.yml", BAD)
    # not policies: a tests file (test's job) and a file of another kind
    h.write_text(folder / "team" / "bad.tests.yaml", "policy: nowhere.yaml\ncases: []\n")
    h.write_text(folder / "README.txt", "rules: not yaml of ours")

    result = h.run("validate", "--format", "json", folder)
    assert result.code == 2, result
    checked = {entry["file"]: entry["ok"] for entry in result.json()}
    assert checked == {str(good): True, str(policy_set): True, str(bad): False}
    assert "3 file(s) checked, 1 with errors" in result.err


def test_a_file_named_and_found_in_a_folder_is_checked_once(h, files, tmp_path):
    result = h.run("validate", "--format", "json", files["good"], tmp_path)
    assert result.code == 2, result  # bad.yaml is in the folder
    assert [entry["file"] for entry in result.json()].count(str(files["good"])) == 1


def test_a_folder_without_policies_is_exit_2_naming_it(h, tmp_path):
    empty = tmp_path / "empty"
    h.write_text(empty / "only.tests.yaml", "policy: p.yaml\ncases: []\n")
    result = h.run("validate", empty)
    assert result.code == 2, result
    assert f"{empty}: no *.yaml or *.yml policy files in this folder" in result.err


def test_the_reference_policies_folder_validates(h):
    result = h.run("validate", "--strict", h.MAIN / "policies")
    assert result.code == 0, result
