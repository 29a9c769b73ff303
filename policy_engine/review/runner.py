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
    route: int | None = None
    """With a policy set: the index of the route that decided."""
    policy_file: str | None = None
    """The file of the policy that decided (with a set, the routed policy's)."""

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
    compiled, labels, failures = tests.compiled, list(case.labels), list(case.failures)
    route_index: int | None = None
    policy_file = tests.policy_file
    problems: list[str] = []
    if tests.compiled_set is not None and case.context is not None:
        decided = tests.compiled_set.decide(labels, failures, case.context, case.metadata)
        decision, route = decided.decision, decided.route
        route_index = route.index
        policy_file = str(Path(tests.policy_file).parent / route.policy_file)
        compiled = tests.compiled_set.compiled(route)
        labels, failures, _ = tests.compiled_set.inputs_for(route, labels, failures, case.metadata)
        if case.route is not None and case.route != route_index:
            problems.append(f"route {route_index} decided, expected route {case.route}")
    else:
        decision = compiled.evaluate(labels, failures)
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
    trace = explain_decision(compiled, labels, failures, registry) if problems else None
    return CaseResult(case, decision, tuple(problems), trace, route_index, policy_file)


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


@dataclass(frozen=True, slots=True)
class RouteCoverage:
    """Which of a policy set's routes decided at least one case."""

    set_file: str
    routes: tuple[int, ...]
    decided: frozenset[int]

    @property
    def never(self) -> tuple[int, ...]:
        return tuple(route for route in self.routes if route not in self.decided)

    @property
    def percent(self) -> float:
        if not self.routes:
            return 100.0
        return 100.0 * (len(self.routes) - len(self.never)) / len(self.routes)

    @property
    def policy_file(self) -> str:
        """The file reported (a set's, like a policy's in :class:`Coverage`)."""
        return self.set_file

    def lines(self) -> list[str]:
        covered = len(self.routes) - len(self.never)
        lines = [
            f"coverage {self.set_file}: {covered}/{len(self.routes)} routes decided "
            f"a case ({self.percent:.1f}%)"
        ]
        if self.never:
            lines.append(f"  never decided: route {', route '.join(map(str, self.never))}")
        return lines


def coverage(results: Iterable[FileResult]) -> list[Coverage | RouteCoverage]:
    """Per policy (tests files of one policy pool, and a set's cases count for
    the policy each case was routed to), then per policy set its routes, in the
    order first met. A routed policy's rules are thus covered by its own tests
    file and the set's together when both run."""
    by_policy: dict[Path, tuple[str, Policy, set[str]]] = {}
    by_set: dict[Path, tuple[str, tuple[int, ...], set[int]]] = {}
    for result in results:
        tests = result.tests
        if tests.policy_set is None:
            by_policy.setdefault(
                Path(tests.policy_file).resolve(), (tests.policy_file, tests.policy, set())
            )
        else:
            routes = tuple(route.index for route in tests.policy_set.routes)
            entry = by_set.setdefault(
                Path(tests.policy_file).resolve(), (tests.policy_file, routes, set())
            )
            entry[2].update(case.route for case in result.cases if case.route is not None)
            base = Path(tests.policy_file).parent
            for route in tests.policy_set.routes:
                file = str(base / route.policy_file)
                by_policy.setdefault(Path(file).resolve(), (file, route.policy, set()))
        for case in result.cases:
            file = case.policy_file or tests.policy_file
            by_policy[Path(file).resolve()][2].update(case.decided_by)
    reports: list[Coverage | RouteCoverage] = [
        Coverage(file, tuple(rule.id for rule in policy.rules), frozenset(decided))
        for file, policy, decided in by_policy.values()
    ]
    reports.extend(
        RouteCoverage(file, routes, frozenset(decided)) for file, routes, decided in by_set.values()
    )
    return reports
