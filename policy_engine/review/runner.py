"""Running a tests file: each case decided and compared with what it expects,
each invariant checked, and which rules the cases made decide (coverage)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from policy_engine.decision import DEFAULT_RULE, Decision
from policy_engine.model import Policy
from policy_engine.plugins import DetectorRegistry
from policy_engine.review.explain import DecisionTrace, explain_decision
from policy_engine.review.invariants import InvariantChecker, InvariantResult
from policy_engine.review.tests_file import PolicyCase, PolicyTestFile


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
        lines.extend(f"  {r.describe()}" for r in reasons)
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
                problems.append(f"unexpected reason: {reason.describe()}")
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
        if result.tests.policy_set is not None:
            continue  # a set's rules are covered by its routed policies' tests files
        key = Path(result.tests.policy_file).resolve()
        entry = by_policy.setdefault(key, (result.tests.policy_file, result.tests.policy, set()))
        for case in result.cases:
            entry[2].update(case.decided_by)
    return [
        Coverage(file, tuple(rule.id for rule in policy.rules), frozenset(decided))
        for file, policy, decided in by_policy.values()
    ]
