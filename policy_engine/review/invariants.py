"""Invariants: promises a policy makes, checked exactly over its decision table.

A *selector* invariant names labels (``category: Explicit`` for the label and
everything under it, or ``label: Weapon Violence`` for one label), optionally
one detector (``source:``), and a range of confidences (``at_least``, default
the policy's ``min_confidence``, up to 100 inclusive). It states conditions
on the verdict every such label gets at every such confidence:

- ``never: V`` (or a list): no confidence in the range gets V;
- ``always: V``: every confidence in the range gets exactly V;
- ``min_verdict: V``: every confidence gets V or a more severe verdict;
- ``max_verdict: V``: every confidence gets V or a less severe verdict.

Several conditions in one invariant must all hold. The check walks the exact
decision table (:mod:`policy_engine.review.table`), band by band, so nothing is
sampled: a band that reaches into the range and breaks a condition is a
counterexample, reported at its lowest confidence in the range. A confidence
below ``min_confidence`` (when ``at_least`` is lower) drops the label, which
then counts as ``allow``.

A category invariant also covers a label nobody knows yet, reported directly
under the category by a detector whose taxonomy knows the category (the
service adds labels over time): it is decided like any other label, through
the policy's rules, and checked the same way.

A *label-set* invariant evaluates one set of labels (``labels:``) exactly and
states the decision's bounds (``min_decision``, ``max_decision``).

``taxonomies: all`` checks every taxonomy each detector has (older models'
too), not only the current one.

A *strictness* invariant (``at_least_as_strict_as: other.yaml``) promises that
the policy is at least as strict as another (POLICY_SPEC section 11, decided by
:mod:`policy_engine.review.strictness` over every label, confidence, taxonomy and
detector failure); a broken one lists the bands where it is more lenient.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policy_engine.compiler import CompiledPolicy
from policy_engine.diagnostics import Position
from policy_engine.labels import Label
from policy_engine.model import Verdict, plain_number
from policy_engine.names import name_key, tidy_name
from policy_engine.review.set_strictness import ContextPromise
from policy_engine.review.strictness import Strictness, StrictnessPromise
from policy_engine.review.table import (
    POLICY_LABELS,
    Band,
    DecisionTable,
    TableRow,
    decision_table,
    source_taxonomies,
    synthetic_name,
    table_row,
    table_sources,
)
from policy_engine.taxonomy import Taxonomy

if TYPE_CHECKING:
    from policy_engine.plugins import DetectorRegistry

MAX_COUNTEREXAMPLES = 10
"""At most this many counterexamples are kept per invariant (the total is counted)."""

DROPPED_RULE = "min_confidence"
"""The "rule" of a counterexample below the floor: the label is dropped."""


@dataclass(frozen=True, slots=True)
class Requirement:
    """One condition on verdicts: ``never``, ``always``, ``min_verdict`` or ``max_verdict``."""

    kind: str
    verdicts: frozenset[Verdict]

    def holds(self, verdict: Verdict) -> bool:
        if self.kind == "never":
            return verdict not in self.verdicts
        (wanted,) = self.verdicts
        if self.kind == "always":
            return verdict is wanted
        if self.kind == "min_verdict":
            return verdict.severity >= wanted.severity
        return verdict.severity <= wanted.severity

    def describe(self) -> str:
        ordered = sorted(self.verdicts, key=lambda v: v.severity)
        return f"{self.kind} {' or '.join(v.value for v in ordered)}"


REQUIREMENT_KINDS = ("never", "always", "min_verdict", "max_verdict")


@dataclass(frozen=True, slots=True)
class Invariant:
    """A promise about a policy (see the module's docstring)."""

    category: str | None = None
    label: str | None = None
    source: str | None = None
    at_least: float | None = None
    requirements: tuple[Requirement, ...] = ()
    labels: tuple[Label, ...] = ()
    min_decision: Verdict | None = None
    max_decision: Verdict | None = None
    taxonomies_all: bool | None = None
    """None: as the tests file says (default: each detector's current taxonomy)."""
    name: str | None = None
    position: Position = field(default_factory=Position, compare=False)
    strictness: StrictnessPromise | None = None
    """The strictness form: two policies, the first at least as strict as the second."""
    contexts: ContextPromise | None = None
    """The context strictness form: two contexts of a policy set."""

    @property
    def is_label_set(self) -> bool:
        return (
            self.category is None
            and self.label is None
            and self.strictness is None
            and self.contexts is None
        )

    def describe(self) -> str:
        """The invariant in one line, as it is shown in reports."""
        if self.name:
            return self.name
        if self.strictness is not None:
            return self.strictness.describe()
        if self.contexts is not None:
            return self.contexts.describe()
        if self.is_label_set:
            shown = ", ".join(
                f"{label.name} {plain_number(label.confidence)}" for label in self.labels
            )
            bounds = []
            if self.min_decision is not None:
                bounds.append(f"at least {self.min_decision.value}")
            if self.max_decision is not None:
                bounds.append(f"at most {self.max_decision.value}")
            return f"labels [{shown}]: decision {' and '.join(bounds)}"
        what = f"category {self.category}" if self.category else f"label {self.label}"
        if self.source:
            what += f" from {self.source}"
        start = "" if self.at_least is None else f" at {plain_number(self.at_least)}+"
        conditions = ", ".join(r.describe() for r in self.requirements)
        return f"{what}{start}: {conditions}"

    @classmethod
    def from_data(
        cls,
        data: dict[str, Any],
        position: Position | None = None,
        labels: tuple[Label, ...] = (),
        strictness: StrictnessPromise | None = None,
        contexts: ContextPromise | None = None,
    ) -> Invariant:
        """Build from a tests file's invariant (already valid against its schema);
        ``labels`` are its ``labels:``, built by the tests file's loader (which
        knows their default source), and so is ``strictness`` (it loads the other
        policy)."""
        requirements = []
        for kind in REQUIREMENT_KINDS:
            if kind in data:
                value = data[kind]
                values = value if isinstance(value, list) else [value]
                requirements.append(Requirement(kind, frozenset(Verdict(v) for v in values)))
        taxonomies = data.get("taxonomies")
        return cls(
            category=data.get("category"),
            label=data.get("label"),
            source=data.get("source"),
            at_least=float(data["at_least"]) if "at_least" in data else None,
            requirements=tuple(requirements),
            labels=labels,
            min_decision=Verdict(data["min_decision"]) if "min_decision" in data else None,
            max_decision=Verdict(data["max_decision"]) if "max_decision" in data else None,
            taxonomies_all=None if taxonomies is None else taxonomies == "all",
            name=data.get("name"),
            position=position or Position(),
            strictness=strictness,
            contexts=contexts,
        )


@dataclass(frozen=True, slots=True)
class Counterexample:
    """A label and confidence that break an invariant, and how the policy decides them."""

    label: str
    parent: str
    source: str
    taxonomy: str
    confidence: float
    verdict: Verdict
    rule: str
    band: Band | None = None
    synthetic: bool = False
    """True when the label is one nobody knows yet, reported under the category."""
    dropped: bool = False
    """True when the confidence is below min_confidence (the label counts as allow)."""

    def as_label(self) -> Label:
        """The label as a detector would report it, to evaluate again."""
        return Label(self.label, self.confidence, self.source, parent=self.parent)

    def describe(self) -> str:
        where = f"{self.source}, taxonomy {self.taxonomy}"
        if self.synthetic:
            who = (
                f"a label no taxonomy knows yet (the service adds labels), reported "
                f"under {self.parent} ({where})"
            )
        else:
            parent = f"parent {self.parent}" if self.parent else "no parent"
            who = f"{self.label} ({parent}; {where})"
        at = plain_number(self.confidence)
        if self.dropped:
            return f"{who} at {at}: dropped below min_confidence, so allow"
        band = f" (band {self.band.describe()})" if self.band is not None else ""
        return f"{who} at {at}: {self.verdict.value} by rule {self.rule}{band}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "parent": self.parent,
            "source": self.source,
            "taxonomy": self.taxonomy,
            "confidence": plain_number(self.confidence),
            "verdict": self.verdict.value,
            "rule": self.rule,
            "synthetic": self.synthetic,
            "dropped": self.dropped,
        }


@dataclass(frozen=True, slots=True)
class InvariantResult:
    invariant: Invariant
    passed: bool
    message: str = ""
    counterexamples: tuple[Counterexample, ...] = ()
    total: int = 0
    """How many counterexamples there are in all (only the first few are kept)."""
    strictness: Strictness | None = None
    """A strictness invariant's answer; its ``a_less_severe`` bands break it."""
    breaks: tuple[str, ...] = ()
    """A context strictness invariant's broken bands, each with its combination."""

    def details(self) -> list[str]:
        lines = [self.message] if self.message else []
        if self.breaks:
            lines.extend(f"counterexample: {b}" for b in self.breaks[:MAX_COUNTEREXAMPLES])
        lines.extend(f"counterexample: {c.describe()}" for c in self.counterexamples)
        if self.strictness is not None and self.invariant.strictness is not None:
            promise = self.invariant.strictness
            lines.extend(
                f"counterexample: {c.describe(promise.stricter.name, promise.than.name)}"
                for c in self.strictness.a_less_severe[:MAX_COUNTEREXAMPLES]
            )
        shown = len(self.counterexamples)
        if self.strictness is not None or self.breaks:
            shown = min(self.total, MAX_COUNTEREXAMPLES)
        if self.total > shown:
            lines.append(f"... and {self.total - shown} more")
        return lines


# -- the checker ------------------------------------------------------------------


class InvariantChecker:
    """Checks invariants of one compiled policy; builds each decision table once."""

    def __init__(self, compiled: CompiledPolicy, registry: DetectorRegistry | None = None) -> None:
        self.compiled = compiled
        self.registry = registry
        self._tables: dict[bool, DecisionTable] = {}

    def table(self, all_taxonomies: bool) -> DecisionTable:
        found = self._tables.get(all_taxonomies)
        if found is None:
            found = decision_table(self.compiled, self.registry, all_taxonomies=all_taxonomies)
            self._tables[all_taxonomies] = found
        return found

    def check(self, invariant: Invariant, *, all_taxonomies: bool = False) -> InvariantResult:
        if invariant.taxonomies_all is not None:  # the invariant chooses for itself
            all_taxonomies = invariant.taxonomies_all
        if invariant.strictness is not None:
            return self._check_strictness(invariant, invariant.strictness)
        if invariant.contexts is not None:
            return self._check_contexts(invariant, invariant.contexts)
        if invariant.is_label_set:
            return self._check_label_set(invariant, all_taxonomies)
        return self._check_selector(invariant, all_taxonomies)

    def _check_strictness(
        self, invariant: Invariant, promise: StrictnessPromise
    ) -> InvariantResult:
        found = promise.check(self.compiled, self.registry)
        less = found.a_less_severe
        if not less:
            return InvariantResult(
                invariant, True, f"holds ({found.relation.value})", strictness=found
            )
        return InvariantResult(
            invariant,
            False,
            f"broken: {promise.stricter.name} is {found.relation.value} compared with "
            f"{promise.than.name}, less severe in {len(less)} band(s)",
            total=len(less),
            strictness=found,
        )

    def _check_contexts(self, invariant: Invariant, promise: ContextPromise) -> InvariantResult:
        breaks = promise.breaks(self.registry)
        if not breaks:
            return InvariantResult(invariant, True, "holds in every context")
        return InvariantResult(
            invariant,
            False,
            f"broken: less severe in {len(breaks)} band(s) over the set's contexts",
            total=len(breaks),
            breaks=breaks,
        )

    # -- selector invariants ----------------------------------------------

    def _taxonomy_objects(self, all_taxonomies: bool) -> dict[tuple[str, str], Taxonomy | None]:
        """(source, taxonomy id) -> taxonomy, over the table's domain."""
        found: dict[tuple[str, str], Taxonomy | None] = {}
        for source in table_sources(self.compiled, self.registry):
            for taxonomy in source_taxonomies(source, self.registry, all_taxonomies):
                found[(source, taxonomy.id if taxonomy is not None else POLICY_LABELS)] = taxonomy
        return found

    def selected_rows(self, invariant: Invariant, all_taxonomies: bool) -> list[TableRow]:
        """Every label the invariant is about, as the table decides it; for a
        category, also a label nobody knows yet reported right under it."""
        wanted = invariant.category or invariant.label or ""
        table = self.table(all_taxonomies)
        domains = self._taxonomy_objects(all_taxonomies)
        rows: list[TableRow] = []
        known_in: set[tuple[str, str]] = set()
        for row in table.rows:
            if invariant.source is not None and row.source != invariant.source:
                continue
            taxonomy = domains.get((row.source, row.taxonomy))
            key = self.compiled.canonical_key(taxonomy)(wanted)
            if invariant.category is not None:
                hit = key in row.ancestors
            else:
                hit = bool(row.ancestors) and row.ancestors[0] == key
            if hit:
                known_in.add((row.source, row.taxonomy))
                rows.append(row)
        if invariant.category is not None:
            name, parent = synthetic_name(invariant.category), tidy_name(invariant.category)
            listed = {
                (r.source, r.taxonomy)
                for r in rows
                if r.synthetic and name_key(r.label) == name_key(name)
            }
            for source, taxonomy_id in sorted(known_in - listed):
                taxonomy = domains.get((source, taxonomy_id))
                rows.append(table_row(self.compiled, source, taxonomy, name, parent))
        return rows

    def _check_selector(self, invariant: Invariant, all_taxonomies: bool) -> InvariantResult:
        rows = self.selected_rows(invariant, all_taxonomies)
        if not rows:
            what = "category" if invariant.category is not None else "label"
            name = invariant.category or invariant.label
            scope = f" from detector {invariant.source}" if invariant.source else ""
            return InvariantResult(
                invariant,
                False,
                f"no taxonomy nor the policy's labels: know the {what} {name!r}{scope}: "
                "the invariant would hold for nothing (a misspelling?)",
            )
        floor = self.compiled.policy.min_confidence
        start = floor if invariant.at_least is None else invariant.at_least
        found: list[Counterexample] = []
        for row in rows:
            found.extend(_row_counterexamples(row, invariant.requirements, start, floor))
        if not found:
            return InvariantResult(invariant, True, f"holds for {len(rows)} label(s)")
        return InvariantResult(
            invariant,
            False,
            f"broken for {len({(c.source, c.taxonomy, c.label) for c in found})} of "
            f"{len(rows)} label(s)",
            tuple(found[:MAX_COUNTEREXAMPLES]),
            len(found),
        )

    # -- label-set invariants ---------------------------------------------

    def _check_label_set(self, invariant: Invariant, all_taxonomies: bool) -> InvariantResult:
        messages: list[str] = []
        for compiled, taxonomy_ids in self._compilations(invariant.labels, all_taxonomies):
            decision = compiled.evaluate(invariant.labels)
            verdict = decision.verdict
            broken = []
            if invariant.min_decision is not None and (
                verdict.severity < invariant.min_decision.severity
            ):
                broken.append(f"below {invariant.min_decision.value}")
            if invariant.max_decision is not None and (
                verdict.severity > invariant.max_decision.severity
            ):
                broken.append(f"above {invariant.max_decision.value}")
            if broken:
                under = f" under {', '.join(taxonomy_ids)}" if taxonomy_ids else ""
                reasons = (
                    "; ".join(r.describe(compact=True) for r in decision.reasons())
                    or "no label reviews or blocks"
                )
                messages.append(
                    f"the decision is {verdict.value}{under}, {' and '.join(broken)} ({reasons})"
                )
        if messages:
            return InvariantResult(invariant, False, "\n".join(messages))
        return InvariantResult(invariant, True)

    def _compilations(
        self, labels: Iterable[Label], all_taxonomies: bool
    ) -> list[tuple[CompiledPolicy, tuple[str, ...]]]:
        """The compiled policy, or with ``all_taxonomies`` one per combination of taxonomies
        of the labels' detectors (labels with a model version keep theirs)."""
        if not all_taxonomies or self.registry is None:
            return [(self.compiled, ())]
        registry = self.registry
        sources = sorted({label.source for label in labels if label.model_version is None})
        choices: list[list[tuple[str, Taxonomy | None]]] = [
            [(source, t) for t in source_taxonomies(source, registry, True)] for source in sources
        ]
        found: list[tuple[CompiledPolicy, tuple[str, ...]]] = []
        for combination in itertools.product(*choices):
            forced = dict(combination)
            found.append(
                (
                    CompiledPolicy(self.compiled.policy, _forcing(forced, registry)),
                    tuple(t.id for _, t in combination if t is not None),
                )
            )
        return found


def _forcing(
    forced: dict[str, Taxonomy | None], registry: DetectorRegistry
) -> Callable[[str, str | None], Taxonomy | None]:
    def taxonomy_for(source: str, model_version: str | None) -> Taxonomy | None:
        if model_version is None and source in forced:
            return forced[source]
        return registry.taxonomy_for(source, model_version)

    return taxonomy_for


def _row_counterexamples(
    row: TableRow, requirements: tuple[Requirement, ...], start: float, floor: float
) -> Iterable[Counterexample]:
    """Each band of ``row`` from ``start`` up that breaks a requirement, at its lowest
    confidence in range; below the floor, the label is dropped (counts as allow)."""
    bands = list(row.bands)
    if start < floor:
        bands.insert(0, Band(start, floor, Verdict.ALLOW))
    for index, band in enumerate(bands):
        dropped = start < floor and index == 0
        if not dropped and not band.overlaps_from(start):
            continue
        if all(requirement.holds(band.verdict) for requirement in requirements):
            continue
        yield Counterexample(
            label=row.label,
            parent=row.parent,
            source=row.source,
            taxonomy=row.taxonomy,
            confidence=max(band.low, start),
            verdict=band.verdict,
            rule=DROPPED_RULE if dropped else row.rule,
            band=None if dropped else band,
            synthetic=row.synthetic,
            dropped=dropped,
        )
