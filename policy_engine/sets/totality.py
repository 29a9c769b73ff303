"""Totality of a policy set's routes, proved when it loads.

The outcomes of different ``content_type`` conditions are
correlated (``[Animated]`` and ``[Animated, Illustrated]`` cannot differ in the
way two free atoms could), so the check enumerates, for the set of every
content-type name the routes mention, each subset of names that may be
reported, together with each combination of dimension values. Values of one
dimension (and content-type names) that every route treats alike are one
class, and one representative per class is enumerated: the result is the same
as enumerating everything, and a set of realistic size checks in microseconds.
A set with more than :data:`MAX_COMBINATIONS` classes combined is refused
(``too-many-combinations``): loading stays bounded.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from policy_engine.names import name_key
from policy_engine.sets.model import Dimension, PolicySet, Route, content_type_classes


@dataclass(frozen=True, slots=True)
class RouteAnalysis:
    """What :func:`analyse_routes` found: one combination no route takes (None
    when the set is total), and the indexes of the routes some combination
    takes."""

    uncovered: tuple[Mapping[str, str], frozenset[str]] | None
    reachable: frozenset[int]
    combinations: int


def _valuecontent_type_classes(dimension: Dimension, routes: Sequence[Route]) -> tuple[str, ...]:
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
    count: int = 1 << len(
        content_type_classes(policy_set.mentioned_content_types(), policy_set.routes)
    )
    for dimension in policy_set.dimensions:
        count *= len(_valuecontent_type_classes(dimension, policy_set.routes))
    return count


def analyse_routes(policy_set: PolicySet) -> RouteAnalysis:
    """Exactly which routes are reachable, and one combination none takes
    (see the module's notes): every combination of dimension-value classes
    with every subset of content-type classes."""
    routes = policy_set.routes
    dims = policy_set.dimensions
    per_dimension = [_valuecontent_type_classes(d, routes) for d in dims]
    types = sorted(content_type_classes(policy_set.mentioned_content_types(), routes))
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
