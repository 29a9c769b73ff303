"""Policy test files: example cases and invariants for a policy, loaded and run.

A tests file ``<name>.tests.yaml`` sits next to the policy it tests. It names
the policy (relative to itself), lists cases (the labels of one image, given
inline, as raw detector responses inline, or as recorded response files, plus
detector errors; the decision it must get; optionally its exact reasons) and
invariants (:mod:`policy_engine.invariants`). Its schema is
``schemas/policy-tests.schema.json``; load errors are positioned diagnostics
like a policy's.

This module also explains decisions (:func:`explain_decision`): for each
label, every rule that selects it with its rank and distance, the winner and
the comparison that fired. ``policy-engine explain`` prints it, and a failed
case shows it for its labels.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policy_engine.compiler import Candidate, CompiledPolicy, compile_policy
from policy_engine.decision import DEFAULT_RULE, Decision, DetectorFailure, Reason
from policy_engine.diagnostics import Diagnostic, Position, error, sort_diagnostics
from policy_engine.errors import (
    InvalidDetectorResult,
    PolicyEngineError,
    UnrecognisedResponseError,
)
from policy_engine.invariants import (
    DEFAULT_SOURCE,
    Invariant,
    InvariantChecker,
    InvariantResult,
)
from policy_engine.labels import Label
from policy_engine.loader import check_policy_file
from policy_engine.model import Body, Policy, Verdict, plain_number
from policy_engine.names import name_key
from policy_engine.recordings import read_recording
from policy_engine.source import (
    JsonPath,
    SourceError,
    SourceMap,
    parse_document,
    read_policy_text,
)

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

    from policy_engine.recordings import read_recording
from policy_engine.plugins import DetectorRegistry

TESTS_SUFFIX = ".tests.yaml"
RANK_NAMES = ("name+parent", "name", "parent")
"""Candidate.rank 0, 1, 2 as shown to people (POLICY_SPEC section 4)."""


@cache
def policy_tests_schema() -> Mapping[str, Any]:
    """The JSON Schema of a policy test file, as shipped in the package."""
    text = (
        resources.files("policy_engine")
        .joinpath("schemas/policy-tests.schema.json")
        .read_text("utf-8")
    )
    schema: Mapping[str, Any] = json.loads(text)
    return schema


@cache
def _tests_validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(policy_tests_schema())


# -- explaining a decision ------------------------------------------------------------


def _number(value: float) -> str:
    return str(plain_number(value))


def comparison(body: Body, confidence: float, floor: float) -> tuple[Verdict | None, str]:
    """The label's verdict (None when dropped) and the comparison that gave it:
    ``97.3 >= 90 (block_at)``, or when nothing fired ``54 < 60 (review_at)``."""
    shown = _number(confidence)
    if confidence < floor:
        return None, f"{shown} < {_number(floor)} (min_confidence): dropped"
    if body.action is Verdict.ALLOW:
        return Verdict.ALLOW, "action: allow"
    block_from, review_from = body.fires_at
    if confidence >= block_from:
        what = "action: block" if body.action is not None else "block_at"
        return Verdict.BLOCK, f"{shown} >= {_number(block_from)} ({what})"
    if confidence >= review_from:
        what = "action: review" if body.action is not None else "review_at"
        return Verdict.REVIEW, f"{shown} >= {_number(review_from)} ({what})"
    lowest, what = min((review_from, "review_at"), (block_from, "block_at"))
    if math.isinf(lowest):  # pragma: no cover - a body always sets a band
        return Verdict.ALLOW, "no threshold"
    return Verdict.ALLOW, f"{shown} < {_number(lowest)} ({what})"


@dataclass(frozen=True, slots=True)
class CandidateTrace:
    """A rule that selects the label: how specific it is, and whether it decides."""

    rule: str
    match: str
    rank: str
    distance: int
    winner: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "match": json.loads(self.match),
            "rank": self.rank,
            "distance": self.distance,
            "winner": self.winner,
        }


@dataclass(frozen=True, slots=True)
class LabelTrace:
    """How one label is decided, step by step."""

    label: Label
    parent: str
    lineage: tuple[str, ...]
    taxonomy: str | None
    candidates: tuple[CandidateTrace, ...]
    rule: str
    verdict: Verdict | None
    """None when the label is dropped (below min_confidence)."""
    comparison: str

    def lines(self) -> list[str]:
        label = self.label
        parent = f"parent {self.parent}" if self.parent else "no parent"
        head = f"{label.name} ({parent}; {label.source}; confidence {_number(label.confidence)})"
        lines = [head]
        if len(self.lineage) > 1:
            lines.append(f"  hierarchy: {' > '.join(self.lineage)}")
        if self.taxonomy:
            lines.append(f"  taxonomy: {self.taxonomy}")
        if self.candidates:
            lines.append("  rules that select it, most specific first:")
            for c in self.candidates:
                mark = "*" if c.winner else " "
                lines.append(
                    f"   {mark} {c.rule}  {c.match}  rank {c.rank}, distance {c.distance}"
                    + ("  <- decides" if c.winner else "")
                )
        else:
            lines.append("  no rule selects it: the policy's default decides")
        verdict = "dropped" if self.verdict is None else self.verdict.value
        lines.append(f"  {verdict}: {self.comparison}  [rule {self.rule}]")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label.to_dict(),
            "parent": self.parent,
            "lineage": list(self.lineage),
            "taxonomy": self.taxonomy,
            "candidates": [c.to_dict() for c in self.candidates],
            "rule": self.rule,
            "verdict": None if self.verdict is None else self.verdict.value,
            "dropped": self.verdict is None,
            "comparison": self.comparison,
        }


def describe_reason(reason: Reason) -> str:
    if reason.error is not None:
        return (
            f"{reason.verdict.value}  detector {reason.source} failed: {reason.error}"
            f"  [rule {reason.rule}]"
        )
    confidence = _number(reason.confidence or 0.0)
    threshold = _number(reason.threshold or 0.0)
    return (
        f"{reason.verdict.value}  {reason.label} {confidence} >= {threshold}"
        f"  [rule {reason.rule}, {reason.source}]"
    )


@dataclass(frozen=True, slots=True)
class DecisionTrace:
    """A decision and how each of its labels was decided."""

    decision: Decision
    labels: tuple[LabelTrace, ...]
    """The labels kept (at or above min_confidence), in the order given."""
    dropped: tuple[LabelTrace, ...]

    def lines(self) -> list[str]:
        decision = self.decision
        lines = [
            f"decision: {decision.verdict.value}  (policy {decision.policy_name}, "
            f"{decision.policy_digest[:19]})"
        ]
        for trace in self.labels:
            lines.extend(trace.lines())
        if self.dropped:
            floor = _number(decision.policy.min_confidence)
            lines.append(f"dropped below min_confidence {floor}:")
            lines.extend(
                f"  {t.label.name} ({t.label.source}): {t.comparison}" for t in self.dropped
            )
        if decision.failures:
            lines.append("detector errors:")
            errors = [r for r in decision.reasons() if r.error is not None]
            lines.extend(f"  {describe_reason(r)}" for r in errors)
            if not errors:
                lines.extend(
                    f"  allow  detector {f.source} failed: {f.error}  [rule on_error]"
                    for f in decision.failures
                )
        return lines

    def to_dict(self) -> dict[str, Any]:
        record = self.decision.to_dict()
        return {
            "decision": record["decision"],
            "policy": record["policy"],
            "labels": [t.to_dict() for t in self.labels],
            "dropped": [t.to_dict() for t in self.dropped],
            "errors": record["errors"],
            "reasons": record["reasons"],
        }


def trace_label(
    compiled: CompiledPolicy, label: Label, registry: DetectorRegistry | None = None
) -> LabelTrace:
    """How ``compiled`` decides ``label``: every selecting rule, the winner, the comparison."""
    explanation = compiled.explain(label)
    taxonomy = registry.taxonomy_for(label.source, label.model_version) if registry else None
    canonical = compiled.canonical_key(taxonomy)
    written = {canonical(d.name): d.name for d in compiled.policy.labels}
    written.update({canonical(d.parent): d.parent for d in compiled.policy.labels if d.parent})

    def display(key: str) -> str:
        if key == explanation.lineage.key:
            return label.name
        found = taxonomy.display_name(key) if taxonomy is not None else None
        return found or written.get(key) or key

    winner = explanation.winner
    verdict, compared = comparison(
        explanation.body, label.confidence, compiled.policy.min_confidence
    )
    return LabelTrace(
        label=label,
        parent=explanation.lineage.parent_display,
        lineage=tuple(display(key) for key in explanation.lineage.chain),
        taxonomy=taxonomy.id if taxonomy is not None else None,
        candidates=tuple(_candidate(c, c.rule is winner) for c in explanation.candidates),
        rule=winner.id if winner is not None else DEFAULT_RULE,
        verdict=verdict,
        comparison=compared,
    )


def _candidate(candidate: Candidate, winner: bool) -> CandidateTrace:
    return CandidateTrace(
        candidate.rule.id,
        candidate.rule.match.describe(),
        RANK_NAMES[candidate.rank],
        candidate.distance,
        winner,
    )


def explain_decision(
    compiled: CompiledPolicy,
    labels: Iterable[Label],
    failures: Iterable[DetectorFailure] = (),
    registry: DetectorRegistry | None = None,
) -> DecisionTrace:
    """Evaluate and explain: the decision, and a trace of every label."""
    labels = tuple(labels)
    decision = compiled.evaluate(labels, tuple(failures))
    traces = [trace_label(compiled, label, registry) for label in labels]
    return DecisionTrace(
        decision,
        tuple(t for t in traces if t.verdict is not None),
        tuple(t for t in traces if t.verdict is None),
    )


# -- the tests file -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExpectedReason:
    """A ``reasons:`` entry: it matches every actual reason that agrees on each key given."""

    rule: str
    label: str | None = None
    verdict: Verdict | None = None
    source: str | None = None

    def matches(self, reason: Reason) -> bool:
        if reason.rule != self.rule:
            return False
        if self.label is not None and (
            reason.label is None or name_key(reason.label) != name_key(self.label)
        ):
            return False
        if self.verdict is not None and reason.verdict is not self.verdict:
            return False
        return self.source is None or reason.source == self.source

    def describe(self) -> str:
        parts = [f"rule {self.rule}"]
        if self.label is not None:
            parts.append(f"label {self.label}")
        if self.verdict is not None:
            parts.append(f"verdict {self.verdict.value}")
        if self.source is not None:
            parts.append(f"source {self.source}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class PolicyCase:
    """One example image of a tests file and what it must be decided."""

    name: str
    labels: tuple[Label, ...]
    failures: tuple[DetectorFailure, ...]
    expect: Verdict
    reasons: tuple[ExpectedReason, ...] | None = None
    rules: frozenset[str] | None = None
    position: Position = field(default_factory=Position, compare=False)


@dataclass(frozen=True, slots=True)
class PolicyTestFile:
    """A loaded tests file: its policy (compiled), cases and invariants."""

    file: str
    policy_file: str
    policy: Policy
    compiled: CompiledPolicy
    cases: tuple[PolicyCase, ...]
    invariants: tuple[Invariant, ...]
    all_taxonomies: bool = False


class TestsLoadError(PolicyEngineError):
    """A tests file did not load; ``diagnostics`` holds every error found."""

    __test__ = False  # not a pytest test class

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))


@dataclass(frozen=True, slots=True)
class TestsFileLoad:
    """A tests file (None if it has errors) and every error about it."""

    __test__ = False

    tests: PolicyTestFile | None
    diagnostics: tuple[Diagnostic, ...]


class _CaseBuilder:
    """Builds cases and invariants from validated data, collecting positioned errors."""

    def __init__(self, source_map: SourceMap, base_dir: Path, registry: DetectorRegistry) -> None:
        self.source_map = source_map
        self.file = source_map.file
        self.base_dir = base_dir
        self.registry = registry
        self.diagnostics: list[Diagnostic] = []

    def fail(self, code: str, message: str, path: JsonPath) -> None:
        self.diagnostics.append(error(code, message, self.file, self.source_map.at(path)))

    def compact_label(self, raw: Mapping[str, Any], path: JsonPath) -> Label | None:
        try:
            return Label(
                name=raw["name"],
                parent=raw.get("parent", ""),
                confidence=raw["confidence"],
                source=raw.get("source", DEFAULT_SOURCE),
                model_version=raw.get("model_version"),
            )
        except InvalidDetectorResult as exc:
            self.fail("invalid-label", f"invalid label: {exc}", path)
            return None

    def parsed(self, raw: Any, path: JsonPath, where: str) -> list[Label]:
        try:
            return list(self.registry.parse_response(raw).labels)
        except InvalidDetectorResult as exc:
            self.fail("invalid-response", f"{where}invalid response: {exc}", path)
        except UnrecognisedResponseError as exc:
            self.fail("unrecognised-response", f"{where}{exc}", path)
        return []

    def recording(self, written: str, path: JsonPath) -> list[Label]:
        target = self.base_dir / written
        if not target.is_file():
            self.fail(
                "unreadable-recording", f"cannot read recording {written}: no such file", path
            )
            return []
        try:
            # every form the store holds: a response, a list, what --record writes
            responses = read_recording(target)
        except InvalidDetectorResult as exc:
            self.fail("invalid-recording", str(exc), path)
            return []
        labels: list[Label] = []
        for index, entry in enumerate(responses):
            where = f"recording {written}" + (f"[{index}]" if len(responses) > 1 else "")
            labels.extend(self.parsed(entry.response, path, f"{where}: "))
        return labels

    def case(self, raw: Mapping[str, Any], path: JsonPath) -> PolicyCase:
        labels: list[Label] = []
        for index, item in enumerate(raw.get("labels", ())):
            label = self.compact_label(item, (*path, "labels", index))
            if label is not None:
                labels.append(label)
        for item, at in _one_or_many(raw, "response", path):
            labels.extend(self.parsed(item, at, "response: "))
        for written, at in _one_or_many(raw, "recording", path):
            labels.extend(self.recording(written, at))
        failures = tuple(DetectorFailure(e["source"], e["error"]) for e in raw.get("errors", ()))
        reasons = None
        if "reasons" in raw:
            reasons = tuple(
                ExpectedReason(
                    rule=r["rule"],
                    label=r.get("label"),
                    verdict=Verdict(r["verdict"]) if "verdict" in r else None,
                    source=r.get("source"),
                )
                for r in raw["reasons"]
            )
        return PolicyCase(
            name=raw["name"],
            labels=tuple(labels),
            failures=failures,
            expect=Verdict(raw["expect"]),
            reasons=reasons,
            rules=frozenset(raw["rules"]) if "rules" in raw else None,
            position=self.source_map.at(path),
        )

    def invariant(self, raw: dict[str, Any], path: JsonPath) -> Invariant | None:
        for index, item in enumerate(raw.get("labels", ())):
            if self.compact_label(item, (*path, "labels", index)) is None:
                return None
        return Invariant.from_data(raw, self.source_map.at(path))


def check_tests_file(path: str | os.PathLike[str], registry: DetectorRegistry) -> TestsFileLoad:
    """Load a tests file and its policy, collecting every error instead of raising."""
    file = str(path)
    file_path = Path(path)
    try:
        document = parse_document(read_policy_text(file_path), file)
    except SourceError as exc:
        return TestsFileLoad(None, sort_diagnostics(exc.diagnostics))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return TestsFileLoad(
            None, (error("unreadable", f"cannot read the tests file: {reason}", file, Position()),)
        )
    from policy_engine.schema import check_against_schema

    source_map = document.source_map
    diagnostics = list(document.diagnostics)
    report = check_against_schema(
        _tests_validator(), document.data, source_map, reported=document.refused
    )
    diagnostics.extend(report.diagnostics)
    if diagnostics or not isinstance(document.data, dict):
        return TestsFileLoad(None, sort_diagnostics(diagnostics))
    data: dict[str, Any] = document.data
    base_dir = file_path.parent
    policy_path = base_dir / data["policy"]
    loaded = check_policy_file(policy_path, registry=registry)
    if loaded.policy is None:
        diagnostics.append(
            error(
                "policy-does-not-load",
                f"the policy {data['policy']} does not load ({len(loaded.errors)} error(s))",
                file,
                source_map.at(("policy",)),
            )
        )
        diagnostics.extend(loaded.errors)
    builder = _CaseBuilder(source_map, base_dir, registry)
    cases = tuple(
        builder.case(raw, ("cases", index)) for index, raw in enumerate(data.get("cases", ()))
    )
    invariants = [
        builder.invariant(raw, ("invariants", index))
        for index, raw in enumerate(data.get("invariants", ()))
    ]
    diagnostics.extend(builder.diagnostics)
    if diagnostics or loaded.policy is None:
        return TestsFileLoad(None, sort_diagnostics(diagnostics))
    tests = PolicyTestFile(
        file=file,
        policy_file=str(policy_path),
        policy=loaded.policy,
        compiled=compile_policy(loaded.policy, registry),
        cases=cases,
        invariants=tuple(i for i in invariants if i is not None),
        all_taxonomies=data.get("taxonomies") == "all",
    )
    return TestsFileLoad(tests, ())


def load_tests_file(path: str | os.PathLike[str], registry: DetectorRegistry) -> PolicyTestFile:
    """Load a tests file and its policy; raise :class:`TestsLoadError` with every error."""
    loaded = check_tests_file(path, registry)
    if loaded.tests is None:
        raise TestsLoadError(loaded.diagnostics)
    return loaded.tests


def find_tests_files(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The tests files for ``paths``: each folder's ``*.tests.yaml`` (recursively),
    each tests file given, and for a policy file given, the tests file beside it.
    Returns the files (in order, each once) and a message per path that gave none."""
    found: list[Path] = []
    problems: list[str] = []
    for written in paths:
        path = Path(written)
        if path.is_dir():
            files = sorted(p for p in path.rglob(f"*{TESTS_SUFFIX}") if p.is_file())
            if not files:
                problems.append(f"{written}: no *{TESTS_SUFFIX} files in this folder")
            found.extend(files)
        elif path.is_file() and path.name.endswith(TESTS_SUFFIX):
            found.append(path)
        elif path.is_file():
            beside = path.with_name(path.name.rsplit(".", 1)[0] + TESTS_SUFFIX)
            if beside.is_file():
                found.append(beside)
            else:
                problems.append(f"{written}: no tests file for this policy ({beside} is missing)")
        else:
            problems.append(f"{written}: no such file or folder")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values()), problems


# -- running ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: PolicyCase
    decision: Decision
    problems: tuple[str, ...]
    trace: DecisionTrace | None = None
    """The explain trace of the case's labels, kept for failed cases."""

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def decided_by(self) -> frozenset[str]:
        """The ids of the rules (and default) that decided at least one label."""
        return frozenset(outcome.rule for outcome in self.decision.outcomes())

    def details(self) -> list[str]:
        """Expected vs actual, what is wrong, and the trace of the labels involved."""
        lines = [
            f"expected: {self.case.expect.value}",
            f"actual:   {self.decision.verdict.value}",
        ]
        lines.extend(self.problems)
        reasons = self.decision.reasons()
        lines.append("actual reasons:" if reasons else "actual reasons: none")
        lines.extend(f"  {describe_reason(r)}" for r in reasons)
        if self.trace is not None and (self.trace.labels or self.trace.dropped):
            lines.append("trace:")
            lines.extend(f"  {line}" for line in self.trace.lines()[1:])
        return lines


def run_case(
    tests: PolicyTestFile, case: PolicyCase, registry: DetectorRegistry | None = None
) -> CaseResult:
    decision = tests.compiled.evaluate(case.labels, case.failures)
    problems: list[str] = []
    if decision.verdict is not case.expect:
        problems.append(f"the decision is {decision.verdict.value}, expected {case.expect.value}")
    reasons = decision.reasons()
    if case.rules is not None:
        actual = {r.rule for r in reasons}
        if actual != case.rules:
            problems.append(
                f"the reasons' rules are [{', '.join(sorted(actual))}], "
                f"expected [{', '.join(sorted(case.rules))}]"
            )
    if case.reasons is not None:
        for expected in case.reasons:
            if not any(expected.matches(r) for r in reasons):
                problems.append(f"missing reason: {expected.describe()}")
        for reason in reasons:
            if not any(e.matches(reason) for e in case.reasons):
                problems.append(f"unexpected reason: {describe_reason(reason)}")
    trace = (
        explain_decision(tests.compiled, case.labels, case.failures, registry) if problems else None
    )
    return CaseResult(case, decision, tuple(problems), trace)


@dataclass(frozen=True, slots=True)
class FileResult:
    tests: PolicyTestFile
    cases: tuple[CaseResult, ...]
    invariants: tuple[InvariantResult, ...]

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.cases) + sum(r.passed for r in self.invariants)

    @property
    def failed(self) -> int:
        return len(self.cases) + len(self.invariants) - self.passed


def run_tests_file(tests: PolicyTestFile, registry: DetectorRegistry | None = None) -> FileResult:
    """Run every case and check every invariant of ``tests``."""
    checker = InvariantChecker(tests.compiled, registry)
    return FileResult(
        tests,
        tuple(run_case(tests, case, registry) for case in tests.cases),
        tuple(
            checker.check(invariant, all_taxonomies=tests.all_taxonomies)
            for invariant in tests.invariants
        ),
    )


# -- coverage -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Coverage:
    """Which of a policy's rules decided at least one label across its cases."""

    policy_file: str
    rules: tuple[str, ...]
    decided: frozenset[str]

    @property
    def never(self) -> tuple[str, ...]:
        return tuple(rule for rule in self.rules if rule not in self.decided)

    @property
    def percent(self) -> float:
        if not self.rules:
            return 100.0
        return 100.0 * sum(rule in self.decided for rule in self.rules) / len(self.rules)

    def lines(self) -> list[str]:
        covered = len(self.rules) - len(self.never)
        lines = [
            f"coverage {self.policy_file}: {covered}/{len(self.rules)} rules decided "
            f"a label ({self.percent:.1f}%)"
        ]
        if DEFAULT_RULE in self.decided:
            lines.append("  the default decided a label too")
        if self.never:
            lines.append(f"  never decided: {', '.join(self.never)}")
        return lines


def coverage(results: Iterable[FileResult]) -> list[Coverage]:
    """Per policy (tests files of one policy pool), in the order first met."""
    by_policy: dict[Path, tuple[str, Policy, set[str]]] = {}
    for result in results:
        key = Path(result.tests.policy_file).resolve()
        entry = by_policy.setdefault(key, (result.tests.policy_file, result.tests.policy, set()))
        for case in result.cases:
            entry[2].update(case.decided_by)
    return [
        Coverage(file, tuple(rule.id for rule in policy.rules), frozenset(decided))
        for file, policy, decided in by_policy.values()
    ]


def _one_or_many(
    raw: Mapping[str, Any], key: str, path: JsonPath
) -> Iterator[tuple[Any, JsonPath]]:
    """Each value of ``raw[key]`` (one value, or a list of them) and where it
    stands; nothing when the key is absent."""
    if key not in raw:
        return
    value = raw[key]
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield item, (*path, key, index)
    else:
        yield value, (*path, key)
