"""Synthetic images (made with Pillow, rotated and mirrored here), banks built
from them, and the plugin visible to the CLI as if installed, so these tests
need neither an install, nor the network, nor AWS."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from policy_engine import plugins
from policy_engine.cli import main
from policy_engine.entry_points import EntryPoint
from policy_engine.plugins import ENTRY_POINT_GROUP

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hash_match_helpers import Pictures

ENTRY_POINT = EntryPoint("hash-match", "policy_engine_hash_match.plugin")


@pytest.fixture
def pictures(tmp_path: Path) -> Pictures:
    folder = tmp_path / "images"
    folder.mkdir()
    return Pictures(folder)


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin found among the installed entry points, as ``pip install`` would."""
    real = plugins.installed_entry_points

    def with_ours(group: str) -> list[EntryPoint]:
        found = [ep for ep in real(group) if ep.name != ENTRY_POINT.name]
        return [*found, ENTRY_POINT] if group == ENTRY_POINT_GROUP else found

    monkeypatch.setattr(plugins, "installed_entry_points", with_ours)
    monkeypatch.delenv("POLICY_ENGINE_PLUGINS", raising=False)


@pytest.fixture
def cli(installed: None) -> Iterator[Callable[..., Run]]:
    def run(*args: str | Path) -> Run:
        out, err = io.StringIO(), io.StringIO()
        code = main([str(arg) for arg in args], out, err)
        return Run(code, out.getvalue(), err.getvalue())

    yield run
