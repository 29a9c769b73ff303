"""An object's context under a policy set (POLICY_SPEC section 10), from its
user metadata and its key.

``CONTEXT_FROM_METADATA``
    Take a dimension's value from the object's user metadata
    ``x-amz-meta-<dimension>`` (S3 keeps metadata names lower-case, so a
    dimension is matched by its name lower-cased) (default ``true``). Whoever
    uploads sets the metadata: set ``false`` where uploaders may choose it
    (an upload URL that does not sign ``x-amz-meta-*`` headers), and only the
    key prefix (which the platform chooses) says.
``CONTEXT_PREFIXES``
    A JSON object from key prefixes (each ending with ``/``) to the dimension
    values every object under it has:
    ``{"uploads/profile/": {"surface": "profile"}, "teen/chat/": {"surface":
    "chat", "audience": "teen"}}``. The longest prefix of the key gives the
    values, alone (a shorter one that also matches adds nothing).

Both only make sense with a policy set: with a single policy,
``CONTEXT_PREFIXES`` is a :class:`~policy_engine_lambda.config.ConfigError`
(``CONTEXT_FROM_METADATA`` has nothing to do and is ignored). Checked when
the function starts: a prefix not ending with ``/``, an unknown dimension or
a value not in the dimension's list is a ``ConfigError``.

**Never routed by guess.** For each dimension the metadata and the prefix
each may give a value. Both the same, or only one: that value. Neither: the
dimension's default. The object's context is **undetermined** (see
:mod:`policy_engine_lambda.undetermined`) when a dimension has no value and
no default, when the metadata gives a value not in the dimension's list, or
when metadata and prefix give different values: a disagreement is never
settled by precedence.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from policy_engine.policy_set import PolicySet
from policy_engine_lambda.config import ConfigError, flag

METADATA_PREFIX = "x-amz-meta-"
DEFAULT_SOURCE = "default"
MAX_TAG_VALUE = 256
"""S3's limit on a tag value."""
MAX_SHOWN_VALUE = 64
"""The most characters of an unknown metadata value a message quotes."""


def _metadata_source(dimension: str) -> str:
    return METADATA_PREFIX + dimension.lower()


def _prefix_source(prefix: str) -> str:
    return f"CONTEXT_PREFIXES {prefix!r}"


def _shown(value: str) -> str:
    if len(value) <= MAX_SHOWN_VALUE:
        return repr(value)
    return repr(value[:MAX_SHOWN_VALUE]) + f"... ({len(value)} characters)"


@dataclass(frozen=True, slots=True)
class PrefixContext:
    """The dimension values of every object under ``prefix``."""

    prefix: str
    values: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ContextSettings:
    """Where an object's context comes from (the module's table)."""

    from_metadata: bool = True
    prefixes: tuple[PrefixContext, ...] = ()
    """Longest first: the first that the key starts with gives its values."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ContextSettings:
        """``CONTEXT_FROM_METADATA`` and ``CONTEXT_PREFIXES``, their form checked
        (their meaning needs the set: :meth:`check_against`)."""
        raw_flag = environ.get("CONTEXT_FROM_METADATA", "").strip()
        from_metadata = flag("CONTEXT_FROM_METADATA", raw_flag) if raw_flag else True
        return cls(from_metadata, _parse_prefixes(environ.get("CONTEXT_PREFIXES", "")))

    def check_against(self, policy_set: PolicySet | None, reserved: Collection[str] = ()) -> None:
        """Raise :class:`ConfigError` for settings that make no sense with what
        the function serves: prefixes with a single policy, or naming an
        unknown dimension or value; a dimension named like one of the
        ``reserved`` context keys the function gives the audit trail; with
        metadata on, two dimensions that metadata names cannot tell apart."""
        if policy_set is None:
            if self.prefixes:
                raise ConfigError(
                    "CONTEXT_PREFIXES is set but POLICY_FILE is a single policy, which "
                    "has no context: serve a policy set (kind: policy-set), or unset it"
                )
            return
        dimensions = {d.name: d for d in policy_set.dimensions}
        clashing = sorted(set(dimensions) & set(reserved))
        if clashing:
            raise ConfigError(
                f"policy set {policy_set.name!r}: dimension {clashing[0]!r} has the name of "
                f"a context key the function gives the audit trail ({', '.join(reserved)}): "
                "rename the dimension"
            )
        if self.from_metadata:
            by_header: dict[str, str] = {}
            for name in dimensions:
                other = by_header.setdefault(name.lower(), name)
                if other != name:
                    raise ConfigError(
                        f"policy set {policy_set.name!r}: dimensions {other!r} and {name!r} "
                        f"are both {_metadata_source(name)} (S3 metadata names are "
                        "lower-case): rename one, or set CONTEXT_FROM_METADATA=false"
                    )
        for rule in self.prefixes:
            for name, value in rule.values.items():
                where = f"CONTEXT_PREFIXES {rule.prefix!r}"
                dimension = dimensions.get(name)
                if dimension is None:
                    known = ", ".join(dimensions) or "none"
                    raise ConfigError(
                        f"{where}: {name!r} is no dimension of policy set "
                        f"{policy_set.name!r} (its dimensions: {known})"
                    )
                if value not in dimension.values:
                    raise ConfigError(
                        f"{where}: {value!r} is not a value of dimension {name!r} "
                        f"(one of: {', '.join(dimension.values)})"
                    )

    def prefix_for(self, key: str) -> PrefixContext | None:
        """The longest configured prefix of ``key``."""
        return next((rule for rule in self.prefixes if key.startswith(rule.prefix)), None)


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise ConfigError(f"CONTEXT_PREFIXES: {name!r} is given twice")
        found[name] = value
    return found


def _parse_prefixes(text: str) -> tuple[PrefixContext, ...]:
    if not text.strip():
        return ()
    try:
        data = json.loads(text, object_pairs_hook=_unique_object)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"CONTEXT_PREFIXES is not JSON: {exc}") from None
    example = '{"uploads/profile/": {"surface": "profile"}}'
    if not isinstance(data, dict):
        raise ConfigError(f"CONTEXT_PREFIXES must be a JSON object such as {example}")
    found: list[PrefixContext] = []
    for prefix, values in data.items():
        if not prefix or not prefix.endswith("/"):
            raise ConfigError(f"CONTEXT_PREFIXES: {prefix!r}: a prefix must end with '/'")
        if (
            not isinstance(values, dict)
            or not values
            or not all(isinstance(v, str) for v in values.values())
        ):
            raise ConfigError(
                f"CONTEXT_PREFIXES {prefix!r}: expected an object of dimension values "
                f'such as {{"surface": "profile"}}'
            )
        found.append(PrefixContext(prefix, MappingProxyType(dict(values))))
    return tuple(sorted(found, key=lambda rule: len(rule.prefix), reverse=True))


@dataclass(frozen=True, slots=True)
class ObjectContext:
    """What an object's metadata and key say of its context under a set.

    ``values``: the dimensions determined, defaults included; ``sources``:
    where each value came from (``x-amz-meta-<dimension>``, ``CONTEXT_PREFIXES
    '<prefix>'``, both, or ``default``); ``problems``: for each undetermined
    dimension, why (empty: the context is determined)."""

    values: Mapping[str, str]
    sources: Mapping[str, tuple[str, ...]]
    problems: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def determined(self) -> bool:
        return not self.problems

    def given(self) -> dict[str, str]:
        """The values the object's metadata and key gave (not defaults): what the
        engine is asked to route by (it applies the defaults itself)."""
        return {
            name: value
            for name, value in self.values.items()
            if self.sources.get(name) != (DEFAULT_SOURCE,)
        }

    def describe_problems(self) -> str:
        return "; ".join(self.problems.values())

    def tag_value(self, policy_set: PolicySet) -> str:
        """The context a decision was made in, for the ``moderation-context``
        tag: ``surface=profile audience=adult``, an undetermined dimension as
        ``surface:undetermined`` (in the set's dimension order); ``sha256:<hex>``
        of that when it is longer than a tag value may be."""
        text = " ".join(
            f"{d.name}={self.values[d.name]}" if d.name in self.values else f"{d.name}:undetermined"
            for d in policy_set.dimensions
        )
        if len(text) <= MAX_TAG_VALUE:
            return text
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()

    def sources_data(self) -> dict[str, list[str]]:
        """``sources`` as the decision record shows it."""
        return {name: list(found) for name, found in self.sources.items()}


def object_context(
    settings: ContextSettings, policy_set: PolicySet, key: str, metadata: Mapping[str, str]
) -> ObjectContext:
    """The context of the object ``key`` with user ``metadata`` (names as S3
    gives them, without ``x-amz-meta-``), under ``policy_set``."""
    lowered = {name.lower(): value for name, value in metadata.items()}
    rule = settings.prefix_for(key)
    values: dict[str, str] = {}
    sources: dict[str, tuple[str, ...]] = {}
    problems: dict[str, str] = {}
    for dimension in policy_set.dimensions:
        name = dimension.name
        header = _metadata_source(name)
        from_metadata = lowered.get(name.lower()) if settings.from_metadata else None
        from_prefix = rule.values.get(name) if rule is not None else None
        if from_metadata is not None and from_metadata not in dimension.values:
            problems[name] = (
                f"dimension {name!r}: {header} is {_shown(from_metadata)}, not one of its "
                f"values ({', '.join(dimension.values)})"
            )
        elif from_metadata is not None and from_prefix is not None and from_metadata != from_prefix:
            assert rule is not None
            problems[name] = (
                f"dimension {name!r}: {header} says {from_metadata!r} but "
                f"{_prefix_source(rule.prefix)} says {from_prefix!r}"
            )
        elif from_metadata is not None or from_prefix is not None:
            values[name] = from_metadata if from_metadata is not None else str(from_prefix)
            found = ((header,) if from_metadata is not None else ()) + (
                (_prefix_source(rule.prefix),) if rule is not None and from_prefix else ()
            )
            sources[name] = found
        elif dimension.default is not None:
            values[name] = dimension.default
            sources[name] = (DEFAULT_SOURCE,)
        else:
            searched = ([header] if settings.from_metadata else []) + (
                ["a CONTEXT_PREFIXES prefix of the key"] if settings.prefixes else []
            )
            where = " or ".join(searched) or "nothing: metadata is off and no prefixes are set"
            problems[name] = (
                f"dimension {name!r} has no value (none from {where}) and no default "
                f"(one of: {', '.join(dimension.values)})"
            )
    return ObjectContext(
        MappingProxyType(values), MappingProxyType(sources), MappingProxyType(problems)
    )
