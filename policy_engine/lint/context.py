"""What every lint check shares: the policy, where its nodes stand, and the
findings so far; and how findings are worded (names quoted, numbers plain)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from policy_engine.diagnostics import Diagnostic, error, warning
from policy_engine.model import Policy, Rule, plain_number
from policy_engine.names import name_key, nearest_name
from policy_engine.source import JsonPath, SourceMap

if TYPE_CHECKING:
    from policy_engine.plugins import DetectorRegistry

UNKNOWN_NAME = "unknown-name"
"""The code whose ignore comment acknowledges an unknown rule name or parent (section 7)."""


class LintContext:
    """The policy being linted and the findings about it."""

    def __init__(
        self,
        policy: Policy,
        source_map: SourceMap,
        registry: DetectorRegistry | None,
        data: Any,
        rule_indexes: tuple[int, ...],
        label_indexes: tuple[int, ...],
        acknowledged: Mapping[int, frozenset[str]],
        acknowledged_in: Mapping[str, Mapping[int, frozenset[str]]] | None = None,
    ) -> None:
        self.policy = policy
        self.acknowledged = acknowledged
        self.acknowledged_in = acknowledged_in or {}
        self.source_map = source_map
        self.file = source_map.file
        self.registry = registry
        self.data = data
        self.rule_indexes = rule_indexes
        self.label_indexes = label_indexes
        self.found: list[Diagnostic] = []

    def warn(self, code: str, message: str, path: JsonPath) -> None:
        self.found.append(warning(code, message, self.file, self.source_map.at(path)))

    def fail(self, code: str, message: str, path: JsonPath) -> None:
        self.found.append(error(code, message, self.file, self.source_map.at(path)))

    def rule_path(self, position: int) -> JsonPath:
        return ("rules", self.rule_indexes[position])

    @cached_property
    def _positions(self) -> dict[int, int]:
        return {id(rule): position for position, rule in enumerate(self.policy.rules)}

    def path_of_rule(self, rule: Rule) -> JsonPath:
        """Where ``rule`` (one of the policy's, by identity) stands."""
        return self.rule_path(self._positions[id(rule)])

    @cached_property
    def placements(self) -> frozenset[tuple[str, str]]:
        """(name key, parent key) of every ``labels:`` entry."""
        return frozenset((name_key(d.name), name_key(d.parent)) for d in self.policy.labels)

    def written(self, path: JsonPath, fallback: str) -> str:
        """The string at ``path`` in the parsed document, as written."""
        value = self.data
        for part in path:
            if isinstance(value, dict):
                if not isinstance(part, str) or part not in value:
                    return fallback
            elif not isinstance(value, list) or not isinstance(part, int) or part >= len(value):
                return fallback
            value = value[part]
        return value if isinstance(value, str) else fallback

    def is_acknowledged(self, path: JsonPath, code: str) -> bool:
        """Whether the line of the node at ``path`` carries ``# policy-engine:
        ignore[unknown-name]`` (or the code itself): a name the service has but
        the taxonomy data lacks."""
        at = self.source_map.at(path)
        # in the file where the node is written (a base's, for a policy that extends it)
        table = self.acknowledged_in.get(at.file or self.file, self.acknowledged)
        codes = table.get(at.line, frozenset())
        return UNKNOWN_NAME in codes or code in codes


def nearest_hint(
    key: str,
    spellings: Sequence[str],
    *,
    cutoff: float,
    otherwise: str = "fix the spelling, or place it under labels:",
) -> str:
    """``did you mean 'X'?`` for the known spelling nearest to ``key``; with a cutoff
    of 0, the nearest whatever its distance; else ``otherwise``."""
    nearest = nearest_name(key, spellings, cutoff=max(cutoff, 0.6))
    if nearest is not None:
        return f"did you mean '{nearest}'?"
    if cutoff <= 0:
        nearest = nearest_name(key, spellings, cutoff=0.0)
        if nearest is not None:
            return f"the nearest known name is '{nearest}'"
    return otherwise


def quoted(names: Iterable[str]) -> str:
    """``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``."""
    items = [f"'{n}'" for n in names]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def examples(names: Iterable[str]) -> str:
    """The first three of ``names`` (sorted, each once), quoted, ``...`` for more."""
    distinct = sorted(set(names))
    return quoted(distinct[:3]) + (", ..." if len(distinct) > 3 else "")


def number(value: float) -> str:
    return f"{plain_number(value)}"
