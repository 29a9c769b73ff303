"""``policy-engine schema`` and ``policy-engine plugins``."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pytest

from policy_engine.plugins import ENTRY_POINT_GROUP


def _resolve(schema: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/"), ref
    node: Any = schema
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _undocumented(schema: dict[str, Any]) -> tuple[int, list[str]]:
    """How many entries under any ``properties`` there are, and those without a
    description, directly or through a ``$ref`` to a definition that has one."""
    missing: list[str] = []
    seen: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                for key, value in properties.items():
                    seen.append(key)
                    documented = isinstance(value, dict) and (
                        "description" in value
                        or ("$ref" in value and "description" in _resolve(schema, value["$ref"]))
                    )
                    if not documented:
                        missing.append(f"{where}/properties/{key}")
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(schema, "#")
    return len(seen), missing


def test_schema_core_prints_the_packaged_policy_schema(h):
    from jsonschema import Draft202012Validator

    result = h.run("schema", "--core")

    assert result.code == 0, result
    printed = result.json()
    assert printed == h.load_schema("policy.schema.json")
    assert printed.get("$id")
    Draft202012Validator.check_schema(printed)
    checked, missing = _undocumented(printed)
    assert missing == []
    # the walk reaches nested properties (top level, rules, match, labels, ...)
    assert checked > len(printed["properties"]) + 5


def test_schema_accepts_a_good_policy_and_rejects_a_typo(h):
    import yaml
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(h.run("schema").json())
    good = yaml.safe_load(h.VIOLENCE_POLICY)
    typo = yaml.safe_load(h.VIOLENCE_POLICY.replace("block_at", "blok_at"))

    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors(typo)) != []


def test_schema_documents_every_installed_detectors_settings(h):
    printed = h.run("schema").json()

    detectors = printed["properties"]["detectors"]
    assert sorted(detectors["properties"]) == [
        "hash-match",
        "open-nsfw",
        "rekognition-custom-labels",
        "rekognition-moderation",
        "stub",
    ]
    _, missing = _undocumented(printed)
    assert missing == []
    for key in ("region", "adapter_arn", "project_version_arn", "recordings"):
        assert any(
            key in printed["$defs"][f"detector:{name}"]["properties"]
            for name in detectors["properties"]
        ), key


def test_schema_validates_the_repositorys_policies_and_sets(h):
    import yaml
    from jsonschema import Draft202012Validator

    validators = {
        "policy": Draft202012Validator(h.run("schema").json()),
        "policy-set": Draft202012Validator(h.run("schema", "--kind", "policy-set").json()),
    }
    checked = []
    for path in sorted((h.MAIN / "policies").glob("*.yaml")):
        if path.name.endswith(".tests.yaml"):
            continue
        data = yaml.safe_load(path.read_text("utf-8"))
        kind = "policy-set" if data.get("kind") == "policy-set" else "policy"
        errors = [e.message for e in validators[kind].iter_errors(data)]
        assert errors == [], (path.name, errors)
        checked.append(kind)
    assert sorted(set(checked)) == ["policy", "policy-set"]


def test_schema_rejects_a_bad_detector_setting_at_its_path(h):
    import yaml
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(h.run("schema").json())
    policy = yaml.safe_load((h.MAIN / "policies" / "general-ugc.yaml").read_text("utf-8"))
    policy["detectors"]["rekognition-moderation"] = {"region": 5}
    policy["detectors"]["stub"] = {"recordings": "r", "missing": "skip"}

    found = sorted((list(e.absolute_path), e.validator) for e in validator.iter_errors(policy))

    assert found == [
        (["detectors", "rekognition-moderation", "region"], "type"),
        (["detectors", "stub", "missing"], "enum"),
    ]


def test_schema_holds_only_the_detectors_that_load(h):
    printed = h.run("schema", env={"POLICY_ENGINE_PLUGINS": "stub"}).json()

    assert list(printed["properties"]["detectors"]["properties"]) == ["stub"]
    assert not any(name.startswith("detector:rekognition") for name in printed["$defs"])


def test_schema_policy_set_documents_every_key(h):
    printed = h.run("schema", "--kind", "policy-set").json()
    checked, missing = _undocumented(printed)
    assert missing == []
    assert checked >= len(printed["properties"]) + 4


def test_schema_decision(h):
    from jsonschema import Draft202012Validator

    result = h.run("schema", "--decision")

    assert result.code == 0, result
    printed = result.json()
    assert printed == h.load_schema("decision.schema.json")
    assert printed["$id"] != h.load_schema("policy.schema.json")["$id"]
    Draft202012Validator.check_schema(printed)


@pytest.mark.parametrize(
    "name",
    [
        "policy.schema.json",
        "decision.schema.json",
        "policy-set.schema.json",
        "policy-tests.schema.json",
    ],
)
def test_repository_schemas_are_the_packaged_files(h, name):
    assert (h.MAIN / "schemas" / name).read_bytes() == (h.PACKAGED_SCHEMAS / name).read_bytes()


def test_plugins_lists_stub_and_rekognition(h):
    result = h.run("plugins")

    assert result.code == 0, result
    listing = {plugin["name"]: plugin for plugin in result.json()}
    # every installed plugin: CI installs the metrics plugins too (no detectors)
    installed = {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert set(listing) == installed >= {"stub", "rekognition"}, listing
    assert listing["stub"]["detectors"] == ["stub"]
    assert sorted(listing["rekognition"]["detectors"]) == [
        "rekognition-custom-labels",
        "rekognition-moderation",
    ]
    assert listing["stub"]["version"] == metadata.version("policy-engine-stub")
    assert listing["rekognition"]["version"] == metadata.version("policy-engine-rekognition")
    for plugin in listing.values():
        assert plugin["version"]
        hook = "register_detectors" if plugin["detectors"] else "decision_made"
        assert f"policy_engine_{hook}" in plugin["hooks"]


@pytest.mark.parametrize(("allowed", "expected"), [("stub", ["stub"]), ("", [])])
def test_plugins_env_restricts_the_listing(h, allowed, expected):
    result = h.run("plugins", env={"POLICY_ENGINE_PLUGINS": allowed})

    assert result.code == 0, result
    assert [plugin["name"] for plugin in result.json()] == expected


@pytest.mark.parametrize("command", [("plugins",), ("validate", "policies")])
def test_plugins_env_naming_a_plugin_not_installed_is_exit_2_naming_the_variable(h, command):
    result = h.run(*command, env={"POLICY_ENGINE_PLUGINS": "stub,rekogniton"}, cwd=h.MAIN)

    assert result.code == 2, result
    assert result.out == ""
    assert result.err.startswith("policy-engine: POLICY_ENGINE_PLUGINS names 'rekogniton'")
    assert "Traceback" not in result.err
