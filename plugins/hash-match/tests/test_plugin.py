from __future__ import annotations

import tomllib
from pathlib import Path

from policy_engine.cli import COMMANDS
from policy_engine.cli.plugin_commands import plugin_commands
from policy_engine.plugins import (
    ENTRY_POINT_GROUP,
    DetectorRegistry,
    make_plugin_manager,
    register_plugin,
)
from policy_engine_hash_match import plugin
from policy_engine_hash_match.detector import HashMatchDetector

PROJECT = Path(__file__).resolve().parents[1]


def test_the_distribution_declares_its_entry_point_and_dependencies() -> None:
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "policy-engine-hash-match"
    assert project["entry-points"][ENTRY_POINT_GROUP] == {
        "hash-match": "policy_engine_hash_match.plugin"
    }
    required = {r.split(">")[0].split("<")[0] for r in project["dependencies"]}
    assert {"policy-engine", "pdqhash", "numpy", "pillow"} <= required
    assert (PROJECT / "policy_engine_hash_match" / "py.typed").is_file()


def test_the_plugin_registers_the_detector_and_the_bank_command() -> None:
    manager = make_plugin_manager(load_entry_points=False)
    register_plugin(manager, plugin, "hash-match")
    registry = DetectorRegistry.from_plugin_manager(manager)
    detector = registry.get("hash-match")
    assert isinstance(detector, HashMatchDetector) and detector.remote is False
    (command,) = plugin_commands(COMMANDS, manager).values()
    assert (command.name, command.plugin) == ("bank", "hash-match")


def test_installed_it_is_found_through_the_entry_point(installed: None) -> None:
    assert "hash-match" in DetectorRegistry.installed().names()
