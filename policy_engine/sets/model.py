"""The policy set model: context dimensions, routes and the set itself
(POLICY_SPEC section 10), with context resolution and routing by route order."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from policy_engine.diagnostics import Position
from policy_engine.errors import ContextError
from policy_engine.model import Policy, plain_number
from policy_engine.names import name_key

CONTENT_TYPE = "content_type"
"""The reserved ``when`` condition on the image; never a dimension name."""

DEFAULT_CONTENT_TYPES_AT = 50.0

MAX_COMBINATIONS = 1 << 16
"""Most combinations (of value classes and content-type subsets) checked at load."""


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
        free = sorted(content_type_classes(self.mentioned_content_types() - reported, self.routes))
        found: dict[int, Route] = {}
        for size in range(len(free) + 1):
            for extra in itertools.combinations(free, size):
                route = self.route_for(values, reported | frozenset(extra))
                if route is not None:
                    found.setdefault(route.index, route)
        return tuple(found[i] for i in sorted(found))


def content_type_classes(names: Iterable[str], routes: Sequence[Route]) -> frozenset[str]:
    """One representative content-type name per class of names every route's
    condition treats alike (each route either names all of them or none)."""
    by_signature: dict[tuple[bool, ...], str] = {}
    for key in sorted(names):
        signature = tuple(key in r.content_type_keys for r in routes if r.content_types)
        by_signature.setdefault(signature, key)
    return frozenset(by_signature.values())
