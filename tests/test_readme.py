"""The README's code examples run as written."""

from __future__ import annotations

import difflib
import io
import re
import shlex
import shutil
import subprocess
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


def test_readme_library_example_runs_as_written_and_its_claims_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (block,) = [b for b in python_blocks() if "DetectorRegistry.installed()" in b]
    monkeypatch.chdir(README.parent)
    namespace: dict[str, Any] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    claims = claimed_values(block)
    assert len(claims) == 2, claims  # the offline decision, and labels decided directly
    for expression, claimed in claims:
        assert eval(expression, namespace) == claimed, expression


def claimed_values(block: str) -> list[tuple[str, Any]]:
    """Each ``expression  # Verdict.X ...`` line of a block: what it says the value is."""
    from policy_engine.model import Verdict

    found = re.findall(r"^(\S[^#\n]*?)\s+#\s+Verdict\.([A-Z]+)\b", block, re.M)
    return [(expression, Verdict[name]) for expression, name in found]


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_tests_file_example_passes(tmp_path: Path) -> None:
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


def test_readme_policy_language_example_loads() -> None:
    from policy_engine.loader import check_policy_text

    (block,) = [b for b in yaml_blocks() if b.startswith("version: 1")]
    result = check_policy_text(block, "README.md", registry=DetectorRegistry.installed())
    assert result.policy is not None, [d.render() for d in result.errors]


def test_readme_quickstart_decides_a_mix_and_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    from policy_engine.cli import main

    (block,) = [b for b in re.findall(r"```sh\n(.*?)```", readme(), re.S) if "--replay" in b]
    command = block.strip().split(" && ")[-1]
    assert command.startswith("python -m policy_engine check ")
    monkeypatch.chdir(README.parent)
    out, err = io.StringIO(), io.StringIO()

    code = main(shlex.split(command)[3:], out, err)

    assert code == 3, out.getvalue() + err.getvalue()  # the image with no recording
    heads = re.findall(r"^\S+: (ALLOW|REVIEW|BLOCK)", out.getvalue(), re.M)
    assert {"ALLOW", "REVIEW", "BLOCK"} <= set(heads)
    assert "examples/images/unrecorded.png: REVIEW" in out.getvalue()


# -- sample outputs ---------------------------------------------------------------------
#
# A ```console block is "$ policy-engine ARGS" and what it prints on stdout. The
# test runs it in a copy of policies/ and examples/ and compares, where "..." on
# a line of its own stands for any lines left out, and "..." within a line for
# any text. Where the README says the sample follows an edit, SETUPS makes it.


def lower_graphic_violence_block_at_on_a_branch(root: Path) -> None:
    """The diff sample: main has block_at 90, the working copy 80."""
    git = ["git", "-c", "user.name=readme", "-c", "user.email=readme@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "policies"], cwd=root, check=True)
    edit(root / "policies" / "general-ugc.yaml", "graphic-violence", "block_at: 90", "block_at: 80")


def raise_explicit_block_at(root: Path) -> None:
    """The failing invariant sample."""
    edit(root / "policies" / "general-ugc.yaml", "id: explicit\n", "block_at: 80", "block_at: 85")


def edit(path: Path, rule: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in the first rule after ``rule``."""
    text = path.read_text(encoding="utf-8")
    start = text.index(rule)
    at = text.index(old, start)
    path.write_text(text[:at] + new + text[at + len(old) :], encoding="utf-8")


SETUPS = {
    "policy-engine diff main:policies/general-ugc.yaml policies/general-ugc.yaml "
    "--corpus examples/recordings --format markdown": lower_graphic_violence_block_at_on_a_branch,
    "policy-engine test policies/general-ugc.tests.yaml": raise_explicit_block_at,
}


def readme() -> str:
    return README.read_text(encoding="utf-8")


def console_blocks() -> list[tuple[str, str]]:
    """(command, expected output) of every ```console block."""
    found = []
    for block in re.findall(r"```console\n(.*?)```", readme(), re.S):
        first, _, output = block.partition("\n")
        assert first.startswith("$ policy-engine "), first
        found.append((first.removeprefix("$ "), output))
    return found


def matches(expected: str, actual: str) -> bool:
    pattern = []
    for line in expected.splitlines():
        if line.strip() == "...":
            pattern.append(r"(?:[^\n]*\n)*?")
        else:
            pattern.append("[^\n]*?".join(map(re.escape, line.split("..."))) + "\n")
    return re.fullmatch("".join(pattern), actual) is not None


def test_every_sample_output_has_a_test_and_every_setup_a_sample() -> None:
    commands = [command for command, _ in console_blocks()]
    assert len(commands) >= 5  # the opening sample, the record, table, diff, test
    assert set(SETUPS) <= set(commands)


@pytest.mark.parametrize(
    ("command", "expected"), console_blocks(), ids=lambda value: str(value)[:60]
)
def test_readme_sample_output_is_what_the_command_prints(
    command: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policy_engine.cli import main

    for folder in ("policies", "examples"):
        shutil.copytree(
            README.parent / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    setup = SETUPS.get(command)
    if setup is not None:
        setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POLICY_ENGINE_PLUGINS", raising=False)
    out, err = io.StringIO(), io.StringIO()

    main(shlex.split(command)[1:], out, err)

    actual = out.getvalue().replace(str(tmp_path), "<tmp>")
    assert matches(expected, actual), (
        "\n".join(
            difflib.unified_diff(
                expected.splitlines(), actual.splitlines(), "README.md", command, lineterm=""
            )
        )
        + "\n"
        + err.getvalue()
    )
