"""Findings about a policy, each with a stable code and a position; and the one
table of every code the package emits (:data:`DIAGNOSTIC_CODES`): diagnostics
of policies and tests files, and the codes of its errors and detector failures.

OPA keeps its errors as data (a code, a message, a location); here each code
is registered once, with its severity and meaning, and a test fails on any
code the source emits that the table lacks. The README's table of codes is
generated from it (:func:`codes_markdown`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """1-based line and column in a file. ``file`` names the file when it is not
    the one being checked (a node of a base an ``extends`` merged in, section 9);
    it takes no part in comparing positions."""

    line: int = 1
    column: int = 1
    file: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding: ``file:line:col: severity[code]: message``."""

    code: str
    severity: Severity
    message: str
    file: str
    line: int = 1
    column: int = 1

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.severity.value}[{self.code}]: {self.message}"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.column, self.code, self.message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
        }


class Diagnosed:
    """For a load result with ``diagnostics``: its errors and its warnings."""

    __slots__ = ()
    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)


def error(code: str, message: str, file: str, at: Position) -> Diagnostic:
    """An error at ``at``, in ``file`` unless the position names its own file."""
    return Diagnostic(code, Severity.ERROR, message, at.file or file, at.line, at.column)


def warning(code: str, message: str, file: str, at: Position) -> Diagnostic:
    """A warning at ``at``, in ``file`` unless the position names its own file."""
    return Diagnostic(code, Severity.WARNING, message, at.file or file, at.line, at.column)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    return tuple(sorted(set(diagnostics), key=Diagnostic.sort_key))


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """A registered code: its severity (where it is a diagnostic: its level),
    what it means, and the topic it is listed under."""

    severity: Severity
    description: str
    topic: str = ""


def _topic(name: str, severity: Severity, codes: Mapping[str, str]) -> dict[str, CodeInfo]:
    return {code: CodeInfo(severity, text, name) for code, text in codes.items()}


_READING = "reading a file"
_SCHEMA = "the schema"
_MEANING = "meaning"
_EXTENDS = "extends"
_TESTS = "tests files"
_LINT = "the linter"
_MIGRATE = "migrate"
_RUNNING = "errors and detector failures"
_SETS = "policy sets"

DIAGNOSTIC_CODES: Mapping[str, CodeInfo] = {
    **_topic(
        _READING,
        Severity.ERROR,
        {
            "unreadable": "The file cannot be read.",
            "file-too-large": (
                "A file larger than may be read: a policy over 1 MiB, an image over its "
                "detectors' limit."
            ),
            "encoding": "The file is not UTF-8, or holds a lone surrogate.",
            "empty-policy": "The policy file holds no YAML document.",
            "yaml-syntax": "The file is not valid YAML, or holds more than one document.",
            "yaml-depth": "The document nests lists and maps more than 256 deep.",
            "document-too-large": "The document's aliases expand past 1 MiB.",
            "recursive-alias": "A YAML alias refers to itself.",
            "yaml-node": "An unsupported YAML node.",
            "yaml-tag": "A YAML tag other than the plain ones (str, int, float, ...).",
            "yaml-value": "A scalar that is not a valid or finite value.",
            "yaml-key": "A mapping key that is not a plain scalar.",
            "yaml-merge-key": "A merge key (<<); write the keys out.",
            "duplicate-key": "A key given twice in one mapping.",
        },
    ),
    **_topic(
        _SCHEMA,
        Severity.ERROR,
        {
            "unknown-key": "A key the policy language does not have (a typo?).",
            "missing-key": "A required key is missing.",
            "wrong-type": "A value of the wrong type.",
            "invalid-value": "A value that is not one of those allowed.",
            "out-of-range": "A number outside its range (thresholds are 0 to 100).",
            "schema": "Any other schema violation.",
        },
    ),
    **_topic(
        _MEANING,
        Severity.ERROR,
        {
            "duplicate-rule-id": "Two rules have the same id.",
            "duplicate-match": "Two rules have the same match (names compare as names do).",
            "threshold-order": "review_at is not below block_at.",
            "duplicate-label": "A label is placed twice in labels:.",
            "label-cycle": "labels: places labels in a cycle.",
            "unknown-detector": "detectors: names a detector no installed plugin provides.",
            "cascade-unknown-detector": "cascade: costs: names a detector the policy does not run.",
        },
    ),
    **_topic(
        _EXTENDS,
        Severity.ERROR,
        {
            "extends-unreadable": "The base that extends: names is missing or cannot be read.",
            "extends-cycle": "extends: leads back to a file that is being loaded (a cycle).",
            "extends-depth": "More than 8 levels of extends:.",
            "base-does-not-load": (
                "The base that extends: names has errors (listed too, at their own positions)."
            ),
            "unknown-removed-rule": "remove_rules: names an id the base has no rule with.",
            "remove-rules-without-extends": "remove_rules: in a policy that extends no base.",
        },
    ),
    **_topic(
        _TESTS,
        Severity.ERROR,
        {
            "policy-does-not-load": (
                "A policy has errors (PolicyLoadError), or the policy a tests file names does."
            ),
            "invalid-label": "A tests file's label is invalid (name, confidence, source).",
            "invalid-invariant": (
                "A tests file's invariant does not fit its policy: a context strictness "
                "promise for a plain policy, or another form for a policy set."
            ),
            "invalid-response": "A tests file's raw response is malformed.",
            "unrecognised-response": (
                "A raw response no installed detector recognises (or several do)."
            ),
            "unreadable-recording": "A tests file names a recording that cannot be read.",
            "invalid-recording": "A tests file names a recording that is not valid JSON.",
            "tests-do-not-load": "A tests file has errors (TestsLoadError).",
            "context-without-set": (
                "A tests file's case gives context:, route: or content_types: but the file "
                "names a policy, not a policy set."
            ),
            "unknown-route": "A tests file's case expects a route index the policy set lacks.",
        },
    ),
    **_topic(
        _SETS,
        Severity.ERROR,
        {
            "unknown-dimension": (
                "A policy set's when: names a dimension its context: does not declare."
            ),
            "unknown-context-value": (
                "A policy set's when: or default: gives a value not in the dimension's values."
            ),
            "reserved-dimension": (
                "A policy set declares content_type as a dimension: it is the reserved "
                "condition on the image."
            ),
            "route-not-total": (
                "Some combination of context values and content types reaches no route of a "
                "policy set (the message names one)."
            ),
            "too-many-combinations": (
                "A policy set whose context and content types have too many combinations to "
                "check exactly when it loads."
            ),
            "route-policy-does-not-load": "A policy a set's route names has errors.",
            "detector-conflict": (
                "Two policies of a set name one detector with different settings: detectors "
                "run once per image for every route."
            ),
            "policy-set-does-not-load": "A policy set has errors (PolicySetLoadError).",
            "invalid-context": (
                "A check's (or a tests file case's) context names no value and no default "
                "for a dimension, or a value not in its list (ContextError)."
            ),
            "sets-not-comparable": (
                "Two policy sets, or two contexts of one, cannot be compared context by "
                "context: a dimension both declare has different values, or a context names "
                "an unknown dimension or value (SetComparisonError)."
            ),
        },
    ),
    **_topic(
        _SETS,
        Severity.WARNING,
        {
            "unreachable-route": (
                "A route of a policy set that no combination of context values and content "
                "types reaches: earlier routes take every one."
            ),
        },
    ),
    **_topic(
        _LINT,
        Severity.ERROR,
        {
            "unknown-name": (
                "A rule's match name that no taxonomy of the detectors it can see nor labels: "
                "knows (a warning where the line says # policy-engine: ignore[unknown-name], or "
                "where one of those detectors has no taxonomy)."
            ),
            "unknown-parent": (
                "A rule's match parent that no taxonomy of the detectors it can see nor labels: "
                "knows (a warning as for unknown-name, and for a labels: parent no taxonomy, "
                "entry nor rule knows)."
            ),
        },
    ),
    **_topic(
        _LINT,
        Severity.WARNING,
        {
            "name-spelling": (
                "A name that differs from the taxonomy's spelling only in case or spaces."
            ),
            "model-6-name": (
                "A name only an older taxonomy (Rekognition model 6) has; the current model "
                "renamed it."
            ),
            "threshold-below-floor": (
                "A threshold below min_confidence: that band starts at the floor instead."
            ),
            "narrowing-rule": (
                "A rule narrows a category rule and leaves unset a band the category rule sets."
            ),
            "carve-out-parent": (
                "A child carve-out whose parent label is still decided by a stricter rule."
            ),
            "rule-never-decides": (
                "A rule that can never decide a label: every label it selects is decided by "
                "another."
            ),
            "unknown-source": (
                "A rule's match source names no installed detector, so the rule never decides."
            ),
            "on-error-allow": (
                "on_error: allow lets an image through unchecked whenever a detector fails."
            ),
            "threshold-scale": (
                "Every threshold is at most 1: confidences run from 0 to 100, not 0 to 1."
            ),
            "no-detectors": (
                "The policy names no detectors: check, the embedding API and the Lambda refuse "
                "it (there an error, NoDetectorsError)."
            ),
            "unknown-region": (
                "A detector's region setting that its plugin does not know as a region of its "
                "service (from the plugin's own settings check, Detector.lint_settings)."
            ),
        },
    ),
    **_topic(
        _MIGRATE,
        Severity.WARNING,
        {
            "migrate-ambiguous": (
                "An old name maps to several new ones: the rule is left as is, to split by hand."
            ),
            "migrate-unmapped": (
                "The old taxonomy knows the name; the mapping and the new taxonomy do not."
            ),
            "migrate-category-changed": (
                "A category rule whose new category covers other labels than the old one did."
            ),
            "migrate-parent-changed": (
                "A {name, parent} rule whose label the new taxonomy reports under another parent."
            ),
            "migrate-collision": (
                "Two rules would get the same match: the later one is left as is."
            ),
            "migrate-other-source": "A name scoped to another detector, left as is.",
        },
    ),
    **_topic(
        _RUNNING,
        Severity.ERROR,
        {
            "policy-engine-error": (
                "Any other error the package raises on purpose (PolicyEngineError)."
            ),
            "load-failed": (
                "A policy (re)load failed for a reason that is no error of the policy: the old "
                "policy keeps serving."
            ),
            "shadow-does-not-load": "The candidate (shadow) policy has errors (ShadowPolicyError).",
            "shadow-kind-mismatch": (
                "The candidate is a policy and a set serves, or the reverse: a set is "
                "shadowed by a set, decided on the same labels and context."
            ),
            "not-a-document": "The text is not a YAML document at all (SourceError).",
            "detector-settings": (
                "The policy's detectors do not fit the installed plugins when an engine is built "
                "(PolicyDetectorsError)."
            ),
            "plugin-error": (
                "A plugin failed to load or to register, or clashes with another (PluginError)."
            ),
            "duplicate-detector": (
                "Two plugins register a detector under the same name (DuplicateDetectorError)."
            ),
            "unknown-plugin": (
                "POLICY_ENGINE_PLUGINS names a plugin that is not installed (UnknownPluginError)."
            ),
            "detector-unavailable": (
                "A configured detector cannot be called at all, found before the first image "
                "(DetectorUnavailableError, with the detector's own code)."
            ),
            "detector-error": (
                "A detector failed for an image; the policy's on_error decides (DetectorError)."
            ),
            "invalid-result": "A detector's response is malformed (InvalidDetectorResult).",
            "no-recording": "A replaying detector has nothing recorded for an image.",
            "plugin-exception": (
                "A detector raised something other than a DetectorError: its failure for the image."
            ),
            "timeout": "A detector call took longer than the engine's detector time limit.",
            "empty-image": "An empty image, refused before any detector is called.",
            "stopped": "A run was stopped before this image's call went out (RunStopped).",
            "resume-refused": (
                "check --resume cannot continue its output: another policy's record, or a "
                "line that is no record (ResumeError)."
            ),
            "not-a-regular-file": (
                "A local input that is not a regular file (a FIFO, a device), refused unread "
                "(InputFileError)."
            ),
            "recording-write-failed": (
                "A response could not be recorded; nothing recorded before changed "
                "(RecordingWriteError)."
            ),
        },
    ),
}
"""Every code the package emits, with its severity and what it means (SARIF
rules, the README). A plugin registers the codes of its
:meth:`~policy_engine.detectors.Detector.lint_settings` findings here, or picks
one it already has; its detectors' failure codes are its own (its README)."""


def codes_markdown() -> str:
    """The README's table of codes, generated from :data:`DIAGNOSTIC_CODES`
    (``python -m policy_engine.diagnostics`` prints it)."""
    lines = ["| code | severity | topic | what it means |", "| --- | --- | --- | --- |"]
    for code, info in DIAGNOSTIC_CODES.items():
        description = info.description.replace("|", "\\|")
        lines.append(f"| `{code}` | {info.severity.value} | {info.topic} | {description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(codes_markdown(), end="")
