"""The CLI on a policy that extends a base (POLICY_SPEC section 9): validate,
table, explain, evaluate and test work on it and name a base rule's file."""

from __future__ import annotations

import shutil
import subprocess

TEEN = """\
version: 1
name: teen
extends: base/general-ugc.yaml
remove_rules: [kissing-ok]
rules:
  - id: explicit
    match: {parent: Explicit}
    action: block
"""

TESTS = """\
policy: teen.yaml
cases:
  - name: weapons are reviewed by the base's rule
    labels:
      - {name: Weapons, parent: Violence, confidence: 97}
      - {name: Violence, parent: "", confidence: 97}
    expect: review
    rules: [weapons, violence-top-level]
  - name: explicit nudity blocks at any confidence
    labels:
      - {name: Explicit Nudity, parent: Explicit, confidence: 55}
    expect: block
    rules: [explicit]
"""

LABELS = (
    '{"ModerationLabels": [{"Name": "Weapons", "ParentName": "Violence", "Confidence": 97.0,'
    ' "TaxonomyLevel": 2}], "ModerationModelVersion": "7.0"}'
)


def setup(h, tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "base").mkdir(parents=True)
    shutil.copy(h.MAIN / "policies" / "general-ugc.yaml", tmp_path / "base" / "general-ugc.yaml")
    h.write_text(tmp_path / "teen.yaml", TEEN)
    h.write_text(tmp_path / "teen.tests.yaml", TESTS)
    h.write_text(tmp_path / "labels.json", LABELS)


def test_validate_table_explain_evaluate_and_test_work_on_an_extending_policy(h, tmp_path):
    setup(h, tmp_path)
    base = "base/general-ugc.yaml"

    validated = h.run("validate", "teen.yaml", cwd=tmp_path)
    assert validated.code == 0, validated

    table = h.run("table", "--policy", "teen.yaml", cwd=tmp_path)
    assert table.code == 0, table
    assert f"Weapons: [50, 85) allow, [85, 100] review - rule weapons (in {base})" in table.out
    assert "Explicit Nudity: [50, 100] block - rule explicit\n" in table.out

    explained = h.run("explain", "--policy", "teen.yaml", "--labels", "labels.json", cwd=tmp_path)
    assert explained.code == 0, explained
    assert f"[rule weapons in {base}]" in explained.out

    evaluated = h.run("evaluate", "--policy", "teen.yaml", "--labels", "labels.json", cwd=tmp_path)
    (reason,) = evaluated.json()["reasons"]
    assert reason["rule"] == "weapons" and reason["rule_file"] == base

    tested = h.run("test", "teen.tests.yaml", cwd=tmp_path)
    assert tested.code == 0, tested


def test_validate_locates_a_base_error_in_the_base(h, tmp_path):
    setup(h, tmp_path)
    broken = tmp_path / "base" / "general-ugc.yaml"
    broken.write_text(broken.read_text().replace("review_at: 50\n", "review_at: 90\n", 1))

    result = h.run("validate", "teen.yaml", cwd=tmp_path)

    assert result.code == 2, result
    found = {(d["file"], d["code"]) for d in result.diagnostics("out")}
    assert ("base/general-ugc.yaml", "threshold-order") in found
    assert ("teen.yaml", "base-does-not-load") in found


def _git(cwd, *args):  # type: ignore[no-untyped-def]
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_diff_against_git_reads_the_base_at_the_same_revision(h, tmp_path):
    repo = tmp_path / "repo"
    setup(h, repo)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "policies")
    # only the base changes: the teen policy at HEAD must be read over the base at HEAD
    base = repo / "base" / "general-ugc.yaml"
    base.write_text(base.read_text().replace("review_at: 85", "review_at: 60", 1))

    result = h.run("diff", "HEAD:teen.yaml", "teen.yaml", cwd=repo)

    assert result.code == 0, result
    assert "Weapons" in result.out and "[60, 85) allow -> review" in result.out, result
    # a base missing at the revision is an error there, never today's base instead
    _git(repo, "mv", "base/general-ugc.yaml", "base/renamed.yaml")
    _git(repo, "commit", "-q", "-m", "rename")
    missing = h.run("diff", "HEAD:teen.yaml", "HEAD~1:teen.yaml", cwd=repo)
    assert missing.code == 2, missing
    assert "HEAD:teen.yaml:3:10: error[extends-unreadable]" in missing.err, missing


def test_migrate_checks_an_extending_policy_over_its_base_from_any_folder(h, tmp_path):
    setup(h, tmp_path / "policies")
    teen = tmp_path / "policies" / "teen.yaml"
    teen.write_text(
        TEEN + "  - id: suggestive\n    match: {parent: Suggestive}\n    block_at: 60\n"
    )

    result = h.run("migrate", "--to", "7", "policies/teen.yaml", cwd=tmp_path)

    assert result.code == 1, result  # Suggestive maps to several model 7 labels
    assert "extends: base/general-ugc.yaml" in result.out
