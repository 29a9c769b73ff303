"""Deciding an image with a policy set: routing by context and content types,
then the routed policy on its own detectors' labels at its own floor.

**A failed detector never routes by guess.** A content type that was reported
is known; one that was not is unknown when any detector failed for the image
or a result's content types were malformed (the core cannot tell which
detector would have reported it, so any failure counts: the safe side). The
image is then decided under every route some completion of the unknown names
reaches, and the most severe decision stands (ties: the earliest route); the
record names every route considered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from policy_engine.decision import Decision, DetectorFailure
from policy_engine.errors import PolicyEngineError
from policy_engine.labels import Label
from policy_engine.model import Verdict
from policy_engine.sets.content_types import NO_CONTENT_TYPES, content_types_of
from policy_engine.sets.model import MAX_COMBINATIONS, PolicySet, ResolvedContext, Route

if TYPE_CHECKING:
    from policy_engine.compiler import CompiledPolicy
    from policy_engine.detectors import DetectorResult
    from policy_engine.plugins import DetectorRegistry


@dataclass(frozen=True, slots=True)
class Routing:
    """Where a context (and the image's content types) routed: the resolved
    context, the route taken, every route considered, and the set. Made once
    per routing outcome and shared by every decision that has it."""

    context: ResolvedContext
    route: Route
    considered: tuple[Route, ...]
    set_name: str
    set_digest: str


@dataclass(frozen=True, slots=True, eq=False)
class SetDecision:
    """What a set decided for one image: the routed policy's :class:`Decision`,
    and its :class:`Routing`: the context, the route, and every route considered
    (more than one only when a failed detector left a ``content_type``
    condition unknown)."""

    decision: Decision
    routing: Routing

    @property
    def context(self) -> ResolvedContext:
        return self.routing.context

    @property
    def route(self) -> Route:
        return self.routing.route

    @property
    def considered(self) -> tuple[Route, ...]:
        return self.routing.considered

    @property
    def set_name(self) -> str:
        return self.routing.set_name

    @property
    def set_digest(self) -> str:
        return self.routing.set_digest

    @property
    def verdict(self) -> Verdict:
        return self.decision.verdict

    def to_dict(self) -> dict[str, Any]:
        record = self.decision.to_dict()
        routing = self.routing
        record["context"] = routing.context.to_dict()
        route = routing.route.to_dict()
        if len(routing.considered) > 1:
            route["considered"] = [r.to_dict() for r in routing.considered]
        record["route"] = route
        record["policy_set"] = {"name": routing.set_name, "digest": routing.set_digest}
        return record


# A frozen dataclass sets each field through object.__setattr__ in __init__;
# a set's decision is made per image, so it is built by its slots directly.
_new_object = object.__new__
_set_decision_field: Callable[[SetDecision, Decision], None] = vars(SetDecision)["decision"].__set__
_set_routing_field: Callable[[SetDecision, Routing], None] = vars(SetDecision)["routing"].__set__


def _set_decision(decision: Decision, routing: Routing) -> SetDecision:
    made: SetDecision = _new_object(SetDecision)
    _set_decision_field(made, decision)
    _set_routing_field(made, routing)
    return made


Evaluate = Callable[
    [Iterable[Label], Iterable[DetectorFailure], Mapping[str, Mapping[str, Any]] | None], Decision
]
"""A routed policy deciding on the set's inputs as if it had been checked alone."""

Choice = tuple[Routing, Evaluate]
"""A route an image may take, with what decides it."""

Outcome = tuple[Choice, ...]
"""Each route an image may take (one, but for unknown content types)."""


@dataclass(frozen=True, slots=True)
class _RoutedPolicy:
    """What deciding with one route needs, computed once: its compiled policy,
    the set's detectors that are not its own (their labels, failures and
    metadata are not its to decide on), and the floor below which labels are
    not part of its decision (None where the set's floor is its own already:
    detectors were asked at it)."""

    compiled: CompiledPolicy
    foreign: frozenset[str]
    floor: float | None

    def inputs(
        self,
        labels: Iterable[Label],
        failures: Iterable[DetectorFailure],
        metadata: Mapping[str, Mapping[str, Any]] | None,
    ) -> tuple[list[Label], list[DetectorFailure], dict[str, Mapping[str, Any]]]:
        foreign, floor = self.foreign, self.floor
        metadata = metadata or {}
        if not foreign and floor is None:  # the common case: nothing to leave out
            return list(labels), list(failures), dict(metadata)
        lowest = -math.inf if floor is None else floor
        return (
            [
                label
                for label in labels
                if label.confidence >= lowest and label.source not in foreign
            ],
            [failure for failure in failures if failure.source not in foreign],
            {name: meta for name, meta in metadata.items() if name not in foreign},
        )

    def evaluator(self) -> Evaluate:
        if not self.foreign and self.floor is None:
            return self.compiled.evaluate  # nothing to leave out: the policy itself

        def evaluate(
            labels: Iterable[Label],
            failures: Iterable[DetectorFailure],
            metadata: Mapping[str, Mapping[str, Any]] | None,
        ) -> Decision:
            return self.compiled.evaluate(*self.inputs(labels, failures, metadata))

        return evaluate


@dataclass(frozen=True, slots=True)
class _ContextPlan:
    """Routing for one resolved context, worked out when the context is first
    seen. ``fixed`` is its route when no content type can change it (the
    image's content types are then not read); otherwise ``plain`` is the route
    when none of the named types is reported and nothing is unknown, and
    ``outcomes`` remembers the others as they occur."""

    resolved: ResolvedContext
    fixed: Choice | None
    plain: Choice
    outcomes: dict[tuple[frozenset[str], bool], Outcome] = field(default_factory=dict)


def _most_severe(
    outcome: Outcome,
    labels: tuple[Label, ...],
    failures: tuple[DetectorFailure, ...],
    metadata: Mapping[str, Mapping[str, Any]] | None,
) -> SetDecision:
    """Every route an image may take decides it; the most severe decision
    stands, ties going to the earliest route."""
    best: SetDecision | None = None
    for routing, evaluate in outcome:  # in route order
        decided = _set_decision(evaluate(labels, failures, metadata), routing)
        if best is None or decided.verdict.severity > best.verdict.severity:
            best = decided
    assert best is not None
    return best


class CompiledPolicySet:
    """A set ready to decide: each routed policy compiled once, and each context's
    routing worked out once. Thread-safe."""

    def __init__(self, policy_set: PolicySet, registry: DetectorRegistry | None = None) -> None:
        from policy_engine.compiler import compile_policy

        self.policy_set = policy_set
        self.digest = policy_set.digest
        by_digest: dict[str, CompiledPolicy] = {}
        self._routes: dict[int, _RoutedPolicy] = {}
        self._evaluators: dict[int, Evaluate] = {}
        every_detector = frozenset(policy_set.detectors)
        lowest = policy_set.min_confidence if policy_set.routes else 0.0
        for route in policy_set.routes:
            digest = route.policy.digest
            compiled = by_digest.get(digest)
            if compiled is None:
                compiled = by_digest[digest] = compile_policy(route.policy, registry)
            own = frozenset(route.policy.detectors)
            # a policy naming no detectors (decided from labels alone) sees every label
            foreign = every_detector - own if own else frozenset()
            floor = route.policy.min_confidence
            routed = _RoutedPolicy(compiled, foreign, floor if floor > lowest else None)
            self._routes[route.index] = routed
            self._evaluators[route.index] = routed.evaluator()
        self._mentioned = policy_set.mentioned_content_types()
        self._content_types_at = policy_set.content_types_at
        self._plans: dict[tuple[tuple[str, Any], ...], _ContextPlan] = {}
        self._resolved_plans: dict[Any, _ContextPlan] = {}

    def compiled(self, route: Route) -> CompiledPolicy:
        return self._routes[route.index].compiled

    def decide_results(
        self,
        results: Sequence[DetectorResult],
        failures: Iterable[DetectorFailure] = (),
        context: Mapping[str, str] | ResolvedContext = MappingProxyType({}),
    ) -> SetDecision:
        """Decide one image from every detector's results (one pass for all routes)."""
        labels = [label for result in results for label in result.labels]
        metadata = {result.source: result.metadata for result in results if result.metadata}
        return self.decide(labels, failures, context, metadata)

    def decide(
        self,
        labels: Iterable[Label],
        failures: Iterable[DetectorFailure] = (),
        context: Mapping[str, str] | ResolvedContext = MappingProxyType({}),
        metadata: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> SetDecision:
        """Route by ``context`` and the reported content types, then decide with
        the routed policy on its own detectors' labels at its own floor."""
        try:
            plan = self._plans[tuple(context.items())]  # type: ignore[union-attr]
        except (KeyError, TypeError, AttributeError):  # first seen, unhashable, or resolved
            plan = self._plan(context)
        failures = tuple(failures) if failures else ()
        chosen = plan.fixed
        if chosen is None:  # this context's route depends on the content types
            reported, malformed = content_types_of(metadata, self._content_types_at)
            if reported or malformed or failures:
                outcome = self._outcome(plan, reported, malformed or bool(failures))
                if len(outcome) > 1:
                    return _most_severe(outcome, tuple(labels), failures, metadata)
                chosen = outcome[0]
            else:
                chosen = plan.plain
        routing, evaluate = chosen
        made: SetDecision = _new_object(SetDecision)  # see _set_decision
        _set_decision_field(made, evaluate(labels, failures, metadata))
        _set_routing_field(made, routing)
        return made

    def reachable(
        self, context: Mapping[str, str] | ResolvedContext
    ) -> tuple[bool, tuple[tuple[Route, Evaluate, frozenset[str]], ...]]:
        """For the cascade (:mod:`policy_engine.cascade`): whether content types
        and detector failures can change where ``context`` routes (if so, which
        detectors answer, and whether they fail, matters whatever their labels),
        and every route an image in ``context`` may take, each with what decides
        it and the set's detectors that are not its routed policy's own."""
        try:
            plan = self._plans[tuple(context.items())]  # type: ignore[union-attr]
        except (KeyError, TypeError, AttributeError):
            plan = self._plan(context)
        outcome = (
            (plan.fixed,) if plan.fixed is not None else self._outcome(plan, NO_CONTENT_TYPES, True)
        )
        return plan.fixed is None, tuple(
            (routing.route, evaluate, self._routes[routing.route.index].foreign)
            for routing, evaluate in outcome
        )

    def resolve(self, context: Mapping[str, str]) -> ResolvedContext:
        """:meth:`PolicySet.resolve_context`, remembered for contexts given as
        before (an upload flow has few surfaces and audiences)."""
        try:
            return self._plans[tuple(context.items())].resolved
        except (KeyError, TypeError):
            return self._plan(context).resolved

    def inputs_for(
        self,
        route: Route,
        labels: Iterable[Label],
        failures: Iterable[DetectorFailure] = (),
        metadata: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> tuple[list[Label], list[DetectorFailure], dict[str, Mapping[str, Any]]]:
        """What the routed policy decides on, as if it had been checked alone:
        labels at or above its own floor, and no label, failure or metadata of
        the set's detectors that are not its own. A policy that names no
        detectors (decided from labels alone) sees every detector's."""
        return self._routes[route.index].inputs(labels, failures, metadata)

    def _plan(self, context: Mapping[str, str] | ResolvedContext) -> _ContextPlan:
        """The plan of a context not seen before: resolved (raising
        :class:`~policy_engine.errors.ContextError` for a bad one) and routed,
        then remembered while fewer than :data:`MAX_COMBINATIONS` are."""
        if isinstance(context, ResolvedContext):
            key: Any = (
                tuple(context.values.items()),
                tuple(context.extra.items()),
                context.defaulted,
            )
            found = self._resolved_plans.get(key)
            if found is None:
                found = self._make_plan(context)
                if len(self._resolved_plans) < MAX_COMBINATIONS:
                    self._resolved_plans[key] = found
            return found
        plan = self._make_plan(self.policy_set.resolve_context(context))
        try:
            if len(self._plans) < MAX_COMBINATIONS:
                self._plans[tuple(context.items())] = plan
        except TypeError:  # a value that is no string and yet resolved: not remembered
            pass
        return plan

    def _make_plan(self, resolved: ResolvedContext) -> _ContextPlan:
        (plain,) = self._routed(resolved, NO_CONTENT_TYPES, False)
        anything = self._routed(resolved, NO_CONTENT_TYPES, True)  # any content types
        return _ContextPlan(resolved, plain if len(anything) == 1 else None, plain)

    def _outcome(self, plan: _ContextPlan, reported: frozenset[str], unknown: bool) -> Outcome:
        key = (reported & self._mentioned, unknown)
        found = plan.outcomes.get(key)
        if found is None:
            found = self._routed(plan.resolved, *key)
            if len(plan.outcomes) < MAX_COMBINATIONS:
                plan.outcomes[key] = found
        return found

    def _routed(
        self, resolved: ResolvedContext, reported: frozenset[str], unknown: bool
    ) -> Outcome:
        """:meth:`PolicySet.routes_possible`, each route with its :class:`Routing`
        and what decides with it."""
        policy_set = self.policy_set
        routes = policy_set.routes_possible(resolved.values, reported, unknown)
        if not routes:  # a set the loader checked is total; never allow by default
            raise PolicyEngineError(f"no route of policy set {policy_set.name!r} takes this image")
        return tuple(
            (
                Routing(resolved, route, routes, policy_set.name, self.digest),
                self._evaluators[route.index],
            )
            for route in routes
        )


def compile_policy_set(
    policy_set: PolicySet, registry: DetectorRegistry | None = None
) -> CompiledPolicySet:
    return CompiledPolicySet(policy_set, registry)
