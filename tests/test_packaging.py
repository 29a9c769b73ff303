"""The packaging rules every distribution keeps (the core and each plugin), read
from the pyproject.toml files so they cannot drift: the Apache-2.0 licence as an
SPDX expression with its text shipped, full metadata, a readme that renders on
PyPI, one version, plugins pinned to a compatible core, test tools in a
dependency group, and sdists that leave out the tests they could not run."""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = [ROOT, *sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml"))]
IDS = [str(d.relative_to(ROOT)) for d in DISTRIBUTIONS]
REPOSITORY = "https://github.com/policy-engine/policy-engine"
TEST_TOOLS = {
    "pytest",
    "pytest-xdist",
    "hypothesis",
    "mypy",
    "ruff",
    "moto",
    "cfn-lint",
    "coverage",
}


def pyproject(folder: Path) -> dict[str, Any]:
    with (folder / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def project(folder: Path) -> dict[str, Any]:
    table: dict[str, Any] = pyproject(folder)["project"]
    return table


def packages(folder: Path) -> list[Path]:
    """The distribution's top-level import packages."""
    return sorted(init.parent for init in folder.glob("policy_engine*/__init__.py"))


def version_assignments(init: Path) -> list[ast.Assign]:
    tree = ast.parse(init.read_text(encoding="utf-8"))
    return [
        node
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
    ]


def distribution_version(folder: Path) -> Version:
    """The one version: pyproject's own, or the attribute it names."""
    meta = project(folder)
    if "version" in meta:
        return Version(meta["version"])
    module = pyproject(folder)["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    package = module.removesuffix(".__version__")
    (assignment,) = version_assignments(folder / package / "__init__.py")
    return Version(ast.literal_eval(assignment.value))


def test_every_distribution_is_checked() -> None:
    assert [project(d)["name"] for d in DISTRIBUTIONS] == [
        "policy-engine",
        "policy-engine-lambda",
        "policy-engine-hash-match",
        "policy-engine-open-nsfw",
        "policy-engine-opentelemetry",
        "policy-engine-prometheus",
        "policy-engine-rekognition",
        "policy-engine-stub",
    ]


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=IDS)
def test_licence_is_an_spdx_expression_with_its_text_shipped(folder: Path) -> None:
    meta = project(folder)

    assert meta["license"] == "Apache-2.0"
    assert meta["license-files"] == ["LICENSE"]
    # Each plugin's sdist cannot reach the root's file, so it keeps a copy: the same text.
    assert (folder / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    # setuptools refuses a licence classifier beside an SPDX expression.
    assert [c for c in meta["classifiers"] if c.startswith("License ::")] == []
    # PEP 639 metadata (license-files, an SPDX license) needs setuptools 77.
    (setuptools,) = [
        Requirement(r)
        for r in pyproject(folder)["build-system"]["requires"]
        if Requirement(r).name == "setuptools"
    ]
    assert not setuptools.specifier.contains("76.9") and setuptools.specifier.contains("77")


def test_the_licence_is_the_apache_licence_2_0() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")

    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=IDS)
def test_metadata_names_authors_classifiers_and_urls(folder: Path) -> None:
    meta = project(folder)

    assert meta["authors"] and all(author.get("name") for author in meta["authors"])
    assert "Programming Language :: Python :: 3 :: Only" in meta["classifiers"]
    assert ("Typing :: Typed" in meta["classifiers"]) == any(
        (package / "py.typed").is_file() for package in packages(folder)
    )
    urls = meta["urls"]
    assert sorted(urls) == ["Documentation", "Homepage", "Issues", "Repository"]
    assert all(url.startswith(REPOSITORY) for url in urls.values()), urls
    # The documentation link names a file of this repository: the distribution's README.
    documented = urls["Documentation"].removeprefix(f"{REPOSITORY}/blob/main/")
    assert ROOT / documented == folder / "README.md"


# [text](target), ![alt](target) and reference definitions "[name]: target"
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)|^\s*\[[^\]]+\]:\s*(\S+)", re.M)


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=IDS)
def test_the_readme_renders_on_pypi(folder: Path) -> None:
    readme = folder / project(folder)["readme"]
    links = [a or b for a, b in LINK.findall(readme.read_text(encoding="utf-8"))]

    # PyPI resolves no relative link and gives headings no anchors: every link is absolute.
    assert [link for link in links if not link.startswith("https://")] == []
    assert readme.suffix == ".md"


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=IDS)
def test_the_version_is_defined_once(folder: Path) -> None:
    meta = pyproject(folder)
    dynamic = meta["project"].get("dynamic", [])
    assigned = {p.name: version_assignments(p / "__init__.py") for p in packages(folder)}

    if "version" in dynamic:
        assert "version" not in meta["project"]
        attr = meta["tool"]["setuptools"]["dynamic"]["version"]["attr"]
        package = attr.removesuffix(".__version__")
        assert len(assigned.pop(package)) == 1, "one literal __version__ for setuptools to read"
        assert all(not found for found in assigned.values()), assigned
    else:
        assert all(not found for found in assigned.values()), assigned
    assert distribution_version(folder) >= Version("0.1")


def test_plugins_pin_the_distributions_of_this_repository_to_a_compatible_range() -> None:
    versions = {
        canonicalize_name(project(d)["name"]): distribution_version(d) for d in DISTRIBUTIONS
    }
    pins = [
        (project(d)["name"], Requirement(r))
        for d in DISTRIBUTIONS
        for r in project(d).get("dependencies", [])
        if canonicalize_name(Requirement(r).name) in versions
    ]

    assert {(name, str(req)) for name, req in pins} >= {
        ("policy-engine-stub", "policy-engine<0.2,>=0.1"),
        ("policy-engine-rekognition", "policy-engine<0.2,>=0.1"),
        ("policy-engine-lambda", "policy-engine<0.2,>=0.1"),
        ("policy-engine-lambda", "policy-engine-rekognition<0.2,>=0.1"),
    }
    for name, req in pins:
        current = versions[canonicalize_name(req.name)]
        # 0.x: a new minor may break; from 1.0 a new major.
        breaking = (
            Version(f"{current.major}.{current.minor + 1}")
            if current.major == 0
            else Version(f"{current.major + 1}")
        )
        assert req.specifier.contains(current), (name, str(req), current)
        assert not req.specifier.contains(breaking), (name, str(req), breaking)


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=IDS)
def test_test_tools_are_a_dependency_group_not_a_published_extra(folder: Path) -> None:
    extras = project(folder).get("optional-dependencies", {})
    published = {canonicalize_name(Requirement(r).name) for reqs in extras.values() for r in reqs}

    assert "test" not in extras
    assert {n for n in published if n in TEST_TOOLS or n.startswith("types-")} == set()
    assert pyproject(folder)["dependency-groups"]["test"]


def test_the_root_test_group_holds_what_every_plugin_test_needs() -> None:
    def names(folder: Path) -> set[str]:
        group = pyproject(folder)["dependency-groups"]["test"]
        return {canonicalize_name(Requirement(r).name) for r in group}

    for folder in DISTRIBUTIONS[1:]:
        assert names(folder) <= names(ROOT), folder


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=IDS)
def test_an_sdist_leaves_out_the_tests_it_could_not_run(folder: Path) -> None:
    # The tests need the whole repository (root conftest.py, examples/, other plugins).
    manifest = (folder / "MANIFEST.in").read_text(encoding="utf-8").splitlines()

    assert "prune tests" in manifest


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (command,) = re.findall(r"\*\*Test it\*\*.*?```sh\n(.*?)\n```", readme, re.S)
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    steps = [
        line.split("  #")[0].strip()
        for line in script[script.index("# the README's test command:") + 1 :]
    ]

    assert " && ".join(step for step in steps if step) == command
    assert "--group test" in command and shlex.split(command)[:5] == [
        "python",
        "-m",
        "pip",
        "install",
        "-q",
    ]
