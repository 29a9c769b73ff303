"""Start-up cost and command-line plumbing: what is imported, --help, usage errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

HEAVY = {"boto3", "botocore", "jsonschema", "yaml"}


def test_importing_the_core_imports_no_heavy_dependency(h):
    result = h.python("import policy_engine", "-X", "importtime")

    assert result.code == 0, result
    imported = set()
    for line in result.err.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                imported.add(name)
    assert "policy_engine" in imported, result.err[-2000:]  # the parse did work
    assert sorted(m for m in imported if m.split(".")[0] in HEAVY) == []


def test_validate_never_imports_boto3(h, tmp_path):
    policy = h.write_text(
        tmp_path / "policy.yaml",
        h.VIOLENCE_POLICY + "detectors:\n  rekognition-moderation: {region: us-east-1}\n",
    )
    code = (
        "import sys, json\n"
        "from policy_engine.cli import main\n"
        f"code = main(['validate', {str(policy)!r}])\n"
        "print(json.dumps([code, sorted(m for m in sys.modules "
        "if m.split('.')[0] in {'boto3', 'botocore'}), 'jsonschema' in sys.modules]))\n"
    )

    result = h.python(code)

    assert result.code == 0, result
    exit_code, aws_modules, jsonschema_loaded = json.loads(result.out.splitlines()[-1])
    assert exit_code == 0, result
    assert jsonschema_loaded  # validation really ran (it needs jsonschema)
    assert aws_modules == []


COMMANDS = sorted(
    path.stem.removesuffix("_cmd")
    for path in (Path(__file__).resolve().parents[2] / "policy_engine" / "cli").glob("*_cmd.py")
)


def test_the_readme_documents_exactly_the_commands_there_are():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("| command | what it does |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `([a-z]+)", table, re.M))
    assert documented == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_command(h, command):
    result = h.run(command, "--help")

    assert result.code == 0, result
    assert f"usage: policy-engine {command}" in result.out
    assert result.err == ""


def test_top_level_help_lists_every_command(h):
    result = h.run("--help")

    assert result.code == 0, result
    for command in COMMANDS:
        assert command in result.out


def test_unknown_command_exits_2(h):
    for module in (False, True):
        result = h.run("frobnicate", module=module)
        assert result.code == 2, result
        assert result.out == ""
        assert "frobnicate" in result.err


def test_missing_required_option_exits_2(h, tmp_path):
    result = h.run("evaluate", "--labels", tmp_path / "x.json")

    assert result.code == 2, result
    assert "--policy" in result.err


def test_the_console_script_exits_without_waiting_for_abandoned_calls():
    """`policy-engine` and `python -m policy_engine` both go through console_main,
    which exits at once after a second Ctrl-C (plugins/rekognition's check CLI tests
    show it with calls held at the fake)."""
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="policy-engine")
    assert script.value == "policy_engine.cli:console_main"
