"""Renderers for ``validate``'s diagnostics: text, JSON, SARIF 2.1.0, GitHub Actions.

Each takes the reports of every checked file and returns the whole output as
one string. Codes, their severities and descriptions come from
:data:`policy_engine.diagnostics.DIAGNOSTIC_CODES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from policy_engine import __version__
from policy_engine.diagnostics import DIAGNOSTIC_CODES, CodeInfo, Diagnostic, Severity
from policy_engine.text import json_dumps

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
SRCROOT = "%SRCROOT%"
"""The base id of the repository root, relative to which SARIF paths are given."""
TOOL_NAME = "policy-engine"


@dataclass(frozen=True, slots=True)
class FileReport:
    """The outcome of checking one file: ``ok`` is false when it fails the check
    (errors, or warnings under ``--strict``)."""

    file: str
    diagnostics: tuple[Diagnostic, ...]
    ok: bool
    digest: str | None = None


def render_text(reports: Sequence[FileReport]) -> str:
    """``file:line:col: severity[code]: message``, one a line."""
    return "".join(d.render() + "\n" for report in reports for d in report.diagnostics)


def render_json(reports: Sequence[FileReport]) -> str:
    """A list with one object per file: file, ok, digest, diagnostics."""
    data = [
        {
            "file": report.file,
            "ok": report.ok,
            "digest": report.digest,
            "diagnostics": [d.to_dict() for d in report.diagnostics],
        }
        for report in reports
    ]
    return json_dumps(data, indent=2) + "\n"


def _sarif_level(severity: Severity) -> str:
    return "error" if severity is Severity.ERROR else "warning"


def sarif_uri(path: str) -> str:
    """A file name as a SARIF ``uri``: the path as given, ``/``-separated, with
    characters a URI reference cannot hold percent-encoded."""
    return quote(path.replace("\\", "/"), safe="/:@!$&'()*+,;=-._~")


def repository_root(path: str | Path) -> Path | None:
    """The root of the git work tree holding ``path``: the nearest folder above
    it with a ``.git`` (a folder, or the file of a linked work tree), or None."""
    for folder in Path(path).resolve().parents:
        if (folder / ".git").exists():
            return folder
    return None


class _SarifLocations:
    """Where each file is for code scanning: relative to the repository root
    (``uriBaseId`` %SRCROOT%), which is what GitHub matches against its
    checkout, whatever folder the command ran in. The root is the first
    checked file's repository; a file outside it, or outside any
    repository, keeps the path as given."""

    def __init__(self, files: Sequence[str]) -> None:
        self.root = next(filter(None, map(repository_root, files)), None)

    def artifact(self, file: str) -> dict[str, str]:
        if self.root is not None:
            resolved = Path(file).resolve()
            if resolved.is_relative_to(self.root):
                relative = resolved.relative_to(self.root).as_posix()
                return {"uri": sarif_uri(relative), "uriBaseId": SRCROOT}
        return {"uri": sarif_uri(file)}

    def base_ids(self) -> dict[str, Any]:
        if self.root is None:
            return {}
        return {"originalUriBaseIds": {SRCROOT: {"uri": self.root.as_uri().rstrip("/") + "/"}}}


def sarif_log(reports: Sequence[FileReport]) -> dict[str, Any]:
    """The SARIF 2.1.0 log: one run, every known code as a rule, each file
    relative to the repository root where there is one."""
    codes = dict(DIAGNOSTIC_CODES)
    for report in reports:  # a code missing from the table still gets a rule
        for diagnostic in report.diagnostics:
            if diagnostic.code not in codes:
                codes[diagnostic.code] = CodeInfo(diagnostic.severity, diagnostic.code)
    locations = _SarifLocations([d.file for report in reports for d in report.diagnostics])
    rule_ids = list(codes)
    index = {code: i for i, code in enumerate(rule_ids)}
    rules = [
        {
            "id": code,
            "name": "".join(part.capitalize() for part in code.split("-")),
            "shortDescription": {"text": info.description},
            "defaultConfiguration": {"level": _sarif_level(info.severity)},
        }
        for code, info in codes.items()
    ]
    results = [
        {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": _sarif_level(d.severity),
            "message": {"text": d.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": locations.artifact(d.file),
                        "region": {"startLine": d.line, "startColumn": d.column},
                    }
                }
            ],
        }
        for report in reports
        for d in report.diagnostics
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": __version__,
                        "rules": rules,
                    }
                },
                **locations.base_ids(),
                "results": results,
            }
        ],
    }


def render_sarif(reports: Sequence[FileReport]) -> str:
    return json_dumps(sarif_log(reports), indent=2) + "\n"


def escape_data(text: str) -> str:
    """A workflow command's message: ``%``, CR and LF escaped as GitHub reads them."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: as :func:`escape_data`, and ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(reports: Sequence[FileReport]) -> str:
    """GitHub Actions workflow commands: ``::error file=F,line=L,col=C,title=CODE::message``."""
    lines = []
    for report in reports:
        for d in report.diagnostics:
            command = "error" if d.severity is Severity.ERROR else "warning"
            properties = ",".join(
                f"{key}={escape_property(value)}"
                for key, value in (
                    ("file", d.file),
                    ("line", str(d.line)),
                    ("col", str(d.column)),
                    ("title", d.code),
                )
            )
            lines.append(f"::{command} {properties}::{escape_data(d.message)}\n")
    return "".join(lines)


RENDERERS: Mapping[str, Callable[[Sequence[FileReport]], str]] = {
    "text": render_text,
    "json": render_json,
    "sarif": render_sarif,
    "github": render_github,
}
