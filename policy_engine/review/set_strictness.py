"""Strictness and diffs over the contexts of policy sets (POLICY_SPEC sections 10-11).

A policy set routes every combination of context values and content-type
outcome to one policy. Two sets (or two contexts of one set) are compared
combination by combination: for each, the two routed policies are compared
exactly with :func:`compare_policies`. Combinations are enumerated by classes
(values, and content types, that every route of both sides treats alike), so
the enumeration is exact and as small as the routes allow.

A plain policy compared with a set is read as a set with no dimensions whose
one route always holds: every combination routes to it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from policy_engine.compiler import CompiledPolicy, compile_policy
from policy_engine.errors import SetComparisonError
from policy_engine.model import Policy
from policy_engine.names import name_key
from policy_engine.policy_set import Dimension, PolicySet, Route
from policy_engine.review.strictness import Relation, Strictness, compare_policies

if TYPE_CHECKING:
    from policy_engine.plugins import DetectorRegistry


Combination = tuple[tuple[tuple[str, str], ...], frozenset[str]]
"""The dimension values (in order) and the content types reported."""


def as_set(side: Policy | PolicySet) -> PolicySet:
    """A plain policy as a set with no dimensions whose one route always holds."""
    if isinstance(side, PolicySet):
        return side
    route = Route(0, {}, None, side.file, side)
    return PolicySet(side.name, (), (route,))


def _routes(*sets: PolicySet) -> list[Route]:
    return [route for policy_set in sets for route in policy_set.routes]


def _value_classes(name: str, values: Sequence[str], routes: Sequence[Route]) -> tuple[str, ...]:
    by_signature: dict[tuple[bool, ...], str] = {}
    for value in values:
        signature = tuple(value in r.when[name] for r in routes if name in r.when)
        by_signature.setdefault(signature, value)
    return tuple(by_signature.values())


def _type_classes(routes: Sequence[Route]) -> list[str]:
    names = {key for r in routes for key in r.content_type_keys}
    by_signature: dict[tuple[bool, ...], str] = {}
    for key in sorted(names):
        signature = tuple(key in r.content_type_keys for r in routes if r.content_types)
        by_signature.setdefault(signature, key)
    return sorted(by_signature.values())


def joint_dimensions(old: PolicySet, new: PolicySet) -> tuple[Dimension, ...]:
    """Every dimension either set declares; one both declare must have the same values."""
    found: dict[str, Dimension] = {d.name: d for d in old.dimensions}
    for dimension in new.dimensions:
        before = found.get(dimension.name)
        if before is not None and set(before.values) != set(dimension.values):
            raise SetComparisonError(
                f"dimension {dimension.name!r} has values {list(before.values)} in "
                f"{old.name} and {list(dimension.values)} in {new.name}: the sets cannot be "
                "compared context by context"
            )
        found.setdefault(dimension.name, dimension)
    return tuple(found.values())


def combinations(
    dimensions: Sequence[Dimension], routes: Sequence[Route], fixed: Mapping[str, str]
) -> Iterator[Combination]:
    """One combination per class of contexts (``fixed`` dimensions held) and
    content-type outcome that ``routes`` all treat alike."""
    free = [d for d in dimensions if d.name not in fixed]
    per_dimension = [_value_classes(d.name, d.values, routes) for d in free]
    types = _type_classes(routes)
    subsets = [
        frozenset(chosen)
        for size in range(len(types) + 1)
        for chosen in itertools.combinations(types, size)
    ]
    for chosen in itertools.product(*per_dimension):
        values = tuple(zip((d.name for d in free), chosen, strict=True))
        for reported in subsets:
            yield values, reported


def content_type_names(routes: Sequence[Route]) -> Mapping[str, str] | None:
    """The content types the routes name, by name key as written (None: none named)."""
    display: dict[str, str] = {}
    for route in routes:
        for name in route.content_types or ():
            display.setdefault(name_key(name), name)
    return display or None


def describe(combination: Combination, content_types: Mapping[str, str] | None = None) -> str:
    """``surface=chat, content types reported: Illustrated`` (``content_types``: the
    names to show, by key; None when no route names one)."""
    values, reported = combination
    parts = [f"{name}={value}" for name, value in values]
    if content_types is not None:
        shown = ", ".join(content_types.get(k, k) for k in sorted(reported)) or "none"
        parts.append(f"content types reported: {shown}")
    return ", ".join(parts) or "every context"


@dataclass(frozen=True, slots=True)
class RoutePair:
    """Combinations the two sides route to ``old_route`` and ``new_route``, and how
    the new routed policy compares with the old (``strictness.a`` is the new one)."""

    old_route: Route
    new_route: Route
    combinations: tuple[Combination, ...]
    strictness: Strictness
    same_policy: bool


@dataclass(frozen=True, slots=True)
class SetDiff:
    """OLD and NEW compared over every combination."""

    old: PolicySet
    new: PolicySet
    pairs: tuple[RoutePair, ...]
    by_index: bool
    """Both sides have the same routes' ``when``s, so pairs are route i with route i."""

    @property
    def changed(self) -> tuple[RoutePair, ...]:
        return tuple(p for p in self.pairs if not p.same_policy)

    @property
    def relation(self) -> Relation:
        more = any(p.strictness.a_more_severe for p in self.pairs)
        less = any(p.strictness.a_less_severe for p in self.pairs)
        if more and less:
            return Relation.MIXED
        if more:
            return Relation.STRICTER
        return Relation.MORE_LENIENT if less else Relation.EQUAL

    @property
    def new_at_least_as_strict(self) -> bool:
        return not any(p.strictness.a_less_severe for p in self.pairs)


class _Compiler:
    def __init__(self, registry: DetectorRegistry | None) -> None:
        self.registry = registry
        self._compiled: dict[int, CompiledPolicy] = {}

    def __call__(self, policy: Policy) -> CompiledPolicy:
        found = self._compiled.get(id(policy))
        if found is None:
            found = self._compiled[id(policy)] = compile_policy(policy, self.registry)
        return found


def _when_key(policy_set: PolicySet) -> list[tuple[object, ...]]:
    return [
        (
            sorted((k, tuple(sorted(v))) for k, v in r.when.items()),
            None if r.content_types is None else tuple(sorted(r.content_type_keys)),
        )
        for r in policy_set.routes
    ]


def diff_sets(
    old_side: Policy | PolicySet,
    new_side: Policy | PolicySet,
    registry: DetectorRegistry | None = None,
) -> SetDiff:
    """Compare NEW with OLD over every combination of context and content-type outcome."""
    old, new = as_set(old_side), as_set(new_side)
    dimensions = joint_dimensions(old, new)
    routes = _routes(old, new)
    grouped: dict[tuple[int, int], list[Combination]] = {}
    for combination in combinations(dimensions, routes, {}):
        values, reported = combination
        routed_old = old.route_for(dict(values), reported)
        routed_new = new.route_for(dict(values), reported)
        if routed_old is None or routed_new is None:  # a loaded set is total
            raise SetComparisonError(f"no route for {describe(combination)}")
        grouped.setdefault((routed_old.index, routed_new.index), []).append(combination)
    compiled = _Compiler(registry)
    pairs = []
    for (i, j), found in sorted(grouped.items()):
        old_route, new_route = old.routes[i], new.routes[j]
        strictness = compare_policies(
            compiled(new_route.policy), compiled(old_route.policy), registry
        )
        same = old_route.policy.digest == new_route.policy.digest
        pairs.append(RoutePair(old_route, new_route, tuple(found), strictness, same))
    by_index = _when_key(old) == _when_key(new)
    return SetDiff(old, new, tuple(pairs), by_index)


# -- promises between contexts of one set ----------------------------------------------


@dataclass(frozen=True, slots=True)
class ContextComparison:
    """For one combination of the other dimensions: the policy routed for the
    ``stricter`` context compared with the one routed for ``than`` (``a`` is the first)."""

    combination: Combination
    stricter_route: Route
    than_route: Route
    strictness: Strictness


def _check_context(policy_set: PolicySet, context: Mapping[str, str]) -> None:
    dimensions = {d.name: d for d in policy_set.dimensions}
    for name, value in context.items():
        if name not in dimensions:
            raise SetComparisonError(
                f"context names {name!r}, not a dimension of {policy_set.name} "
                f"(dimensions: {', '.join(dimensions) or 'none'})"
            )
        if value not in dimensions[name].values:
            raise SetComparisonError(
                f"context {name}={value}: not one of {list(dimensions[name].values)}"
            )


def compare_contexts(
    policy_set: PolicySet,
    stricter: Mapping[str, str],
    than: Mapping[str, str],
    registry: DetectorRegistry | None = None,
) -> tuple[ContextComparison, ...]:
    """For every combination of the dimensions neither context fixes (and every
    content-type outcome): the policy routed for ``stricter`` compared with the
    one routed for ``than``. The promise holds when every comparison's
    ``a_at_least_as_strict``."""
    validate_contexts(policy_set, stricter, than)
    fixed = {**stricter, **than}
    compiled = _Compiler(registry)
    found = []
    for combination in combinations(policy_set.dimensions, policy_set.routes, fixed):
        values, reported = combination
        route_a = policy_set.route_for({**dict(values), **stricter}, reported)
        route_b = policy_set.route_for({**dict(values), **than}, reported)
        if route_a is None or route_b is None:
            raise SetComparisonError(f"no route for {describe(combination)}")
        strictness = compare_policies(compiled(route_a.policy), compiled(route_b.policy), registry)
        found.append(ContextComparison(combination, route_a, route_b, strictness))
    return tuple(found)


def validate_contexts(
    policy_set: PolicySet, stricter: Mapping[str, str], than: Mapping[str, str]
) -> None:
    """Raise :class:`SetComparisonError` unless both contexts name the same
    dimensions of the set, each with one of its values."""
    _check_context(policy_set, stricter)
    _check_context(policy_set, than)
    if set(stricter) != set(than):
        raise SetComparisonError(
            f"the two contexts name different dimensions ({', '.join(sorted(stricter))} "
            f"and {', '.join(sorted(than))}): name the same ones, every other is compared "
            "value by value"
        )


@dataclass(frozen=True, slots=True)
class ContextPromise:
    """A tests file's promise between two contexts of its policy set: for every
    combination of the other dimensions (and content-type outcome), the policy
    routed for ``stricter`` is at least as strict as the one routed for ``than``."""

    policy_set: PolicySet = field(compare=False)
    stricter: Mapping[str, str]
    than: Mapping[str, str]

    def describe(self) -> str:
        return (
            f"{_context_text(self.stricter)} is at least as strict as "
            f"{_context_text(self.than)} in every other context"
        )

    def check(self, registry: DetectorRegistry | None = None) -> tuple[ContextComparison, ...]:
        """Every comparison; the promise holds when none has an ``a_less_severe`` band."""
        return compare_contexts(self.policy_set, self.stricter, self.than, registry)

    def breaks(self, registry: DetectorRegistry | None = None) -> tuple[str, ...]:
        """One line per band where the promise breaks, naming the combination."""
        names = content_type_names(self.policy_set.routes)
        found: list[str] = []
        for comparison in self.check(registry):
            where = describe(comparison.combination, names)
            routes = (
                f"route {comparison.stricter_route.index} "
                f"({comparison.stricter_route.policy_file}) vs route "
                f"{comparison.than_route.index} ({comparison.than_route.policy_file})"
            )
            stricter, than = _context_text(self.stricter), _context_text(self.than)
            found.extend(
                f"{where}, {routes}: {band.describe(stricter, than)}"
                for band in comparison.strictness.a_less_severe
            )
        return tuple(found)


def _context_text(context: Mapping[str, str]) -> str:
    return ", ".join(f"{name}={value}" for name, value in context.items())
