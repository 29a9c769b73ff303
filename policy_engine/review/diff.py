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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
    metadata: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)
    """Each detector's metadata (model version, content types), for a decision record."""


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
class CorpusCounts:
    """How many items a corpus holds and how many decisions move where."""

    total: int
    matrix: tuple[tuple[int, int, int], ...]
    """``matrix[old][new]``: items the old policy decides ``VERDICTS[old]`` and the new
    ``VERDICTS[new]``."""

    @property
    def changed(self) -> int:
        return sum(self.matrix[i][j] for i in range(3) for j in range(3) if i != j)

    def transitions(self) -> tuple[tuple[Verdict, Verdict, int], ...]:
        """(old, new, count) for every pair that changes, in severity order."""
        return tuple(
            (VERDICTS[i], VERDICTS[j], self.matrix[i][j])
            for i in range(3)
            for j in range(3)
            if i != j and self.matrix[i][j]
        )

    def to_dict(self, changes: list[Any]) -> dict[str, Any]:
        """The JSON ``corpus`` field, with ``changes`` as its list of changed items."""
        return {
            "items": self.total,
            "changed": self.changed,
            "matrix": {
                VERDICTS[i].value: {VERDICTS[j].value: self.matrix[i][j] for j in range(3)}
                for i in range(3)
            },
            "changes": changes,
        }


class CorpusTally:
    """Counts kept while a corpus streams past: the items and the verdict matrix."""

    def __init__(self) -> None:
        self.total = 0
        self.cells = [0] * 9

    def add(self, cells: list[int]) -> None:
        """Adds the counts of a part of the corpus (``cells[3 * old + new]``)."""
        for index, count in enumerate(cells):
            self.cells[index] += count
        self.total += sum(cells)

    def add_cell(self, cell: int) -> None:
        """Adds one item in ``cell`` (``3 * old + new``)."""
        self.cells[cell] += 1
        self.total += 1

    def counts(self) -> CorpusCounts:
        c = self.cells
        return CorpusCounts(
            self.total, ((c[0], c[1], c[2]), (c[3], c[4], c[5]), (c[6], c[7], c[8]))
        )


def change_dict(change: ItemChange) -> dict[str, Any]:
    """One changed item as the JSON ``corpus.changes`` lists it."""
    return {
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


def decide_item(
    old: CompiledPolicy, new: CompiledPolicy, item: CorpusItem
) -> tuple[int, ItemChange | None]:
    """The item's cell of the verdict matrix (``3 * old + new``), and its change if any."""
    before = old.evaluate(item.labels, item.failures)
    after = new.evaluate(item.labels, item.failures)
    cell = 3 * before.verdict.severity + after.verdict.severity
    if before.verdict is after.verdict:
        return cell, None
    return cell, ItemChange(item.name, before, after)


@dataclass(frozen=True, slots=True)
class CorpusDiff:
    """Every item decided under both policies: how many decisions move where, and which."""

    total: int
    matrix: tuple[tuple[int, int, int], ...]
    """``matrix[old][new]``: items the old policy decides ``VERDICTS[old]`` and the new
    ``VERDICTS[new]``."""
    changes: tuple[ItemChange, ...]

    @property
    def counts(self) -> CorpusCounts:
        return CorpusCounts(self.total, self.matrix)

    @property
    def changed(self) -> int:
        return len(self.changes)

    def transitions(self) -> tuple[tuple[Verdict, Verdict, int], ...]:
        """(old, new, count) for every pair that changes, in severity order."""
        return self.counts.transitions()

    def to_dict(self) -> dict[str, Any]:
        return self.counts.to_dict([change_dict(change) for change in self.changes])


def corpus_diff(
    old: CompiledPolicy, new: CompiledPolicy, items: Iterable[CorpusItem]
) -> CorpusDiff:
    """Decide every item under ``old`` and ``new``; count and list the changes."""
    tally = CorpusTally()
    changes: list[ItemChange] = []
    for item in items:
        cell, change = decide_item(old, new, item)
        tally.add_cell(cell)
        if change is not None:
            changes.append(change)
    counts = tally.counts()
    return CorpusDiff(counts.total, counts.matrix, tuple(changes))
