"""The README's code examples run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from policy_engine import DetectorRegistry, Engine, Image, parse_policy
from policy_engine.plugins import RegisteredDetector, make_plugin_manager

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def plugin_example() -> str:
    (block,) = [b for b in python_blocks() if "policy_engine_register_detectors" in b]
    return block


def test_readme_plugin_example_registers_and_detects() -> None:
    namespace: dict[str, Any] = {
        "call_my_model": lambda endpoint, data: [("Acme Logo", 91.5)],
        "__name__": "my_detector.plugin",
    }
    exec(compile(plugin_example(), "README.md", "exec"), namespace)
    manager = make_plugin_manager(load_entry_points=False)
    module = type(
        "Plugin",
        (),
        {
            "policy_engine_register_detectors": staticmethod(
                namespace["policy_engine_register_detectors"]
            )
        },
    )
    manager.register(module, name="acme")
    registry = DetectorRegistry.from_plugin_manager(manager)
    assert registry.names() == ("acme-logos",)
    policy = parse_policy(
        "version: 1\nname: logos\ndetectors: {acme-logos: {endpoint: http://127.0.0.1:9}}\n"
        "rules:\n  - id: logos\n    match: {name: Acme Logo}\n    review_at: 90\n",
        registry=registry,
    )
    decision = Engine(policy, registry).check(Image("upload-1", b"\x89PNG"))
    assert decision.verdict == "review"
    assert [(r.rule, r.label, r.threshold) for r in decision.reasons()] == [
        ("logos", "Acme Logo", 90.0)
    ]


def test_readme_plugin_example_turns_a_timeout_into_a_detector_error() -> None:
    def timing_out(endpoint: str, data: bytes) -> list[tuple[str, float]]:
        raise TimeoutError("no answer in 5 s")

    namespace: dict[str, Any] = {"call_my_model": timing_out, "__name__": "my_detector.plugin"}
    exec(compile(plugin_example(), "README.md", "exec"), namespace)
    detector = namespace["LogoDetector"]()
    registry = DetectorRegistry([RegisteredDetector(detector, "acme")])
    policy = parse_policy(
        "version: 1\nname: logos\ndetectors: {acme-logos: {endpoint: x}}\nrules: []\n",
        registry=registry,
    )
    decision = Engine(policy, registry).check(Image("upload-1", b"x"))
    assert decision.verdict == "review"  # on_error defaults to review
    assert decision.failures[0].code == "timeout"
    assert decision.failures[0].retryable is True


def test_readme_settings_schema_is_checked_when_the_policy_loads() -> None:
    namespace: dict[str, Any] = {"call_my_model": None, "__name__": "my_detector.plugin"}
    exec(compile(plugin_example(), "README.md", "exec"), namespace)
    registry = DetectorRegistry([RegisteredDetector(namespace["LogoDetector"](), "acme")])
    from policy_engine import PolicyLoadError

    with pytest.raises(PolicyLoadError) as info:
        parse_policy(
            "version: 1\nname: l\ndetectors: {acme-logos: {}}\nrules: []\n", registry=registry
        )
    assert [d.code for d in info.value.diagnostics] == ["missing-key"]


def test_readme_library_example_runs(tmp_path: Path) -> None:
    (block,) = [b for b in python_blocks() if "Engine(policy, registry)" in b]
    root = README.parent
    recordings = root / "examples" / "recordings"
    image = (root / "examples" / "images" / "knife-fight.jpg").read_bytes()
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        (root / "policies" / "general-ugc.yaml")
        .read_text(encoding="utf-8")
        .replace("  rekognition-moderation: {}", f"  stub: {{recordings: {recordings}}}"),
        encoding="utf-8",
    )
    code = block.replace('"policies/general-ugc.yaml"', repr(str(policy_file)))
    namespace: dict[str, Any] = {"image_bytes": image}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["decision"].verdict == "block"


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_tests_file_example_passes(tmp_path: Path) -> None:
    import io

    from policy_engine.cli import main

    (block,) = [b for b in yaml_blocks() if b.startswith("policy: general-ugc.yaml")]
    root = README.parent
    text = block.replace(
        "policy: general-ugc.yaml", f"policy: {root / 'policies' / 'general-ugc.yaml'}"
    )
    text = text.replace("../examples/", f"{root / 'examples'}/")
    tests_file = tmp_path / "readme.tests.yaml"
    tests_file.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert main(["test", str(tests_file)], out, err) == 0, out.getvalue() + err.getvalue()
    assert out.getvalue().splitlines()[-1] == "6 passed, 0 failed"


def test_readme_ignore_comment_example_is_what_young_audience_uses() -> None:
    (block,) = [b for b in yaml_blocks() if "policy-engine: ignore[" in b]
    policy = (README.parent / "policies" / "young-audience.yaml").read_text(encoding="utf-8")
    assert block.strip() in policy
