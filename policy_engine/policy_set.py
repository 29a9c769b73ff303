"""Policy sets (POLICY_SPEC section 10): context dimensions, routes tried in
order, and deciding an image with the policy its context routes to.

A set is pure data once loaded (:class:`PolicySet`); :func:`check_policy_set_file`
loads one, with every routed policy loaded through the policy loader's public
:func:`~policy_engine.loader.check_policy_file` (each file read once per set
load, however many routes name it), and proves at load time that every
combination reaches a route (:func:`analyse_routes`).

**Content types.** A ``content_type`` condition is about the image: it holds
when a detector reported one of the named content types at or above
``content_types_at``. The core reads content types from any detector result's
metadata under :data:`CONTENT_TYPES_KEY` (``content_types``), a list of
``{"name", "confidence"}`` objects (``Name``/``Confidence``, the spelling
Rekognition's ``ContentTypes`` uses and its plugin keeps, read the same); it
never names a detector. Names compare as label names do.

**Exact totality.** The outcomes of different ``content_type`` conditions are
correlated (``[Animated]`` and ``[Animated, Illustrated]`` cannot differ in the
way two free atoms could), so the check enumerates, for the set of every
content-type name the routes mention, each subset of names that may be
reported, together with each combination of dimension values. Values of one
dimension (and content-type names) that every route treats alike are one
class, and one representative per class is enumerated: the result is the same
as enumerating everything, and a set of realistic size checks in microseconds.
A set with more than :data:`MAX_COMBINATIONS` classes combined is refused
(``too-many-combinations``): loading stays bounded.

**A failed detector never routes by guess.** A content type that was reported
is known; one that was not is unknown when any detector failed for the image
or a result's content types were malformed (the core cannot tell which
detector would have reported it, so any failure counts: the safe side). The
image is then decided under every route some completion of the unknown names
reaches, and the most severe decision stands (ties: the earliest route); the
record names every route considered.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from policy_engine.decision import Decision, DetectorFailure
from policy_engine.diagnostics import (
    Diagnosed,
    Diagnostic,
    Position,
    Severity,
    error,
    sort_diagnostics,
    warning,
)
from policy_engine.errors import ContextError, PolicyEngineError, PolicySetLoadError, SourceError
from policy_engine.json_types import plain
from policy_engine.labels import Label
from policy_engine.model import Policy, Verdict, plain_number
from policy_engine.names import name_key, tidy_name
from policy_engine.source import JsonPath, SourceMap, parse_document, read_policy_text

if TYPE_CHECKING:
    from policy_engine.compiler import CompiledPolicy
    from policy_engine.detectors import DetectorResult
    from policy_engine.loader import LoadResult
    from policy_engine.plugins import DetectorRegistry

CONTENT_TYPE = "content_type"
"""The reserved ``when`` condition on the image; never a dimension name."""

CONTENT_TYPES_KEY = "content_types"
"""The detector-result metadata key content types are read from."""

DEFAULT_CONTENT_TYPES_AT = 50.0

MAX_COMBINATIONS = 1 << 16
"""Most combinations (of value classes and content-type subsets) checked at load."""

_KIND_LINE = re.compile(r"^kind\s*:\s*['\"]?policy-set['\"]?\s*(#.*)?$", re.MULTILINE)


# -- the model -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dimension:
    """A context dimension: a closed list of values and an optional default."""

    name: str
    values: tuple[str, ...]
    default: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """One route: the conditions that must all hold, and the policy it routes to.

    ``when`` maps dimensions to the values any of which holds; ``content_types``
    is the ``content_type`` condition's names as written (None: no such
    condition). ``policy_file`` is the path as the set writes it."""

    index: int
    when: Mapping[str, tuple[str, ...]]
    content_types: tuple[str, ...] | None
    policy_file: str
    policy: Policy = field(repr=False)
    position: Position = field(default_factory=Position)
    content_type_keys: frozenset[str] = field(init=False, repr=False, compare=False)
    """The ``content_type`` names as they compare (computed once: routing reads it)."""

    def __post_init__(self) -> None:
        keys = frozenset(name_key(n) for n in self.content_types or ())
        object.__setattr__(self, "content_type_keys", keys)

    def holds(self, values: Mapping[str, str], reported: frozenset[str]) -> bool:
        """Whether every condition holds for dimension ``values`` and the
        ``reported`` content types (name keys)."""
        if any(values.get(dim) not in allowed for dim, allowed in self.when.items()):
            return False
        return self.content_types is None or bool(self.content_type_keys & reported)

    def when_data(self) -> dict[str, Any]:
        """``when`` as the record shows it: each condition as a list."""
        data: dict[str, Any] = {dim: list(values) for dim, values in self.when.items()}
        if self.content_types is not None:
            data[CONTENT_TYPE] = list(self.content_types)
        return data

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "when": self.when_data(), "policy": self.policy_file}


@dataclass(frozen=True, slots=True)
class ResolvedContext:
    """A caller's context resolved against a set: a value for every dimension
    (``defaulted`` names those taken from a default), and the keys that are no
    dimension, kept for the audit trail only (they never route)."""

    values: Mapping[str, str]
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    defaulted: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, str]:
        """The dimensions and the values used, defaults included (the record's ``context``)."""
        return dict(self.values)


@dataclass(frozen=True, slots=True, eq=False)
class PolicySet:
    """A loaded policy set. Equal sets have equal :attr:`digest`."""

    name: str
    dimensions: tuple[Dimension, ...]
    routes: tuple[Route, ...]
    content_types_at: float = DEFAULT_CONTENT_TYPES_AT
    description: str | None = None
    file: str = "<string>"

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def policies(self) -> tuple[Policy, ...]:
        """Each routed policy once (by digest), in route order."""
        seen: dict[str, Policy] = {}
        for route in self.routes:
            seen.setdefault(route.policy.digest, route.policy)
        return tuple(seen.values())

    @property
    def detectors(self) -> Mapping[str, Mapping[str, Any]]:
        """The union of the routed policies' detectors (the loader refuses one
        detector named with two settings): each is called once per image."""
        found: dict[str, Mapping[str, Any]] = {}
        for policy in self.policies():
            for name, settings in policy.detectors.items():
                found.setdefault(name, settings)
        return MappingProxyType(found)

    @property
    def min_confidence(self) -> float:
        """The lowest floor among the routed policies: detectors are asked at it."""
        return min(policy.min_confidence for policy in self.policies())

    def canonical_data(self) -> dict[str, Any]:
        """What the set means: dimensions (values in any order), routes in order
        with their conditions and their policies' effective digests (not their
        file names: moving a file changes nothing)."""
        data: dict[str, Any] = {"version": 1, "kind": "policy-set", "name": self.name}
        if self.description is not None:
            data["description"] = self.description
        data["context"] = {
            d.name: {"values": sorted(d.values), "default": d.default} for d in self.dimensions
        }
        data["content_types_at"] = plain_number(self.content_types_at)
        routes = []
        for route in self.routes:
            when: dict[str, Any] = {dim: sorted(values) for dim, values in route.when.items()}
            if route.content_types is not None:
                when[CONTENT_TYPE] = sorted(route.content_type_keys)
            routes.append({"when": when, "policy": route.policy.digest})
        data["routes"] = routes
        return data

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` over :meth:`canonical_data`: covers the set and every
        routed policy's effective form."""
        text = json.dumps(
            self.canonical_data(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def resolve_context(self, given: Mapping[str, str]) -> ResolvedContext:
        """Every dimension's value from ``given`` or its default; raise
        :class:`~policy_engine.errors.ContextError` naming the dimension when it
        has neither, or the value is not in its list. Keys that are no
        dimension are kept in ``extra``."""
        values: dict[str, str] = {}
        defaulted: set[str] = set()
        for dimension in self.dimensions:
            value = given.get(dimension.name)
            if value is None:
                if dimension.default is None:
                    known = ", ".join(dimension.values)
                    raise ContextError(
                        dimension.name,
                        f"the context gives no value for dimension {dimension.name!r}, "
                        f"which has no default (one of: {known})",
                    )
                value = dimension.default
                defaulted.add(dimension.name)
            elif value not in dimension.values:
                known = ", ".join(dimension.values)
                raise ContextError(
                    dimension.name,
                    f"{value!r} is not a value of dimension {dimension.name!r} (one of: {known})",
                )
            values[dimension.name] = value
        names = set(self.dimension_names)
        extra = {key: value for key, value in given.items() if key not in names}
        return ResolvedContext(
            MappingProxyType(values), MappingProxyType(extra), frozenset(defaulted)
        )

    def route_for(self, values: Mapping[str, str], reported: frozenset[str]) -> Route | None:
        """The first route that holds (None only for a set the loader refused)."""
        for route in self.routes:
            if route.holds(values, reported):
                return route
        return None

    def mentioned_content_types(self) -> frozenset[str]:
        """The name keys of every content type a route's condition names."""
        return frozenset(key for route in self.routes for key in route.content_type_keys)

    def routes_possible(
        self, values: Mapping[str, str], reported: frozenset[str], unknown: bool
    ) -> tuple[Route, ...]:
        """The routes an image may take: one, or with ``unknown`` (a detector
        failed) every route some set of further content types reaches."""
        if not unknown:
            first = self.route_for(values, reported)
            return () if first is None else (first,)
        free = sorted(_classes(self.mentioned_content_types() - reported, self.routes))
        found: dict[int, Route] = {}
        for size in range(len(free) + 1):
            for extra in itertools.combinations(free, size):
                route = self.route_for(values, reported | frozenset(extra))
                if route is not None:
                    found.setdefault(route.index, route)
        return tuple(found[i] for i in sorted(found))


# -- totality --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteAnalysis:
    """What :func:`analyse_routes` found: one combination no route takes (None
    when the set is total), and the indexes of the routes some combination
    takes."""

    uncovered: tuple[Mapping[str, str], frozenset[str]] | None
    reachable: frozenset[int]
    combinations: int


def _classes(names: Iterable[str], routes: Sequence[Route]) -> frozenset[str]:
    """One representative content-type name per class of names every route's
    condition treats alike (each route either names all of them or none)."""
    by_signature: dict[tuple[bool, ...], str] = {}
    for key in sorted(names):
        signature = tuple(key in r.content_type_keys for r in routes if r.content_types)
        by_signature.setdefault(signature, key)
    return frozenset(by_signature.values())


def _value_classes(dimension: Dimension, routes: Sequence[Route]) -> tuple[str, ...]:
    """One representative value per class of values every route treats alike."""
    by_signature: dict[tuple[bool, ...], str] = {}
    for value in dimension.values:
        signature = tuple(
            value in r.when[dimension.name] for r in routes if dimension.name in r.when
        )
        by_signature.setdefault(signature, value)
    return tuple(by_signature.values())


def combination_count(policy_set: PolicySet) -> int:
    """How many combinations :func:`analyse_routes` enumerates."""
    count: int = 1 << len(_classes(policy_set.mentioned_content_types(), policy_set.routes))
    for dimension in policy_set.dimensions:
        count *= len(_value_classes(dimension, policy_set.routes))
    return count


def analyse_routes(policy_set: PolicySet) -> RouteAnalysis:
    """Exactly which routes are reachable, and one combination none takes
    (see the module's notes): every combination of dimension-value classes
    with every subset of content-type classes."""
    routes = policy_set.routes
    dims = policy_set.dimensions
    per_dimension = [_value_classes(d, routes) for d in dims]
    types = sorted(_classes(policy_set.mentioned_content_types(), routes))
    subsets = [
        frozenset(chosen)
        for size in range(len(types) + 1)
        for chosen in itertools.combinations(types, size)
    ]
    uncovered: tuple[Mapping[str, str], frozenset[str]] | None = None
    reachable: set[int] = set()
    count = 0
    for combination in itertools.product(*per_dimension):
        values = dict(zip((d.name for d in dims), combination, strict=True))
        for reported in subsets:
            count += 1
            route = policy_set.route_for(values, reported)
            if route is None:
                if uncovered is None:
                    uncovered = (values, reported)
            else:
                reachable.add(route.index)
    return RouteAnalysis(uncovered, frozenset(reachable), count)


def describe_combination(
    policy_set: PolicySet, values: Mapping[str, str], reported: frozenset[str]
) -> str:
    """``surface=chat, audience=teen, content types reported: none of Animated, Illustrated``."""
    parts = [f"{dim}={value}" for dim, value in values.items()]
    mentioned = policy_set.mentioned_content_types()
    if mentioned:
        display = _display_names(policy_set)
        if reported:
            shown = ", ".join(display[k] for k in sorted(reported))
            others = sorted(mentioned - _members(reported, policy_set))
            text = f"content types reported: {shown}"
            if others:
                text += f" (none of {', '.join(display[k] for k in others)})"
        else:
            text = "content types reported: none of " + ", ".join(
                display[k] for k in sorted(mentioned)
            )
        parts.append(text)
    return ", ".join(parts) or "any image"


def _members(representatives: frozenset[str], policy_set: PolicySet) -> frozenset[str]:
    """Every mentioned name in the classes of ``representatives``."""
    routes = [r for r in policy_set.routes if r.content_types]

    def signature(key: str) -> tuple[bool, ...]:
        return tuple(key in r.content_type_keys for r in routes)

    wanted = {signature(k) for k in representatives}
    return frozenset(k for k in policy_set.mentioned_content_types() if signature(k) in wanted)


def _display_names(policy_set: PolicySet) -> dict[str, str]:
    display: dict[str, str] = {}
    for route in policy_set.routes:
        for name in route.content_types or ():
            display.setdefault(name_key(name), name)
    return display


# -- deciding --------------------------------------------------------------


_NO_CONTENT_TYPES: frozenset[str] = frozenset()


def content_types_of(
    metadata: Mapping[str, Mapping[str, Any]] | None, at: float
) -> tuple[frozenset[str], bool]:
    """The name keys of the content types any result reported at or above ``at``,
    and whether some result's content types were malformed (then what was not
    reported is unknown). Read for every image a content type may route: the
    usual spelling (a list of dicts with a string name and a finite float
    confidence) is checked first and cheaply."""
    reported: set[str] | None = None
    malformed = False
    name: Any
    confidence: Any
    if not metadata:
        return _NO_CONTENT_TYPES, False
    for meta in metadata.values():
        entries = meta.get(CONTENT_TYPES_KEY)
        if entries is None:
            continue
        if type(entries) is not list and not isinstance(entries, (list, tuple)):
            malformed = True
            continue
        for entry in entries:
            if type(entry) is dict and "name" in entry:
                name, confidence = entry["name"], entry.get("confidence")
            else:
                name, confidence = _field(entry, "name"), _field(entry, "confidence")
            usual = type(name) is str and type(confidence) is float and -_INF < confidence < _INF
            if not usual and not _well_formed(name, confidence):
                malformed = True
                continue
            if confidence >= at:
                if reported is None:
                    reported = set()
                reported.add(name_key(name))
    return (_NO_CONTENT_TYPES if reported is None else frozenset(reported)), malformed


_INF = math.inf


def _well_formed(name: Any, confidence: Any) -> bool:
    """A content type's name is a string, its confidence a finite number."""
    return (
        isinstance(name, str)
        and not isinstance(confidence, bool)
        and isinstance(confidence, (int, float))
        and math.isfinite(confidence)
    )


def _field(entry: Any, key: str) -> Any:
    if not isinstance(entry, Mapping):
        return None
    return entry.get(key, entry.get(key.capitalize()))


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
        (plain,) = self._routed(resolved, _NO_CONTENT_TYPES, False)
        anything = self._routed(resolved, _NO_CONTENT_TYPES, True)  # any content types
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


# -- loading ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicySetLoadResult(Diagnosed):
    """A set (None if it has errors) and every diagnostic about it and its policies."""

    policy_set: PolicySet | None
    diagnostics: tuple[Diagnostic, ...]


def is_policy_set_text(text: str) -> bool:
    """Whether the text declares ``kind: policy-set`` at its top level: a line
    ``kind: policy-set`` says so at once; otherwise (a flow mapping, say) a text
    that mentions ``policy-set`` is parsed to look."""
    if _KIND_LINE.search(text) is not None:
        return True
    if "policy-set" not in text:
        return False
    try:
        data = parse_document(text, "<kind>").data
    except SourceError:
        return False
    return isinstance(data, dict) and data.get("kind") == "policy-set"


def is_policy_set_file(path: str | os.PathLike[str]) -> bool:
    """Whether the file is a policy set (False for anything unreadable: the
    policy loader then reports why)."""
    try:
        return is_policy_set_text(read_policy_text(Path(path)))
    except (OSError, SourceError):
        return False


def policy_set_schema() -> Mapping[str, Any]:
    """The JSON Schema of a policy set file, as shipped in the package."""
    from policy_engine.schema import packaged_schema

    return packaged_schema("policy-set.schema.json")


def check_policy_set_file(
    path: str | os.PathLike[str], *, registry: DetectorRegistry | None = None
) -> PolicySetLoadResult:
    """Load a policy set file and the policies it routes to, collecting every
    diagnostic instead of raising."""
    file_path = Path(path)
    try:
        text = read_policy_text(file_path)
    except SourceError as exc:
        return PolicySetLoadResult(None, sort_diagnostics(exc.diagnostics))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        found = error("unreadable", f"cannot read the policy set: {reason}", str(path), Position())
        return PolicySetLoadResult(None, (found,))
    return check_policy_set_text(
        text, str(path), registry=registry, base_dir=str(file_path.resolve().parent)
    )


def load_policy_set(
    path: str | os.PathLike[str], *, registry: DetectorRegistry | None = None
) -> PolicySet:
    """Load a policy set file; raise :class:`PolicySetLoadError` with every error."""
    result = check_policy_set_file(path, registry=registry)
    if result.policy_set is None:
        raise PolicySetLoadError(result.errors)
    return result.policy_set


def check_policy_set_text(
    text: str,
    file: str = "<string>",
    *,
    registry: DetectorRegistry | None = None,
    base_dir: str | None = None,
) -> PolicySetLoadResult:
    """Load a policy set from text; routed policies' paths are relative to ``base_dir``."""
    from policy_engine.schema import check_against_schema, packaged_validator

    try:
        document = parse_document(text, file)
    except SourceError as exc:
        return PolicySetLoadResult(None, sort_diagnostics(exc.diagnostics))
    source_map = document.source_map
    diagnostics = list(document.diagnostics)
    data = document.data
    report = check_against_schema(
        packaged_validator("policy-set.schema.json"), data, source_map, reported=document.refused
    )
    diagnostics.extend(report.diagnostics)
    if not isinstance(data, dict):
        return PolicySetLoadResult(None, sort_diagnostics(diagnostics))
    if isinstance(data.get("version"), float):
        diagnostics.append(
            error(
                "invalid-value",
                "version: write the integer 1, not a decimal",
                file,
                source_map.at(("version",)),
            )
        )
    dimensions = _dimensions(data, source_map, report.usable, diagnostics)
    routes = _routes(
        data,
        source_map,
        report.usable,
        dimensions,
        Path(base_dir or "."),
        registry,
        diagnostics,
    )
    if any(d.severity is Severity.ERROR for d in diagnostics) or not report.usable(()):
        return PolicySetLoadResult(None, sort_diagnostics(diagnostics))
    description = data.get("description")
    policy_set = PolicySet(
        name=data["name"],
        dimensions=tuple(dimensions.values()),
        routes=tuple(routes),
        content_types_at=float(data.get("content_types_at", DEFAULT_CONTENT_TYPES_AT)),
        description=description if isinstance(description, str) else None,
        file=file,
    )
    diagnostics.extend(_check_totality(policy_set, source_map))
    failed = any(d.severity is Severity.ERROR for d in diagnostics)
    return PolicySetLoadResult(None if failed else policy_set, sort_diagnostics(diagnostics))


def _dimensions(
    data: Mapping[str, Any],
    source_map: SourceMap,
    usable: Any,
    diagnostics: list[Diagnostic],
) -> dict[str, Dimension]:
    found: dict[str, Dimension] = {}
    context = data.get("context")
    if not isinstance(context, dict):
        return found
    for name, raw in context.items():
        path: JsonPath = ("context", name)
        if not usable(path) or not isinstance(raw, dict):
            continue
        if name == CONTENT_TYPE:
            diagnostics.append(
                error(
                    "reserved-dimension",
                    "context: content_type is the reserved condition on the image "
                    "(its content types), not a dimension; name the dimension otherwise",
                    source_map.file,
                    source_map.key_at(path),
                )
            )
            continue
        values = tuple(raw["values"])
        default = raw.get("default")
        if default is not None and default not in values:
            diagnostics.append(
                error(
                    "unknown-context-value",
                    f"context.{name}.default: {default!r} is not one of its values "
                    f"({', '.join(values)})",
                    source_map.file,
                    source_map.at((*path, "default")),
                )
            )
        found[name] = Dimension(name, values, default)
    return found


def _routes(
    data: Mapping[str, Any],
    source_map: SourceMap,
    usable: Any,
    dimensions: Mapping[str, Dimension],
    base_dir: Path,
    registry: DetectorRegistry | None,
    diagnostics: list[Diagnostic],
) -> list[Route]:
    from policy_engine.loader import PolicyFileCache, check_policy_file

    file = source_map.file
    shared = PolicyFileCache()  # a base that several routed policies extend is read once
    raw_routes = data.get("routes")
    if not isinstance(raw_routes, list):
        return []
    loaded: dict[Path, LoadResult] = {}  # each file read once, however many routes name it
    reported_files: set[Path] = set()
    detectors_seen: dict[str, tuple[Any, str]] = {}
    routes: list[Route] = []
    for index, raw in enumerate(raw_routes):
        path: JsonPath = ("routes", index)
        if not usable(path) or not isinstance(raw, dict):
            continue
        when: dict[str, tuple[str, ...]] = {}
        content_types: tuple[str, ...] | None = None
        for key, value in (raw.get("when") or {}).items():
            items = (value,) if isinstance(value, str) else tuple(value)
            key_path: JsonPath = (*path, "when", key)
            if key == CONTENT_TYPE:
                content_types = tuple(tidy_name(item) for item in items)
                continue
            dimension = dimensions.get(key)
            if dimension is None:
                known = ", ".join([*dimensions, CONTENT_TYPE])
                diagnostics.append(
                    error(
                        "unknown-dimension",
                        f"routes[{index}].when: {key!r} is not a dimension of the context "
                        f"(known: {known})",
                        file,
                        source_map.key_at(key_path),
                    )
                )
                continue
            for position, item in enumerate(items):
                if item not in dimension.values:
                    at = key_path if isinstance(value, str) else (*key_path, position)
                    diagnostics.append(
                        error(
                            "unknown-context-value",
                            f"routes[{index}].when.{key}: {item!r} is not a value of "
                            f"dimension {key!r} (one of: {', '.join(dimension.values)})",
                            file,
                            source_map.at(at),
                        )
                    )
            when[key] = items
        written = raw["policy"]
        policy_path = (base_dir / written).resolve()
        result = loaded.get(policy_path)
        if result is None:
            result = check_policy_file(policy_path, registry=registry, cache=shared)
            loaded[policy_path] = result
        policy_at = source_map.at((*path, "policy"))
        if result.policy is None:
            first = result.errors[0].render() if result.errors else "it has errors"
            diagnostics.append(
                error(
                    "route-policy-does-not-load",
                    f"routes[{index}].policy: {written} does not load: {first}",
                    file,
                    policy_at,
                )
            )
            if policy_path not in reported_files:
                reported_files.add(policy_path)
                diagnostics.extend(result.errors)
            continue
        policy = result.policy
        for name, settings in policy.detectors.items():
            settled = plain(settings)
            earlier = detectors_seen.setdefault(name, (settled, written))
            if earlier[0] != settled:
                diagnostics.append(
                    error(
                        "detector-conflict",
                        f"routes[{index}].policy: {written} names detector {name!r} with other "
                        f"settings than {earlier[1]} does; detectors run once per image for "
                        "every route, so give them the same settings",
                        file,
                        policy_at,
                    )
                )
        routes.append(
            Route(
                index=index,
                when=MappingProxyType(when),
                content_types=content_types,
                policy_file=written,
                policy=policy,
                position=source_map.at(path),
            )
        )
    return routes


def _check_totality(policy_set: PolicySet, source_map: SourceMap) -> list[Diagnostic]:
    file = source_map.file
    at = source_map.key_at(("routes",))
    count = combination_count(policy_set)
    if count > MAX_COMBINATIONS:
        return [
            error(
                "too-many-combinations",
                f"the context and content types make {count} distinct combinations, more than "
                f"{MAX_COMBINATIONS} that are checked when a set loads; split the set",
                file,
                at,
            )
        ]
    analysis = analyse_routes(policy_set)
    found: list[Diagnostic] = []
    if analysis.uncovered is not None:
        values, reported = analysis.uncovered
        found.append(
            error(
                "route-not-total",
                "no route takes "
                + describe_combination(policy_set, values, reported)
                + "; add a route without when: at the end, or cover it",
                file,
                at,
            )
        )
    for route in policy_set.routes:
        if route.index not in analysis.reachable:
            found.append(
                warning(
                    "unreachable-route",
                    f"routes[{route.index}] is never taken: earlier routes take every "
                    "combination it holds for",
                    file,
                    route.position,
                )
            )
    return found
