"""The published pre-commit hooks (``.pre-commit-hooks.yaml``), offline.

pre-commit installs a ``language: python`` hook with ``pip install .
<additional_dependencies>`` in its clone of this repository, then runs the
entry on the files that match ``files``/``exclude``. Installing needs PyPI,
which the suite never reaches: ``.ci/check-pre-commit-hooks`` runs the real
``pre-commit try-repo``. Here each entry runs as pre-commit would run it,
with only the plugins the hook installs allowed (``POLICY_ENGINE_PLUGINS``).
"""

from __future__ import annotations

import re
import shlex
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

HOOK_IDS = ("policy-engine-validate", "policy-engine-test")


def _hooks(main: Path) -> dict[str, dict[str, Any]]:
    manifest = yaml.safe_load((main / ".pre-commit-hooks.yaml").read_text("utf-8"))
    return {hook["id"]: hook for hook in manifest}


def _plugin_names(main: Path, hook: dict[str, Any]) -> list[str]:
    """The plugin entry points that the hook's additional_dependencies install:
    each is a folder of this repository (pip resolves it in the hook's clone)."""
    names: list[str] = []
    for dependency in hook["additional_dependencies"]:
        assert dependency.startswith("./"), dependency
        project = tomllib.loads((main / dependency / "pyproject.toml").read_text("utf-8"))
        names.extend(project["project"]["entry-points"]["policy_engine"])
    return names


def _files_passed(main: Path, hook: dict[str, Any]) -> list[str]:
    """The repository's policy files that pre-commit hands the hook (--all-files)."""
    files, exclude = re.compile(hook["files"]), re.compile(hook.get("exclude", "^$"))
    candidates = sorted(
        path.relative_to(main).as_posix() for path in (main / "policies").rglob("*")
    )
    return [p for p in candidates if files.search(p) and not exclude.search(p)]


def _run_hook(h, hook: dict[str, Any], plugins: str, root: Path | None = None) -> Any:
    root = root or h.MAIN
    command = shlex.split(hook["entry"])
    assert command[0] == "policy-engine", command
    files = _files_passed(root, hook) if hook.get("pass_filenames", True) else []
    return h.run(*command[1:], *files, cwd=root, env={"POLICY_ENGINE_PLUGINS": plugins})


NEEDS_UNHOOKED_PLUGIN = "open-nsfw-then-rekognition*"
"""Reference policies whose detector plugin the hooks leave out (open-nsfw brings
ONNX Runtime): a consumer using it adds ./plugins/open-nsfw; so does
.ci/check-pre-commit-hooks, which leaves them out the same way."""


def _consumer(main: Path, tmp_path: Path) -> Path:
    """A consumer repository's copy of policies/, as the CI check makes it."""
    shutil.copytree(
        main / "policies",
        tmp_path / "policies",
        ignore=shutil.ignore_patterns(NEEDS_UNHOOKED_PLUGIN),
    )
    return tmp_path


def test_both_hooks_are_python_hooks_that_install_the_detector_plugins(h):
    hooks = _hooks(h.MAIN)

    assert set(hooks) == set(HOOK_IDS)
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert sorted(_plugin_names(h.MAIN, hook)) == ["rekognition", "stub"]


def test_the_validate_hook_is_strict(h):
    assert "--strict" in shlex.split(_hooks(h.MAIN)["policy-engine-validate"]["entry"])


@pytest.mark.parametrize("hook_id", HOOK_IDS)
def test_each_hook_passes_on_the_repositorys_policies_with_its_plugins(h, hook_id, tmp_path):
    hook = _hooks(h.MAIN)[hook_id]
    consumer = _consumer(h.MAIN, tmp_path)

    result = _run_hook(h, hook, ",".join(_plugin_names(h.MAIN, hook)), consumer)

    assert result.code == 0, result
    if hook_id == "policy-engine-test":
        passed = re.search(r"^(\d+) passed, 0 failed$", result.out, re.MULTILINE)
        assert passed and int(passed.group(1)) > 0, result.out
    else:
        assert _files_passed(consumer, hook), "the hook was handed no policy"
        assert "0 with errors or warnings" in result.out + result.err, result


@pytest.mark.parametrize("hook_id", HOOK_IDS)
def test_each_hook_fails_with_the_core_alone(h, hook_id):
    # what the hooks did before they installed the plugins: must never pass
    result = _run_hook(h, _hooks(h.MAIN)[hook_id], "")

    assert result.code != 0, result
    assert "unknown-detector" in result.out + result.err
