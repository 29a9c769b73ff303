"""``policy-engine validate --format text|json|sarif|github`` and ``--strict``, through the
real console script, on the linter's warnings."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

WARNS = """\
version: 1
name: warns
rules:
  - id: violence
    match: {parent: Violence}
    review_at: 50
    block_at: 80
  - id: weapons
    match: {name: Weapons}
    review_at: 60
  - id: typo
    match: {name: Weapon Violense}
    action: block
detectors:  # the stub has no taxonomy: the typo above can only be warned about
  rekognition-moderation: {}
  stub: {recordings: rec}
"""

BROKEN = """\
version: 1
name: broken
rules:
  - id: v
    match: {parent: Violence}
    review_at: 95
    block_at: 90
"""

CLEAN = """\
version: 1
name: clean
rules:
  - id: violence
    match: {parent: Violence}
    review_at: 50
    block_at: 80
detectors: {rekognition-moderation: {}}
"""

GITHUB_LINE = re.compile(
    r"^::(?P<kind>error|warning) file=(?P<file>[^,]+),line=(?P<line>\d+),col=(?P<col>\d+),"
    r"title=(?P<title>[a-z0-9-]+)::(?P<message>.+)$"
)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real console script, in ``cwd`` (conftest-free helper)."""
    return subprocess.run(
        ["policy-engine", "validate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "POLICY_ENGINE_PLUGINS"},
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "warns.yaml").write_text(WARNS, encoding="utf-8")
    (tmp_path / "policies" / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    (tmp_path / "policies" / "clean.yaml").write_text(CLEAN, encoding="utf-8")
    return tmp_path


def test_text(folder: Path) -> None:
    result = run("policies/warns.yaml", cwd=folder)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert [line.split(": ")[0:2] for line in lines] == [
        ["policies/warns.yaml:8:5", "warning[narrowing-rule]"],
        ["policies/warns.yaml:12:19", "warning[unknown-name]"],
    ]
    assert "did you mean 'Weapon Violence'?" in lines[1]


def test_strict_fails_on_warnings_only(folder: Path) -> None:
    assert run("--strict", "policies/warns.yaml", cwd=folder).returncode == 2
    assert run("--strict", "policies/clean.yaml", cwd=folder).returncode == 0
    strict_json = run("--strict", "--format", "json", "policies/warns.yaml", cwd=folder)
    assert strict_json.returncode == 2
    assert json.loads(strict_json.stdout)[0]["ok"] is False


def test_json(folder: Path) -> None:
    result = run("--format", "json", "policies/warns.yaml", "policies/broken.yaml", cwd=folder)
    assert result.returncode == 2, result
    warns, broken = json.loads(result.stdout)
    assert warns["ok"] is True and warns["digest"].startswith("sha256:")
    assert [(d["code"], d["severity"], d["line"], d["column"]) for d in warns["diagnostics"]] == [
        ("narrowing-rule", "warning", 8, 5),
        ("unknown-name", "warning", 12, 19),
    ]
    assert broken["ok"] is False and broken["digest"] is None


def test_sarif(folder: Path) -> None:
    result = run("--format", "sarif", "policies/warns.yaml", "policies/broken.yaml", cwd=folder)
    assert result.returncode == 2, result
    log = json.loads(result.stdout)
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["name"] == "policy-engine" and driver["version"]
    ids = [rule["id"] for rule in driver["rules"]]
    assert {"narrowing-rule", "unknown-name", "threshold-order"} <= set(ids)
    found = [
        (
            r["ruleId"],
            r["level"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
            r["locations"][0]["physicalLocation"]["region"]["startColumn"],
        )
        for r in log["runs"][0]["results"]
    ]
    assert found == [
        ("narrowing-rule", "warning", "policies/warns.yaml", 8, 5),
        ("unknown-name", "warning", "policies/warns.yaml", 12, 19),
        ("threshold-order", "error", "policies/broken.yaml", 6, 16),
    ]
    for r in log["runs"][0]["results"]:
        assert ids[r["ruleIndex"]] == r["ruleId"] and r["message"]["text"]


def test_github(folder: Path) -> None:
    result = run("--format", "github", "policies/warns.yaml", "policies/broken.yaml", cwd=folder)
    assert result.returncode == 2, result
    commands = [GITHUB_LINE.match(line) for line in result.stdout.splitlines()]
    assert all(commands), result.stdout
    assert [(m["kind"], m["file"], m["line"], m["col"], m["title"]) for m in commands if m] == [
        ("warning", "policies/warns.yaml", "8", "5", "narrowing-rule"),
        ("warning", "policies/warns.yaml", "12", "19", "unknown-name"),
        ("error", "policies/broken.yaml", "6", "16", "threshold-order"),
    ]
    # the summary stays on stderr, out of the workflow commands
    assert "file(s) checked" in result.stderr


def test_github_escapes_a_file_name(tmp_path: Path) -> None:
    odd = tmp_path / "a,b:c%.yaml"
    odd.write_text(BROKEN, encoding="utf-8")
    result = run("--format", "github", odd.name, cwd=tmp_path)
    assert result.stdout.startswith("::error file=a%2Cb%3Ac%25.yaml,line=6,col=16,")


def test_unknown_format_is_a_usage_error(folder: Path) -> None:
    result = run("--format", "xml", "policies/clean.yaml", cwd=folder)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def _sarif_locations(log: dict[str, object]) -> list[dict[str, str]]:
    run = log["runs"][0]  # type: ignore[index]
    return [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]


@pytest.mark.parametrize("git", ["folder", "file"])  # a clone, or a linked work tree
def test_sarif_paths_are_relative_to_the_repository_root(h, tmp_path, elsewhere, git) -> None:
    repo = tmp_path / "repo"
    broken = h.write_text(repo / "policies" / "team" / "broken.yaml", BROKEN)
    if git == "folder":
        (repo / ".git").mkdir()
    else:
        h.write_text(repo / ".git", "gitdir: /somewhere/.git/worktrees/repo\n")
    # run from an unrelated folder, and from inside the repository with a relative path
    for cwd, path in ((elsewhere, broken), (repo / "policies", "team/broken.yaml")):
        result = h.run("validate", "--format", "sarif", path, cwd=cwd)
        assert result.code == 2, result
        log = json.loads(result.out)
        assert _sarif_locations(log) == [
            {"uri": "policies/team/broken.yaml", "uriBaseId": "%SRCROOT%"}
        ]
        base = log["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"]
        assert base == repo.resolve().as_uri() + "/"


def test_sarif_paths_outside_a_repository_stay_as_given(h, tmp_path) -> None:
    h.write_text(tmp_path / "policies" / "broken.yaml", BROKEN)
    if any((folder / ".git").exists() for folder in tmp_path.resolve().parents):
        pytest.fail(f"{tmp_path} is inside a git repository: this test needs one outside")
    result = h.run("validate", "--format", "sarif", "policies/broken.yaml", cwd=tmp_path)
    log = json.loads(result.out)
    assert _sarif_locations(log) == [{"uri": "policies/broken.yaml"}]
    assert "originalUriBaseIds" not in log["runs"][0]
