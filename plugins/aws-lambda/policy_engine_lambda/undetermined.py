"""Deciding an object whose context is undetermined, never by guess.

An object whose metadata and key leave a dimension without a value (and it
has no default), give a value not in its list, or disagree (see
:mod:`policy_engine_lambda.context`) is decided as ``on_error`` says, by
every route it could still reach: the dimensions that were determined are
fixed, the others range over all their values, and every ``content_type``
outcome counts (no detector is asked: whatever it said, the route would
still be a guess). Each of those routes' policies decides as if its detectors
had failed (its ``on_error``), and the most severe decision stands (ties: the
earliest route), as for a ``content_type`` condition a failed detector left
unknown (POLICY_SPEC section 10). So such an object is allowed only when
every route it could reach has ``on_error: allow``.

The decision carries one error, from source ``context`` with code
``context-undetermined``, whose message names each undetermined dimension and
what its metadata and prefix said; its record names every route considered.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from policy_engine.decision import Decision, DetectorFailure
from policy_engine.errors import PolicyEngineError
from policy_engine.policy_set import (
    CompiledPolicySet,
    Dimension,
    PolicySet,
    ResolvedContext,
    Route,
    Routing,
    SetDecision,
)
from policy_engine_lambda.context import ObjectContext

CONTEXT_UNDETERMINED = "context-undetermined"
"""The code of the error an undetermined context's decision carries."""
CONTEXT_SOURCE = "context"
"""The source of that error: the object's context, not a detector."""


def _distinct_values(dimension: Dimension, routes: Sequence[Route]) -> tuple[str, ...]:
    """The dimension's values, less those every route treats alike: the values
    some route's ``when`` names, and one that none names (a route either has
    no condition on the dimension, which every value passes, or names values,
    which every unnamed value fails)."""
    named = {value for route in routes for value in route.when.get(dimension.name, ())}
    unnamed = [value for value in dimension.values if value not in named]
    return tuple(value for value in dimension.values if value in named) + tuple(unnamed[:1])


def reachable_routes(policy_set: PolicySet, fixed: Mapping[str, str]) -> tuple[Route, ...]:
    """Every route an image may take with the dimensions in ``fixed`` at those
    values, the others at any of theirs, and any content types reported."""
    free = [d for d in policy_set.dimensions if d.name not in fixed]
    found: dict[int, Route] = {}
    choices = [_distinct_values(d, policy_set.routes) for d in free]
    for combination in itertools.product(*choices):
        values = {**fixed, **{d.name: value for d, value in zip(free, combination, strict=True)}}
        for route in policy_set.routes_possible(values, frozenset(), unknown=True):
            found.setdefault(route.index, route)
    return tuple(found[index] for index in sorted(found))


def undetermined_failure(context: ObjectContext) -> DetectorFailure:
    """The error an undetermined context's decision carries (never retryable:
    the same object, key and settings give the same context)."""
    return DetectorFailure(
        CONTEXT_SOURCE,
        f"the object's context is undetermined: {context.describe_problems()}",
        CONTEXT_UNDETERMINED,
    )


def decide_undetermined(compiled: CompiledPolicySet, context: ObjectContext) -> SetDecision:
    """The decision for an object whose ``context`` is undetermined (see the module)."""
    policy_set = compiled.policy_set
    routes = reachable_routes(policy_set, context.values)
    failure = undetermined_failure(context)
    best: tuple[Decision, Route] | None = None
    for route in routes:
        decision = compiled.compiled(route).evaluate((), (failure,))
        if best is None or decision.verdict.severity > best[0].verdict.severity:
            best = (decision, route)
    if best is None:  # a set the loader checked is total: never allow by default
        raise PolicyEngineError(f"no route of policy set {policy_set.name!r} takes this object")
    resolved = ResolvedContext(MappingProxyType(dict(context.values)))
    routing = Routing(resolved, best[1], routes, policy_set.name, compiled.digest)
    return SetDecision(best[0], routing)
