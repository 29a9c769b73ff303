from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from policy_engine.plugins import ENTRY_POINT_GROUP, PLUGINS_ENV, DetectorRegistry
from policy_engine_stub import StubDetector

PROJECT = Path(__file__).resolve().parents[1]


def test_the_distribution_declares_the_stub_entry_point() -> None:
    (entry_point,) = metadata.entry_points(group=ENTRY_POINT_GROUP, name="stub")

    assert entry_point.value == "policy_engine_stub.plugin"
    assert entry_point.dist is not None
    assert entry_point.dist.name == "policy-engine-stub"
    required = {Requirement(r).name for r in entry_point.dist.requires or []}
    assert "policy-engine" in required


def test_installed_detectors_include_stub_registered_through_the_entry_point() -> None:
    registry = DetectorRegistry.installed()

    assert "stub" in registry.names()
    assert isinstance(registry.get("stub"), StubDetector)
    assert registry.plugin_of("stub") == "stub"


def test_stub_comes_only_from_its_entry_point() -> None:
    only_stub = DetectorRegistry.installed(environ={PLUGINS_ENV: "stub"})
    none = DetectorRegistry.installed(environ={PLUGINS_ENV: ""})

    assert only_stub.names() == ("stub",)
    assert "stub" not in none


def test_the_build_ships_py_typed_and_only_the_package(tmp_path: Path) -> None:
    # An editable install reads the source folder; only a build shows what ships.
    # build_py assembles exactly the files a wheel packs, without needing `wheel`.
    source = tmp_path / "source"
    shutil.copytree(
        PROJECT, source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build")
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from setuptools import setup; setup()",
            "-q",
            "build_py",
            "--build-lib",
            str(tmp_path / "lib"),
        ],
        cwd=source,
        check=True,
        capture_output=True,
    )

    shipped = {
        path.relative_to(tmp_path / "lib").as_posix()
        for path in (tmp_path / "lib").rglob("*")
        if path.is_file()
    }
    assert shipped == {
        "policy_engine_stub/__init__.py",
        "policy_engine_stub/detector.py",
        "policy_engine_stub/plugin.py",
        "policy_engine_stub/py.typed",
        "policy_engine_stub/settings.py",
    }
