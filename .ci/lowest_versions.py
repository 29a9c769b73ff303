"""Print what .ci/min-versions installs: the declared minimums, as pins.

Reads every pyproject.toml of the repository (the root and plugins/*) as it is
at run time. ``constraints`` prints one ``name==X`` line for each requirement
``name>=X`` (or ``name~=X``) in ``dependencies``, in every extra and in every
dependency group, so pip installs exactly the oldest version each distribution
claims to work with. ``install`` prints pip's arguments that install each
distribution editable with all its extras and groups. The repository's own
distributions are installed from here, so their bounds are not pinned.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# name, extras, version specifiers, environment marker (PEP 508, no URLs)
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?$")
LOWER_BOUND = re.compile(r"^(?:>=|~=)\s*([^\s,]+)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def projects() -> list[tuple[Path, dict[str, Any]]]:
    files = [ROOT / "pyproject.toml", *sorted(ROOT.glob("plugins/*/pyproject.toml"))]
    return [(file.parent, tomllib.loads(file.read_text("utf-8"))) for file in files]


def requirements(data: dict[str, Any]) -> Iterator[str]:
    project = data.get("project", {})
    yield from project.get("dependencies", [])
    for extra in project.get("optional-dependencies", {}).values():
        yield from extra
    for group in data.get("dependency-groups", {}).values():
        # an {include-group = ...} table names a group listed here anyway
        yield from (item for item in group if isinstance(item, str))


def pinned(requirement: str) -> tuple[str, str] | None:
    """``'boto3>=1.43.3'`` -> ``('boto3', 'boto3==1.43.3')``; None without a lower bound."""
    match = REQUIREMENT.match(requirement)
    if match is None:
        raise SystemExit(f"cannot read the requirement {requirement!r}")
    name, specifiers, marker = match.groups()
    for specifier in filter(None, (s.strip() for s in specifiers.split(","))):
        bound = LOWER_BOUND.match(specifier)
        if bound is not None:
            pin = f"{canonical(name)}=={bound.group(1)}" + (f" {marker}" if marker else "")
            return canonical(name), pin
    return None


def constraints() -> list[str]:
    found = projects()
    local = {canonical(data["project"]["name"]) for _, data in found}
    pins: dict[str, str] = {}
    for _, data in found:
        for requirement in requirements(data):
            result = pinned(requirement)
            if result is None or result[0] in local:
                continue
            name, pin = result
            if pins.setdefault(name, pin) != pin:
                # one run cannot install both, so the lower would go untested
                raise SystemExit(f"two minimums for {name}: {pins[name]}, {pin}")
    return sorted(pins.values())


def install_arguments() -> list[str]:
    arguments: list[str] = []
    for folder, data in projects():
        where = "." if folder == ROOT else f"./{folder.relative_to(ROOT)}"
        extras = ",".join(data["project"].get("optional-dependencies", {}))
        arguments += ["-e", f"{where}[{extras}]" if extras else where]
        for group in data.get("dependency-groups", {}):
            arguments += ["--group", f"{where}/pyproject.toml:{group}"]
    return arguments


if __name__ == "__main__":
    what = sys.argv[1:] or ["constraints"]
    if what == ["constraints"]:
        print("\n".join(constraints()))
    elif what == ["install"]:
        print("\n".join(install_arguments()))
    else:
        raise SystemExit("usage: lowest_versions.py [constraints | install]")
