"""The renderers of ``validate``: text, JSON, SARIF 2.1.0 and GitHub workflow commands."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from policy_engine import __version__
from policy_engine.cli.report_formats import (
    RENDERERS,
    FileReport,
    escape_data,
    escape_property,
    render_github,
    render_json,
    render_sarif,
    render_text,
    sarif_uri,
)
from policy_engine.diagnostics import DIAGNOSTIC_CODES, Diagnostic, Severity

ERROR = Diagnostic(
    "threshold-order", Severity.ERROR, "review_at (95) must be below", "a.yaml", 6, 16
)
WARNING = Diagnostic(
    "narrowing-rule", Severity.WARNING, "50% of it, a: b\nnext\rline", "dir/b c.yaml", 8, 5
)
REPORTS = [
    FileReport("a.yaml", (ERROR,), ok=False),
    FileReport("dir/b c.yaml", (WARNING,), ok=True, digest="sha256:00"),
    FileReport("clean.yaml", (), ok=True, digest="sha256:11"),
]

# The parts of the SARIF 2.1.0 schema (sarif-schema-2.1.0.json) our output uses:
# required properties and types, checked by hand as no package here ships the schema.
_SARIF_SUBSET: dict[str, Any] = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string"},
        "version": {"const": "2.1.0"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1,
            "items": {
                "type": "object",
                "required": ["tool"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"const": "policy-engine"},
                                    "version": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id", "shortDescription"],
                                            "properties": {
                                                "id": {"type": "string"},
                                                "shortDescription": {
                                                    "type": "object",
                                                    "required": ["text"],
                                                },
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "properties": {
                                                        "level": {
                                                            "enum": [
                                                                "none",
                                                                "note",
                                                                "warning",
                                                                "error",
                                                            ]
                                                        }
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["message"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": -1},
                                "level": {"enum": ["none", "note", "warning", "error"]},
                                "message": {"type": "object", "required": ["text"]},
                                "locations": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "required": ["artifactLocation", "region"],
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "required": ["uri"],
                                                        "properties": {"uri": {"type": "string"}},
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "required": ["startLine", "startColumn"],
                                                        "properties": {
                                                            "startLine": {
                                                                "type": "integer",
                                                                "minimum": 1,
                                                            },
                                                            "startColumn": {
                                                                "type": "integer",
                                                                "minimum": 1,
                                                            },
                                                        },
                                                    },
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def sarif_problems(log: Any) -> list[str]:
    validator = Draft7Validator(_SARIF_SUBSET)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]


def test_text_is_one_rendered_line_per_diagnostic() -> None:
    assert render_text(REPORTS) == ERROR.render() + "\n" + WARNING.render() + "\n"
    assert render_text([REPORTS[2]]) == ""


def test_json_keeps_its_shape() -> None:
    data = json.loads(render_json(REPORTS))
    assert [(e["file"], e["ok"], e["digest"]) for e in data] == [
        ("a.yaml", False, None),
        ("dir/b c.yaml", True, "sha256:00"),
        ("clean.yaml", True, "sha256:11"),
    ]
    assert data[0]["diagnostics"] == [ERROR.to_dict()]


def test_sarif_structure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()  # the files are relative to the repository's root
    monkeypatch.chdir(tmp_path)
    log = json.loads(render_sarif(REPORTS))
    assert sarif_problems(log) == []
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("policy-engine", __version__)
    rules = driver["rules"]
    assert [r["id"] for r in rules] == list(DIAGNOSTIC_CODES)
    for rule in rules:
        info = DIAGNOSTIC_CODES[rule["id"]]
        assert rule["shortDescription"]["text"] == info.description
        assert rule["defaultConfiguration"]["level"] == info.severity.value
    first, second = run["results"]
    assert first["ruleId"] == "threshold-order" and first["level"] == "error"
    assert second["ruleId"] == "narrowing-rule" and second["level"] == "warning"
    assert rules[first["ruleIndex"]]["id"] == "threshold-order"
    assert second["message"]["text"] == WARNING.message
    location = second["locations"][0]["physicalLocation"]
    assert location == {
        "artifactLocation": {"uri": "dir/b%20c.yaml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 8, "startColumn": 5},
    }
    root = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert root == tmp_path.resolve().as_uri() + "/"


def test_sarif_without_results_still_lists_the_rules() -> None:
    log = json.loads(render_sarif([REPORTS[2]]))
    assert sarif_problems(log) == []
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["tool"]["driver"]["rules"]


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("p.yaml", "p.yaml"),
        ("policies/a b.yaml", "policies/a%20b.yaml"),
        ("dir\\p.yaml", "dir/p.yaml"),
        ("/abs/p#1.yaml", "/abs/p%231.yaml"),
        ("100%.yaml", "100%25.yaml"),
    ],
)
def test_sarif_uri(path: str, uri: str) -> None:
    assert sarif_uri(path) == uri


def test_github_escaping() -> None:
    assert escape_data("50% a:b,c\r\nd") == "50%25 a:b,c%0D%0Ad"
    assert escape_property("50% a:b,c\r\nd") == "50%25 a%3Ab%2Cc%0D%0Ad"


def test_github_commands() -> None:
    assert render_github(REPORTS).splitlines() == [
        "::error file=a.yaml,line=6,col=16,title=threshold-order::review_at (95) must be below",
        "::warning file=dir/b c.yaml,line=8,col=5,title=narrowing-rule::"
        "50%25 of it, a: b%0Anext%0Dline",
    ]


def test_github_escapes_the_file_property() -> None:
    report = FileReport("C:,x%.yaml", (replace(ERROR, file="C:,x%.yaml"),), ok=False)
    assert render_github([report]).startswith("::error file=C%3A%2Cx%25.yaml,line=6,")


def test_every_format_has_a_renderer() -> None:
    assert set(RENDERERS) == {"text", "json", "sarif", "github"}
