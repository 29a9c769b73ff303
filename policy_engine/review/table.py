"""The exact decision table of a policy.

A label's verdict depends only on the label and its confidence, so a policy
is fully described by, for every label it can meet, the deciding rule and the
confidence bands where that rule allows, reviews and blocks. The table lists
every label the detectors' taxonomies and the policy's ``labels:`` know, as a
detector would report it (with its taxonomy parent), plus the ``default``
that decides labels nobody knows. Reviews, diffs and invariants are computed
on it exactly, with no sampling.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policy_engine.compiler import CompiledPolicy
from policy_engine.decision import DEFAULT_RULE
from policy_engine.detectors import current_taxonomy, taxonomies_of
from policy_engine.labels import Label
from policy_engine.model import Body, Verdict, plain_number
from policy_engine.names import name_key, tidy_name
from policy_engine.taxonomy import Taxonomy

if TYPE_CHECKING:
    from policy_engine.plugins import DetectorRegistry

MAX_CONFIDENCE = 100.0
ANY_OTHER_LABEL = "*"
ANY_LABEL_AT_TOP = "<any other label>"
"""The made-up label that stands for a label nobody knows, reported with no parent."""
POLICY_LABELS = "policy labels"
"""The taxonomy column of rows that only the policy's ``labels:`` know."""


@dataclass(frozen=True, slots=True)
class Band:
    """Confidences from ``low`` up to ``high`` (included only when ``closed``)."""

    low: float
    high: float
    verdict: Verdict
    closed: bool = False

    def contains(self, confidence: float) -> bool:
        return self.low <= confidence < self.high or (self.closed and confidence == self.high)

    def overlaps_from(self, confidence: float) -> bool:
        """Whether any confidence >= ``confidence`` lies in this band."""
        return self.high > confidence or (self.closed and self.high >= confidence)

    def describe(self) -> str:
        low, high = plain_number(self.low), plain_number(self.high)
        return f"[{low}, {high}{']' if self.closed else ')'}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "from": plain_number(self.low),
            "to": plain_number(self.high),
            "to_included": self.closed,
        }


def bands_for(body: Body, floor: float) -> tuple[Band, ...]:
    """The verdict bands of ``body`` over [floor, 100]; adjacent bands differ in verdict."""
    block_from, review_from = body.fires_at
    cuts = sorted({floor} | {x for x in (block_from, review_from) if floor < x <= MAX_CONFIDENCE})
    bands: list[Band] = []
    for index, low in enumerate(cuts):
        last = index == len(cuts) - 1
        high = MAX_CONFIDENCE if last else cuts[index + 1]
        verdict = body.verdict(low)
        if bands and bands[-1].verdict is verdict:
            bands[-1] = Band(bands[-1].low, high, verdict, last)
        else:
            bands.append(Band(low, high, verdict, last))
    return tuple(bands)


def verdict_at(bands: Iterable[Band], confidence: float) -> Verdict | None:
    """The verdict of the band holding ``confidence``; None where none does
    (below the floor: the label is dropped)."""
    for band in bands:
        if band.contains(confidence):
            return band.verdict
    return None


@dataclass(frozen=True, slots=True)
class TableRow:
    """One label as a detector reports it, and how the policy decides it."""

    source: str
    taxonomy: str
    label: str
    parent: str
    ancestors: tuple[str, ...]
    """Canonical keys of the label and its ancestors, itself first."""
    rule: str
    bands: tuple[Band, ...]
    rule_file: str | None = field(default=None, compare=False)
    """The file that wrote the deciding rule, where it is a base the policy extends."""

    @property
    def synthetic(self) -> bool:
        """Whether the row stands for any label not known yet under its parent."""
        return self.label == synthetic_name(self.parent) if self.parent else False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.source, self.taxonomy, name_key(self.label))

    def verdict_at(self, confidence: float) -> Verdict | None:
        """The verdict at ``confidence``; None below the floor (dropped)."""
        return verdict_at(self.bands, confidence)

    def describe(self) -> str:
        bands = ", ".join(f"{b.describe()} {b.verdict.value}" for b in self.bands)
        written = f" (in {self.rule_file})" if self.rule_file else ""
        return f"{self.label}: {bands} - rule {self.rule}{written}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "taxonomy": self.taxonomy,
            "label": self.label,
            "parent": self.parent,
            "rule": self.rule,
        }
        if self.rule_file is not None:
            data["rule_file"] = self.rule_file
        data["bands"] = [band.to_dict() for band in self.bands]
        return data


@dataclass(frozen=True, slots=True)
class DecisionTable:
    """How a policy decides every label its detectors can report: one row per
    (detector, taxonomy, label, reported parent), each with its deciding rule
    and verdict bands over [``min_confidence``, 100], and the default rule's
    bands for a label no row names. :func:`decision_table` builds it; ``table``
    prints it, and ``diff`` compares two."""

    policy_name: str
    policy_digest: str
    min_confidence: float
    rows: tuple[TableRow, ...]
    default_rule: str
    default_bands: tuple[Band, ...]

    @property
    def default_row(self) -> TableRow:
        """How a label that nobody knows, reported with no parent, is decided."""
        return TableRow("*", "*", ANY_OTHER_LABEL, "", (), self.default_rule, self.default_bands)

    def find(self, label: str, source: str | None = None) -> tuple[TableRow, ...]:
        key = name_key(label)
        return tuple(
            row
            for row in self.rows
            if name_key(row.label) == key and (source is None or row.source == source)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": {"name": self.policy_name, "digest": self.policy_digest},
            "min_confidence": plain_number(self.min_confidence),
            "rows": [row.to_dict() for row in self.rows],
            "default": {
                "rule": self.default_rule,
                "bands": [band.to_dict() for band in self.default_bands],
            },
        }


def table_sources(compiled: CompiledPolicy, registry: DetectorRegistry | None) -> tuple[str, ...]:
    """The detectors whose labels the policy can meet: those it configures or names
    in a rule or a ``labels:`` entry; with none of these, every installed one."""
    policy = compiled.policy
    named = set(policy.detectors)
    named.update(rule.match.source for rule in policy.rules if rule.match.source)
    named.update(d.source for d in policy.labels if d.source)
    if not named and registry is not None:
        named.update(registry.names())
    return tuple(sorted(named))


def source_taxonomies(
    source: str, registry: DetectorRegistry | None, all_taxonomies: bool
) -> tuple[Taxonomy | None, ...]:
    """The taxonomies the decision table walks for ``source``: its current one
    (the one for responses without a model version), or with ``all_taxonomies`` all it
    knows (older models' too), by id; ``(None,)`` when it has none. The one
    place that chooses them: the table, invariants and the linter all walk these.
    A plugin that fails to say has none (its optional extra never breaks a review)."""
    if registry is not None and source in registry:
        detector = registry.get(source)
        current = current_taxonomy(detector)
        found = taxonomies_of(detector) if all_taxonomies or current is None else (current,)
        if found:
            return tuple(sorted(found, key=lambda t: t.id))
    return (None,)


def find_taxonomy(
    registry: DetectorRegistry | None, source: str, taxonomy_id: str
) -> Taxonomy | None:
    """The taxonomy a row's ``taxonomy`` column names (None for ``policy labels``)."""
    if registry is None or taxonomy_id == POLICY_LABELS or source not in registry:
        return None
    walked = (
        *source_taxonomies(source, registry, True),
        *source_taxonomies(source, registry, False),
    )
    for taxonomy in walked:
        if taxonomy is not None and taxonomy.id == taxonomy_id:
            return taxonomy
    return None


def synthetic_name(category: str) -> str:
    """The name of the made-up label that stands for any label added under ``category``."""
    return f"<any label under {tidy_name(category)}>"


def categories_of(
    compiled: CompiledPolicy, source: str, taxonomy: Taxonomy | None
) -> dict[str, str]:
    """Canonical key -> display name of every category of labels from ``source``:
    a taxonomy parent, a ``labels:`` entry's parent, a rule's ``parent``."""
    categories: dict[str, str] = {}
    if taxonomy is not None:
        for key in sorted(taxonomy.keys()):
            parent_key = taxonomy.parent_key(key) or ""
            if parent_key:
                categories.setdefault(parent_key, reported_parent(taxonomy, key))
    canonical = compiled.canonical_key(taxonomy)
    for definition in compiled.policy.labels:
        if definition.source in (None, source) and definition.parent.strip():
            categories.setdefault(canonical(definition.parent), definition.parent)
    for rule in compiled.policy.rules:
        if rule.match.parent is not None and rule.match.source in (None, source):
            categories.setdefault(canonical(rule.match.parent), rule.match.parent)
    return categories


def labels_of(
    compiled: CompiledPolicy,
    source: str,
    taxonomy: Taxonomy | None,
    *,
    unknown_under_categories: bool = True,
) -> Iterator[tuple[str, str]]:
    """(name, reported parent) of every label a detector may report: the taxonomy's
    with their taxonomy parents, then the policy's own (reported without a parent),
    then, with ``unknown_under_categories``, for every category a label nobody
    knows yet reported under it. The one label universe: the table lists these,
    and the linter decides them (strictness adds :func:`unknown_name_labels`)."""
    seen: set[str] = set()
    if taxonomy is not None:
        for key in sorted(taxonomy.keys()):
            seen.add(key)
            yield taxonomy.display_name(key) or key, reported_parent(taxonomy, key)
    canonical = compiled.canonical_key(taxonomy)
    for definition in compiled.policy.labels:
        if definition.source not in (None, source):
            continue
        for name in (definition.name, definition.parent):
            key = canonical(name) if name.strip() else ""
            if key and key not in seen:
                seen.add(key)
                yield name, ""
    if not unknown_under_categories:
        return
    # Detectors add labels over time: one reported under a category nobody has
    # seen yet is decided by the category's rules, so the table lists that case too.
    categories = categories_of(compiled, source, taxonomy)
    for key in sorted(categories):
        yield synthetic_name(categories[key]), categories[key]


def unknown_name_labels(
    policies: Sequence[CompiledPolicy], source: str, taxonomy: Taxonomy | None
) -> Iterator[tuple[str, str]]:
    """What a detector may still report beyond :func:`labels_of` (strictness,
    POLICY_SPEC section 11): every name any of ``policies`` mentions (a rule's
    ``name`` or ``parent``, a ``labels:`` entry's) that the taxonomy does not know,
    reported with no parent and under every category any of them knows, and a
    label nobody knows at the top (:data:`ANY_LABEL_AT_TOP`). A taxonomy's own
    labels keep their taxonomy parents: that is how a detector reports them."""
    known = set(taxonomy.keys()) if taxonomy is not None else set()
    names: dict[str, str] = {}  # name key -> display name
    categories: dict[str, str] = {}
    for compiled in policies:
        canonical = compiled.canonical_key(taxonomy)
        mentioned = [
            name
            for definition in compiled.policy.labels
            if definition.source in (None, source)
            for name in (definition.name, definition.parent)
        ]
        mentioned += [
            name
            for rule in compiled.policy.rules
            if rule.match.source in (None, source)
            for name in (rule.match.name, rule.match.parent)
            if name is not None
        ]
        for name in mentioned:
            if name.strip() and canonical(name) not in known:
                names.setdefault(name_key(name), name)
        for display in categories_of(compiled, source, taxonomy).values():
            categories.setdefault(name_key(display), display)
    for key in sorted(names):
        yield names[key], ""
        for category_key in sorted(categories):
            if category_key != key:
                yield names[key], categories[category_key]
    yield ANY_LABEL_AT_TOP, ""


def reported_parent(taxonomy: Taxonomy | None, key: str) -> str:
    """The parent a detector reports with the label of canonical ``key``: its
    taxonomy parent's display name, else none ("")."""
    if taxonomy is None:
        return ""
    parent_key = taxonomy.parent_key(key) or ""
    return (taxonomy.display_name(parent_key) or "") if parent_key else ""


def table_row(
    compiled: CompiledPolicy, source: str, taxonomy: Taxonomy | None, name: str, parent: str
) -> TableRow:
    """The row of label ``name`` from ``source``, reported with direct parent ``parent``
    ("" for none), decided under ``taxonomy`` (None: the policy's ``labels:`` only).
    :func:`decision_table` builds every row with it; a diff uses it to decide, under
    one policy, a label that only the other policy's table lists."""
    label = Label(name=name, parent=parent, confidence=MAX_CONFIDENCE, source=source)
    explanation = compiled.explain_in(label, taxonomy)
    winner = explanation.winner
    return TableRow(
        source,
        taxonomy.id if taxonomy is not None else POLICY_LABELS,
        name,
        explanation.lineage.parent_display,
        explanation.lineage.chain,
        winner.id if winner is not None else DEFAULT_RULE,
        bands_for(explanation.body, compiled.policy.min_confidence),
        winner.file if winner is not None else None,
    )


def decision_table(
    compiled: CompiledPolicy,
    registry: DetectorRegistry | None = None,
    *,
    all_taxonomies: bool = False,
) -> DecisionTable:
    """The exact decision table of ``compiled`` (see the module's docstring), over
    each detector's current taxonomy, or with ``all_taxonomies`` every one it has."""
    floor = compiled.policy.min_confidence
    rows: list[TableRow] = []
    for source in table_sources(compiled, registry):
        for taxonomy in source_taxonomies(source, registry, all_taxonomies):
            for name, parent in labels_of(compiled, source, taxonomy):
                rows.append(table_row(compiled, source, taxonomy, name, parent))
    return DecisionTable(
        compiled.policy.name,
        compiled.digest,
        floor,
        tuple(rows),
        DEFAULT_RULE,
        bands_for(compiled.policy.default, floor),
    )
