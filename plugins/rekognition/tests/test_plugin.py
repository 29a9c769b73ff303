"""Registration through the entry point and through a fresh pluggy manager,
and the promise that importing the plugin does not import boto3 (nor Pillow)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata

import policy_engine_rekognition.plugin
from policy_engine.plugins import DetectorRegistry, make_plugin_manager
from policy_engine_rekognition.custom_labels import CustomLabelsDetector
from policy_engine_rekognition.moderation import ModerationDetector

NAMES = {"rekognition-moderation", "rekognition-custom-labels"}


def test_entry_point_is_installed() -> None:
    (entry_point,) = [
        ep for ep in metadata.entry_points(group="policy_engine") if ep.name == "rekognition"
    ]
    assert entry_point.value == "policy_engine_rekognition.plugin"
    assert entry_point.dist is not None
    assert entry_point.dist.metadata["Name"] == "policy-engine-rekognition"


def test_installed_registry_has_both_detectors() -> None:
    registry = DetectorRegistry.installed(environ={})
    assert set(registry.names()) >= NAMES
    assert registry.plugin_of("rekognition-moderation") == "rekognition"
    assert isinstance(registry.get("rekognition-moderation"), ModerationDetector)
    assert isinstance(registry.get("rekognition-custom-labels"), CustomLabelsDetector)


def test_fresh_manager_registers_the_plugin_module() -> None:
    manager = make_plugin_manager(load_entry_points=False)
    manager.register(policy_engine_rekognition.plugin, name="rekognition")
    registry = DetectorRegistry.from_plugin_manager(manager)
    assert set(registry.names()) == NAMES


def test_registry_routes_each_raw_response_to_its_detector() -> None:
    manager = make_plugin_manager(load_entry_points=False)
    manager.register(policy_engine_rekognition.plugin, name="rekognition")
    registry = DetectorRegistry.from_plugin_manager(manager)
    moderation = registry.parse_response(
        {"ModerationLabels": [{"Name": "Violence", "Confidence": 90.0}]}
    )
    custom = registry.parse_response({"CustomLabels": [{"Name": "MyLogo", "Confidence": 80.0}]})
    assert moderation.source == "rekognition-moderation"
    assert custom.source == "rekognition-custom-labels"


def test_importing_registering_and_parsing_never_import_boto3_or_pillow() -> None:
    script = textwrap.dedent(
        """
        import sys
        import policy_engine_rekognition.plugin
        from policy_engine.plugins import DetectorRegistry
        registry = DetectorRegistry.installed(environ={"POLICY_ENGINE_PLUGINS": "rekognition"})
        result = registry.parse_response(
            {"ModerationModelVersion": "7.0",
             "ModerationLabels": [{"Name": "Violence", "Confidence": 90.0}]})
        registry.get("rekognition-moderation").taxonomy("7.0")
        registry.get("rekognition-moderation").settings_schema
        hook = policy_engine_rekognition.plugin.policy_engine_expand_input
        assert hook(spec="photos/") is None
        hook(spec="s3://bucket/photos/")  # not iterated: nothing listed yet
        loaded = sorted(
            m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "PIL")
        )
        print(",".join(loaded) or "none")
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert completed.stdout.strip() == "none", completed.stdout
