"""Start-up cost and command-line plumbing: what is imported, --help, usage errors."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = {"boto3", "botocore", "jsonschema", "yaml"}


def imported_modules(importtime_output: str) -> set[str]:
    """The modules ``python -X importtime`` reports having imported."""
    imported = set()
    for line in importtime_output.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                imported.add(name)
    return imported


def test_importing_the_core_imports_no_heavy_dependency(h):
    result = h.python("import policy_engine", "-X", "importtime")

    assert result.code == 0, result
    imported = imported_modules(result.err)
    assert "policy_engine" in imported, result.err[-2000:]  # the parse did work
    assert sorted(m for m in imported if m.split(".")[0] in HEAVY) == []


# What `--help`, `--version` and a usage error may import of ours: the command
# modules (and the library under them) only when their command runs.
STARTUP_MODULES = {
    "policy_engine",
    "policy_engine.__main__",
    "policy_engine.cli",
    "policy_engine.cli.exit_codes",
}


@pytest.mark.parametrize("args", [["--version"], []])
def test_version_and_usage_errors_import_no_command(h, args):
    command = [sys.executable, "-X", "importtime", "-m", "policy_engine", *args]
    completed = subprocess.run(command, env=h.cli_env(), capture_output=True, text=True, timeout=60)

    assert completed.returncode == (0 if args == ["--version"] else 2)
    imported = imported_modules(completed.stderr)
    assert "policy_engine.cli" in imported, completed.stderr[-2000:]
    ours = {m for m in imported if m.split(".")[0] == "policy_engine"}
    assert ours <= STARTUP_MODULES, sorted(ours - STARTUP_MODULES)
    assert sorted(m for m in imported if m.split(".")[0] in HEAVY | {"pluggy"}) == []


@pytest.mark.parametrize("args", [["--help"], ["frobnicate"]])
def test_help_and_unknown_commands_load_plugins_but_no_command(h, args):
    """The top-level help and a name no core command has look up the plugins'
    commands (policy_engine_register_commands): the plugins load, and still no
    command module nor heavy dependency."""
    command = [sys.executable, "-X", "importtime", "-m", "policy_engine", *args]
    completed = subprocess.run(command, env=h.cli_env(), capture_output=True, text=True, timeout=60)

    assert completed.returncode == (0 if args == ["--help"] else 2)
    imported = imported_modules(completed.stderr)
    assert "policy_engine.cli.plugin_commands" in imported, completed.stderr[-2000:]
    commands = sorted(
        m for m in imported if m.startswith("policy_engine.cli.") and m.endswith("_cmd")
    )
    assert commands == []
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
        "if m.split('.')[0] in {'boto3', 'botocore'}), "
        "'jsonschema_rs' in sys.modules, 'jsonschema' in sys.modules]))\n"
    )

    result = h.python(code)

    assert result.code == 0, result
    exit_code, aws_modules, fast_loaded, precise_loaded = json.loads(result.out.splitlines()[-1])
    assert exit_code == 0, result
    assert fast_loaded  # validation really ran (the fast schema check needs jsonschema-rs)
    assert not precise_loaded  # jsonschema is for a document that fails
    assert aws_modules == []


# What a cold start (a new Lambda container, a pre-commit run) must not pay
# for: the AWS SDK and the metrics libraries wait for the first call or
# decision, and plugins are found without importlib.metadata.
NOT_AT_START = {"boto3", "botocore", "prometheus_client", "opentelemetry"}


def test_loading_and_compiling_with_the_installed_plugins_imports_no_client_library(h):
    policy = Path(__file__).resolve().parents[2] / "policies" / "general-ugc.yaml"
    code = (
        "import sys, json\n"
        "from policy_engine import DetectorRegistry, compile_policy, load_policy\n"
        "registry = DetectorRegistry.installed()\n"
        f"compiled = compile_policy(load_policy({str(policy)!r}, registry=registry), registry)\n"
        "print(json.dumps([compiled.policy.name, registry.names(), sorted(m for m in sys.modules "
        f"if m.split('.')[0] in {sorted(NOT_AT_START)!r} or m == 'importlib.metadata')]))\n"
    )

    result = h.python(code)

    assert result.code == 0, result
    name, detectors, loaded = json.loads(result.out.splitlines()[-1])
    assert name == "general-ugc"
    assert "rekognition-moderation" in detectors  # the installed plugins really loaded
    assert loaded == []


COMMANDS = sorted(
    path.stem.removesuffix("_cmd")
    for path in (Path(__file__).resolve().parents[2] / "policy_engine" / "cli").glob("*_cmd.py")
)


CLI = Path(__file__).resolve().parents[2] / "policy_engine" / "cli"


def test_the_command_table_lists_every_command_module():
    from policy_engine.cli import COMMANDS as TABLE

    assert set(TABLE) == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_do_not_import_each_other(command):
    """What two commands share lives in cli/common.py or cli/render.py."""
    tree = ast.parse((CLI / f"{command}_cmd.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    others = {m for m in imported if m.startswith("policy_engine.cli.") and m.endswith("_cmd")}
    assert others == set()


@pytest.mark.parametrize("command", COMMANDS)
def test_format_choices_are_the_keys_of_the_commands_renderer_map(command):
    import argparse
    from importlib import import_module

    module = import_module(f"policy_engine.cli.{command}_cmd")
    parser = argparse.ArgumentParser()
    module.configure(parser)
    formats = [a for a in parser._actions if a.dest == "format"]
    if not formats:
        assert not hasattr(module, "RENDERERS")
        return
    (option,) = formats
    assert tuple(option.choices) == tuple(module.RENDERERS)
    assert option.default in module.RENDERERS


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
