"""What changes between two policies: exactly, label by label and band by band.

Both policies' decision tables (:mod:`policy_engine.review.table`) are compared over
the union of the labels they list. For each label, the cut points of both
band lists are merged; between two neighbouring cuts neither policy changes
its verdict, so one look at each piece is exact. Pieces where the verdicts
differ are merged into :class:`ChangedRange` values such as
``[80, 90) review -> block``. A verdict of ``None`` means the label is dropped
(below ``min_confidence``).

A corpus of recorded detector results makes the change concrete: every item
is decided under both policies (:func:`corpus_diff`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from policy_engine.compiler import CompiledPolicy
from policy_engine.decision import Decision, DetectorFailure
from policy_engine.labels import Label
from policy_engine.model import Verdict, plain_number
from policy_engine.review.table import (
    MAX_CONFIDENCE,
    Band,
    DecisionTable,
    TableRow,
    decision_table,
    find_taxonomy,
    reported_parent,
    table_row,
    verdict_at,
)

if TYPE_CHECKING:
    from policy_engine.plugins import DetectorRegistry

DROPPED = "dropped"
"""How a range where a label gets no verdict (below ``min_confidence``) is shown."""


def verdict_name(verdict: Verdict | None) -> str:
    return DROPPED if verdict is None else verdict.value


@dataclass(frozen=True, slots=True)
class ChangedRange:
    """Confidences from ``low`` to ``high`` (``high`` included when ``closed``) where
    the old policy's verdict is ``old`` and the new one's ``new``."""

    low: float
    high: float
    closed: bool
    old: Verdict | None
    new: Verdict | None

    def contains(self, confidence: float) -> bool:
        return self.low <= confidence < self.high or (self.closed and confidence == self.high)

    def describe_range(self) -> str:
        return Band(self.low, self.high, Verdict.ALLOW, self.closed).describe()

    def describe(self) -> str:
        return f"{self.describe_range()} {verdict_name(self.old)} -> {verdict_name(self.new)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": plain_number(self.low),
            "to": plain_number(self.high),
            "to_included": self.closed,
            "old": None if self.old is None else self.old.value,
            "new": None if self.new is None else self.new.value,
        }


def changed_ranges(old: Sequence[Band], new: Sequence[Band]) -> tuple[ChangedRange, ...]:
    """Every confidence range where ``old`` and ``new`` give different verdicts, exactly.

    The cut points of both band lists split [lowest floor, 100] into pieces on which
    neither list changes its verdict; pieces with the same pair of verdicts are merged.
    """
    lows = {band.low for band in (*old, *new)}
    if not lows:
        return ()
    cuts = sorted(lows | {MAX_CONFIDENCE})
    # half-open pieces between cuts, then the single point 100
    pieces = [(low, high, False) for low, high in pairwise(cuts)]
    pieces.append((MAX_CONFIDENCE, MAX_CONFIDENCE, True))
    merged: list[ChangedRange] = []
    for low, high, closed in pieces:
        pair = (verdict_at(old, low), verdict_at(new, low))
        last = merged[-1] if merged else None
        if last is not None and (last.old, last.new) == pair and last.high == low:
            merged[-1] = ChangedRange(last.low, high, closed, *pair)
        else:
            merged.append(ChangedRange(low, high, closed, *pair))
    return tuple(r for r in merged if r.old is not r.new)


@dataclass(frozen=True, slots=True)
class RowChange:
    """One label that the two policies decide differently, or by differently named rules.

    ``listed`` says which tables list the label: ``both``, ``old`` (only the old
    policy's: removed) or ``new`` (added); the other policy still decides it, as
    any detector reporting it would see.
    """

    source: str
    taxonomy: str
    label: str
    parent: str
    old_rule: str
    new_rule: str
    ranges: tuple[ChangedRange, ...]
    listed: str = "both"

    @property
    def decides_differently(self) -> bool:
        return bool(self.ranges)

    @property
    def rule_changed(self) -> bool:
        return self.old_rule != self.new_rule

    def rule_text(self) -> str:
        if self.rule_changed:
            return f"rule {self.old_rule} -> {self.new_rule}"
        return f"rule {self.new_rule}"

    def describe(self) -> str:
        """``Weapon Violence: [80, 90) review -> block (rule weapons)``."""
        ranges = ", ".join(r.describe() for r in self.ranges) or "same verdicts"
        return f"{self.label}: {ranges} ({self.rule_text()})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "taxonomy": self.taxonomy,
            "label": self.label,
            "parent": self.parent,
            "listed": self.listed,
            "old_rule": self.old_rule,
            "new_rule": self.new_rule,
            "changes": [r.to_dict() for r in self.ranges],
        }


def _row_change(old: TableRow, new: TableRow, listed: str) -> RowChange | None:
    ranges = changed_ranges(old.bands, new.bands)
    if not ranges and old.rule == new.rule and listed == "both":
        return None
    return RowChange(
        new.source,
        new.taxonomy,
        new.label if listed != "old" else old.label,
        new.parent if listed != "old" else old.parent,
        old.rule,
        new.rule,
        ranges,
        listed,
    )


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    """The exact semantic difference of two policies (no data needed)."""

    old: DecisionTable
    new: DecisionTable
    rows: tuple[RowChange, ...]
    default: RowChange | None
    old_on_error: Verdict
    new_on_error: Verdict

    @property
    def changed(self) -> tuple[RowChange, ...]:
        """Labels with at least one confidence range whose verdict changes."""
        return tuple(r for r in self.rows if r.decides_differently)

    @property
    def rule_only(self) -> tuple[RowChange, ...]:
        """Labels now decided by another rule, with the same verdict at every confidence."""
        return tuple(r for r in self.rows if not r.decides_differently and r.rule_changed)

    @property
    def listed_only(self) -> tuple[RowChange, ...]:
        """Labels one table lists and the other does not, decided the same by both."""
        return tuple(
            r
            for r in self.rows
            if not r.decides_differently and not r.rule_changed and r.listed != "both"
        )

    @property
    def on_error_changed(self) -> bool:
        return self.old_on_error is not self.new_on_error

    @property
    def decisions_change(self) -> bool:
        """Whether any decision can differ: a label's verdict, the default's, or on_error's."""
        return bool(
            self.changed
            or (self.default is not None and self.default.decides_differently)
            or self.on_error_changed
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": {"name": self.old.policy_name, "digest": self.old.policy_digest},
            "new": {"name": self.new.policy_name, "digest": self.new.policy_digest},
            "decisions_change": self.decisions_change,
            "min_confidence": {
                "old": plain_number(self.old.min_confidence),
                "new": plain_number(self.new.min_confidence),
            },
            "on_error": {"old": self.old_on_error.value, "new": self.new_on_error.value},
            "changed": [r.to_dict() for r in self.changed],
            "rule_only": [r.to_dict() for r in self.rule_only],
            "listed_only": [r.to_dict() for r in self.listed_only],
            "default": None if self.default is None else self.default.to_dict(),
        }


def _other_row(
    compiled: CompiledPolicy, registry: DetectorRegistry | None, row: TableRow
) -> TableRow:
    """How ``compiled`` decides the label of ``row`` (a row of the other policy's table)."""
    taxonomy = find_taxonomy(registry, row.source, row.taxonomy)
    key = taxonomy.canonical_key(row.label) if taxonomy is not None else ""
    return table_row(compiled, row.source, taxonomy, row.label, reported_parent(taxonomy, key))


def diff_policies(
    old: CompiledPolicy,
    new: CompiledPolicy,
    registry: DetectorRegistry | None = None,
    *,
    all_taxonomies: bool = False,
) -> PolicyDiff:
    """The exact difference of ``old`` and ``new`` over the labels either table lists."""
    old_table = decision_table(old, registry, all_taxonomies=all_taxonomies)
    new_table = decision_table(new, registry, all_taxonomies=all_taxonomies)
    old_rows = {row.key: row for row in old_table.rows}
    new_rows = {row.key: row for row in new_table.rows}
    changes: list[RowChange] = []
    for key in sorted(old_rows.keys() | new_rows.keys()):
        old_row, new_row = old_rows.get(key), new_rows.get(key)
        if old_row is not None and new_row is not None:
            change = _row_change(old_row, new_row, "both")
        elif new_row is not None:
            change = _row_change(_other_row(old, registry, new_row), new_row, "new")
        else:
            assert old_row is not None
            change = _row_change(old_row, _other_row(new, registry, old_row), "old")
        if change is not None:
            changes.append(change)
    default = _row_change(old_table.default_row, new_table.default_row, "both")
    return PolicyDiff(
        old_table,
        new_table,
        tuple(changes),
        default,
        old.policy.on_error,
        new.policy.on_error,
    )


# -- a corpus -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CorpusItem:
    """One image's recorded detector output: its labels and detector failures."""

    name: str
    labels: tuple[Label, ...]
    failures: tuple[DetectorFailure, ...] = ()


@dataclass(frozen=True, slots=True)
class ItemChange:
    item: str
    old: Decision
    new: Decision


def reasons_text(decision: Decision) -> str:
    """A decision in one line: ``block: Weapon Violence 97.3 >= 90 [rule weapons]; ...``."""
    parts = [reason.describe(compact=True) for reason in decision.reasons()]
    return f"{decision.verdict.value}" + (": " + "; ".join(parts) if parts else "")


VERDICTS = (Verdict.ALLOW, Verdict.REVIEW, Verdict.BLOCK)


@dataclass(frozen=True, slots=True)
class CorpusDiff:
    """Every item decided under both policies: how many decisions move where, and which."""

    total: int
    matrix: tuple[tuple[int, int, int], ...]
    """``matrix[old][new]``: items the old policy decides ``VERDICTS[old]`` and the new
    ``VERDICTS[new]``."""
    changes: tuple[ItemChange, ...]

    @property
    def changed(self) -> int:
        return len(self.changes)

    def transitions(self) -> tuple[tuple[Verdict, Verdict, int], ...]:
        """(old, new, count) for every pair that changes, in severity order."""
        return tuple(
            (VERDICTS[i], VERDICTS[j], self.matrix[i][j])
            for i in range(3)
            for j in range(3)
            if i != j and self.matrix[i][j]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": self.total,
            "changed": self.changed,
            "matrix": {
                VERDICTS[i].value: {VERDICTS[j].value: self.matrix[i][j] for j in range(3)}
                for i in range(3)
            },
            "changes": [
                {
                    "item": change.item,
                    "old": {
                        "decision": change.old.verdict.value,
                        "reasons": [r.to_dict() for r in change.old.reasons()],
                    },
                    "new": {
                        "decision": change.new.verdict.value,
                        "reasons": [r.to_dict() for r in change.new.reasons()],
                    },
                }
                for change in self.changes
            ],
        }


def corpus_diff(
    old: CompiledPolicy, new: CompiledPolicy, items: Iterable[CorpusItem]
) -> CorpusDiff:
    """Decide every item under ``old`` and ``new``; count and list the changes."""
    matrix = [[0, 0, 0] for _ in VERDICTS]
    changes: list[ItemChange] = []
    total = 0
    for item in items:
        total += 1
        before = old.evaluate(item.labels, item.failures)
        after = new.evaluate(item.labels, item.failures)
        matrix[before.verdict.severity][after.verdict.severity] += 1
        if before.verdict is not after.verdict:
            changes.append(ItemChange(item.name, before, after))
    return CorpusDiff(total, tuple((row[0], row[1], row[2]) for row in matrix), tuple(changes))
