"""Lossless cascades: which detectors an image still needs (POLICY_SPEC section 10:
"the engine calls a detector only when its answer can change the routing or
the routed policy's decision").

A decision is the most severe verdict over the labels and the detector
failures (section 5), so it only ever rises as answers come in. Before each
detector is called, cheapest first, the engine asks every policy that will
decide on the image (the serving policy, a shadow candidate) whether that
detector's answer can still change its decision. It cannot when the most
severe verdict the detector can contribute (:func:`most_severe_answer`) is no
more severe than the decision the answers in hand already give: then every
label it could report, at any confidence, and its failure under
``on_error``, leave the decision as it is, whatever the other detectors say.
Only when no deciding policy needs it is the detector skipped.

The bound is over every label a detector could report, not only those its
taxonomy lists: a label's verdict comes from its deciding rule or the
``default`` (section 4), so the most severe verdict any rule that can select
the detector's labels reaches at confidence 100 (verdicts never fall as
confidence rises), the ``default``'s, and ``on_error`` bound it. It is exact
but where a rule without ``source:`` is always outranked by one with it. The
strictness analysis's label universe (:func:`~policy_engine.review.strictness.universe`)
lists what a detector reports with its taxonomy's parents; this bound also
holds for a known name reported under another parent, or a plugin's new label.

A policy set adds routing: where content types or a detector's failure can
still change the route (a ``content_type`` condition), a detector is skipped
only when every route still reachable already blocks; otherwise the routed
policy is known and decides as above.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from policy_engine.compiler import CompiledPolicy
from policy_engine.decision import Decision, DetectorFailure, SkippedDetector
from policy_engine.detectors import Detector, DetectorResult
from policy_engine.errors import PolicyEngineError
from policy_engine.labels import Label
from policy_engine.model import VERDICT_BY_SEVERITY, Verdict

if TYPE_CHECKING:
    from policy_engine.sets.deciding import CompiledPolicySet

MAX_CONFIDENCE = 100.0

ALREADY_BLOCK = "decision already block"
NEVER_MATTERS = "its answer can never change the decision"
EVERY_ROUTE_BLOCKS = "decision already block on every route still reachable"

_ALLOW, _REVIEW, _BLOCK = 0, 1, 2

Why = Callable[[str], "str | None"]
"""Why a detector (by name) need not be called, or None when it must be."""


def most_severe_answer(
    compiled: CompiledPolicy,
    detector: str,
    *,
    other_sources: bool = False,
    ignored: frozenset[str] = frozenset(),
) -> Verdict:
    """The most severe verdict ``detector`` can contribute to a decision of
    ``compiled``: any label it may report at any confidence, and its failure
    under ``on_error``. ``other_sources``: its labels may carry other detectors'
    names (every rule can then select them); ``ignored``: detectors whose labels
    and failures the policy does not decide on (a set's detectors that are not
    a routed policy's own)."""
    policy = compiled.policy
    worst = _ALLOW if detector in ignored else policy.on_error.severity
    if other_sources or detector not in ignored:
        # a label nobody knows, reported at the top, is decided by the default
        worst = max(worst, policy.default.verdict(MAX_CONFIDENCE).severity)
        for rule in policy.rules:
            if other_sources or rule.match.source in (None, detector):
                worst = max(worst, rule.body.verdict(MAX_CONFIDENCE).severity)
    return VERDICT_BY_SEVERITY[worst]


def _why(most: int, current: int) -> str | None:
    if most == _ALLOW:
        return NEVER_MATTERS
    if current == _BLOCK:
        return ALREADY_BLOCK
    if most <= current:
        return f"cannot raise {VERDICT_BY_SEVERITY[current].value}"
    return None


def _pooled(
    results: Sequence[DetectorResult],
) -> tuple[list[Label], dict[str, Mapping[str, Any]]]:
    labels = [label for result in results for label in result.labels]
    metadata = {result.source: result.metadata for result in results if result.metadata}
    return labels, metadata


def _bounds(
    compiled: CompiledPolicy, detectors: Sequence[Detector], ignored: frozenset[str] = frozenset()
) -> dict[str, int]:
    """The severity of :func:`most_severe_answer` for each of ``detectors``."""
    return {
        d.name: most_severe_answer(
            compiled, d.name, other_sources=d.reports_other_sources, ignored=ignored
        ).severity
        for d in detectors
    }


class Judge(Protocol):
    """What decides an image, asked which detectors it still needs."""

    def why(
        self,
        results: Sequence[DetectorResult],
        failures: Sequence[DetectorFailure],
        context: Mapping[str, Any] | None,
    ) -> Why:
        """Given the answers in hand (and a set's ``context``), why each detector
        need not be called, or None where it must be."""
        ...


class PolicyJudge:
    """Whether a single policy's decision still needs each detector."""

    def __init__(self, compiled: CompiledPolicy, detectors: Sequence[Detector]) -> None:
        self.compiled = compiled
        self._most = _bounds(compiled, detectors)

    def why(
        self,
        results: Sequence[DetectorResult],
        failures: Sequence[DetectorFailure],
        context: Mapping[str, Any] | None,
    ) -> Why:
        current = (
            self.compiled.evaluate_results(results, failures).verdict.severity
            if results or failures
            else _ALLOW
        )
        most = self._most
        return lambda detector: _why(most[detector], current)


class SetJudge:
    """Whether a policy set's routing, and the routed policy's decision, still
    need each detector (see the module's docstring)."""

    def __init__(self, compiled_set: CompiledPolicySet, detectors: Sequence[Detector]) -> None:
        self.compiled_set = compiled_set
        self._detectors = tuple(detectors)
        self._most: dict[int, dict[str, int]] = {}  # by route index, filled as routes are met

    def why(
        self,
        results: Sequence[DetectorResult],
        failures: Sequence[DetectorFailure],
        context: Mapping[str, Any] | None,
    ) -> Why:
        try:
            routable, routes = self.compiled_set.reachable(context or {})
        except PolicyEngineError:  # a context that does not resolve: nothing is skipped
            return lambda detector: None
        labels, metadata = _pooled(results)
        decided = [evaluate(labels, failures, metadata) for _, evaluate, _ in routes]
        if routable:  # the answers may still change the route: only block is safe
            if all(d.verdict is Verdict.BLOCK for d in decided):
                return lambda detector: EVERY_ROUTE_BLOCKS
            return lambda detector: None
        ((route, _, ignored),) = routes
        most = self._most.get(route.index)
        if most is None:
            compiled = self.compiled_set.compiled(route)
            most = self._most[route.index] = _bounds(compiled, self._detectors, ignored)
        current = decided[0].verdict.severity
        return lambda detector: _why(most[detector], current)


def judge_for(deciding: CompiledPolicy | CompiledPolicySet, detectors: Sequence[Detector]) -> Judge:
    """The judge of a compiled policy or set over the engine's ``detectors``."""
    if isinstance(deciding, CompiledPolicy):
        return PolicyJudge(deciding, detectors)
    return SetJudge(deciding, detectors)


@dataclass(frozen=True, slots=True)
class Deciders:
    """Every policy that decides an image: the serving one, and a shadow
    candidate's judge where there is one. A detector is skipped only when none
    of them needs it."""

    serving: Judge
    shadow: Judge | None = None

    def why(
        self,
        results: Sequence[DetectorResult],
        failures: Sequence[DetectorFailure],
        context: Mapping[str, Any] | None,
    ) -> Why:
        serving = self.serving.why(results, failures, context)
        if self.shadow is None:
            return serving
        shadow = self.shadow.why(results, failures, context)

        def both(detector: str) -> str | None:
            mine = serving(detector)
            if mine is None:
                return None
            theirs = shadow(detector)
            if theirs is None:
                return None
            return mine if theirs == mine else f"{mine} (shadow: {theirs})"

        return both


def skipped_into(decision: Decision, skipped: tuple[SkippedDetector, ...]) -> Decision:
    """``decision`` with the detectors the cascade skipped, for its record."""
    return replace(decision, skipped=skipped) if skipped else decision
