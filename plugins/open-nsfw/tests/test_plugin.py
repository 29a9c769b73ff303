"""The distribution's entry point registers the ``open-nsfw`` detector, local,
with its settings schema, and a policy naming the detector loads clean."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from policy_engine import DetectorRegistry
from policy_engine.loader import check_policy_file
from policy_engine.plugins import make_plugin_manager

ROOT = Path(__file__).resolve().parents[3]


def test_the_entry_point_registers_the_local_detector(
    declared_plugin: tuple[str, ModuleType],
) -> None:
    name, module = declared_plugin
    manager = make_plugin_manager(load_entry_points=False)
    manager.register(module, name=name)

    registry = DetectorRegistry.from_plugin_manager(manager)

    assert name == "open-nsfw" and registry.names() == ("open-nsfw",)
    assert registry.get("open-nsfw").remote is False


@pytest.mark.usefixtures("registered")
def test_the_example_policy_loads_without_any_diagnostic() -> None:
    result = check_policy_file(
        ROOT / "examples" / "open-nsfw" / "policy.yaml", registry=DetectorRegistry.installed()
    )

    assert [d.render() for d in result.diagnostics] == []


@pytest.mark.usefixtures("registered")
def test_unknown_settings_are_a_load_error(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\nname: p\ndetectors:\n  open-nsfw: {batch_size: 0, gpu: true}\nrules: []\n",
        encoding="utf-8",
    )

    result = check_policy_file(policy, registry=DetectorRegistry.installed())
    rendered = "\n".join(d.render() for d in result.diagnostics)

    assert "batch_size" in rendered and "gpu" in rendered
