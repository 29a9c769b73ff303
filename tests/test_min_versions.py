"""CI's minimum-versions step (.ci/min-versions): what it pins, and that it
pins every runtime dependency, so that no declared minimum goes untested."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lowest() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "lowest_versions", ROOT / ".ci" / "lowest_versions.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        ("boto3>=1.43.3", ("boto3", "boto3==1.43.3")),
        ("PyYAML >= 6.0.1, <7", ("pyyaml", "pyyaml==6.0.1")),
        ("policy_engine~=0.1", ("policy-engine", "policy-engine==0.1")),
        (
            'tomli[extra]>=2; python_version < "3.11"',
            ("tomli", 'tomli==2 ; python_version < "3.11"'),
        ),
        ("pytest", None),
        ("moto<6", None),
    ],
)
def test_a_lower_bound_becomes_a_pin(
    lowest: ModuleType, requirement: str, expected: tuple[str, str] | None
) -> None:
    assert lowest.pinned(requirement) == expected


def test_every_runtime_dependency_has_a_tested_minimum(lowest: ModuleType) -> None:
    pins = {line.split("==")[0] for line in lowest.constraints()}
    projects = lowest.projects()
    local = {lowest.canonical(data["project"]["name"]) for _, data in projects}
    runtime = [
        requirement
        for _, data in projects
        for name, requirements in [
            ("dependencies", data["project"].get("dependencies", [])),
            *data["project"].get("optional-dependencies", {}).items(),
        ]
        if name != "test"  # test tools may float; what users install may not
        for requirement in requirements
    ]
    names = {lowest.canonical(lowest.REQUIREMENT.match(r).group(1)) for r in runtime}
    assert names - local, "no runtime dependency found: the pyproject files were not read"
    assert sorted(names - local - pins) == []


def test_the_install_covers_every_distribution_and_extra(lowest: ModuleType) -> None:
    arguments = lowest.install_arguments()
    targets = [arguments[i + 1] for i, flag in enumerate(arguments) if flag == "-e"]
    installed = {target.split("[")[0]: target for target in targets}
    for folder, data in lowest.projects():
        where = "." if folder == ROOT else f"./{folder.relative_to(ROOT)}"
        extras = data["project"].get("optional-dependencies", {})
        assert installed[where] == (f"{where}[{','.join(extras)}]" if extras else where)
    assert len(installed) == len(lowest.projects()) > 1
