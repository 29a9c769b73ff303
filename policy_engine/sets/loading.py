"""Loading a policy set file: its routed policies through the policy loader
(:func:`~policy_engine.loader.check_policy_file`, each file read once per set
load, however many routes name it), then its totality checked."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from policy_engine.diagnostics import (
    Diagnosed,
    Diagnostic,
    Position,
    Severity,
    error,
    sort_diagnostics,
    warning,
)
from policy_engine.errors import PolicySetLoadError, SourceError
from policy_engine.json_types import plain
from policy_engine.names import tidy_name
from policy_engine.sets.model import (
    CONTENT_TYPE,
    DEFAULT_CONTENT_TYPES_AT,
    MAX_COMBINATIONS,
    Dimension,
    PolicySet,
    Route,
)
from policy_engine.sets.totality import analyse_routes, combination_count, describe_combination
from policy_engine.source import (
    JsonPath,
    SourceMap,
    decimal_version,
    parse_document,
    read_policy_text,
)

if TYPE_CHECKING:
    from policy_engine.loader import LoadResult
    from policy_engine.plugins import DetectorRegistry

_KIND_LINE = re.compile(r"^kind\s*:\s*['\"]?policy-set['\"]?\s*(#.*)?$", re.MULTILINE)


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


def check_policy_or_set_file(
    path: str | os.PathLike[str], *, registry: DetectorRegistry | None = None
) -> LoadResult | PolicySetLoadResult:
    """Load the policy or the policy set at ``path``, whichever it is, reading the
    file once (:func:`is_policy_set_file` and then a load would read it twice)."""
    from policy_engine.loader import PolicyFileCache, check_policy_file

    file_path = Path(path)
    try:
        text = read_policy_text(file_path)
    except (OSError, SourceError):  # the policy loader reports why, as it always has
        return check_policy_file(file_path, registry=registry)
    if is_policy_set_text(text):
        return check_policy_set_text(
            text, str(path), registry=registry, base_dir=str(file_path.resolve().parent)
        )
    files = PolicyFileCache()
    files.read_already(file_path, text)
    return check_policy_file(file_path, registry=registry, cache=files)


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
    diagnostics.extend(decimal_version(data, source_map))
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
    from policy_engine.loader import PolicyFileCache, check_policy_file, resolved_path

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
        policy_path = resolved_path(base_dir / written)
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
