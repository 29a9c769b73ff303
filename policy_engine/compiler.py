"""Compiling a policy for evaluation (POLICY_SPEC sections 1 and 4-6).

Compile once, evaluate many: the deciding rule of each distinct label
(source, model version, name, reported parent) is resolved once and cached,
so evaluating a label is a dictionary look-up and two comparisons whatever
the number of rules. Evaluation is pure: no I/O, inputs never mutated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from policy_engine.decision import DEFAULT_RULE, Decision, DetectorFailure, Resolution
from policy_engine.labels import Label
from policy_engine.model import VERDICT_BY_SEVERITY, Body, Policy, Rule, Verdict
from policy_engine.names import name_key, tidy_name
from policy_engine.taxonomy import Taxonomy

if TYPE_CHECKING:
    from policy_engine.detectors import DetectorResult
    from policy_engine.plugins import DetectorRegistry

TaxonomyLookup = Callable[[str, "str | None"], "Taxonomy | None"]

# Distinct labels are bounded by the taxonomies in practice; the cap keeps a
# detector that invents names (custom labels, a buggy plugin) from growing memory.
MAX_CACHED_RESOLUTIONS = 65_536
MAX_CACHED_VIEWS = 64


_NO_METADATA: Mapping[str, Mapping[str, Any]] = MappingProxyType({})


def _no_taxonomy(source: str, model_version: str | None) -> Taxonomy | None:
    return None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A rule that selects a label, and how specific it is for that label."""

    rule: Rule
    rank: int
    distance: int
    order: int

    @property
    def sort_key(self) -> tuple[int, int, int, int]:
        return (
            self.rank,
            self.distance,
            0 if self.rule.match.source is not None else 1,
            self.order,
        )


@dataclass(frozen=True, slots=True)
class Lineage:
    """A label's place in its hierarchy: its key, its direct parent and its chain of
    ancestors (itself first), as canonical keys, with display names."""

    key: str
    direct_parent: str | None
    chain: tuple[str, ...]
    parent_display: str


@dataclass(frozen=True, slots=True)
class Explanation:
    label: Label
    lineage: Lineage
    candidates: tuple[Candidate, ...]
    winner: Rule | None
    body: Body


class _TaxonomyView:
    """The rules and the policy's ``labels:`` keyed by canonical names under one
    taxonomy's aliases, so that either spelling of a label finds them."""

    def __init__(self, policy: Policy, canonical: Callable[[str], str]) -> None:
        self.canonical = canonical
        self.by_name_parent: dict[tuple[str, str], list[tuple[int, Rule]]] = {}
        self.by_name: dict[str, list[tuple[int, Rule]]] = {}
        self.by_parent: dict[str, list[tuple[int, Rule]]] = {}
        for order, rule in enumerate(policy.rules):
            name, parent = rule.match.name, rule.match.parent
            if name is not None and parent is not None:
                key = (canonical(name), canonical(parent))
                self.by_name_parent.setdefault(key, []).append((order, rule))
            elif name is not None:
                self.by_name.setdefault(canonical(name), []).append((order, rule))
            elif parent is not None:
                self.by_parent.setdefault(canonical(parent), []).append((order, rule))
        # labels: entries for every source, and for one source only (which win);
        # values are the parent's key, "" at the top
        self.unscoped_parents: dict[str, str] = {}
        self.scoped_parents: dict[str, dict[str, str]] = {}
        self.display: dict[str, str] = {}
        for definition in policy.labels:
            target = (
                self.unscoped_parents
                if definition.source is None
                else self.scoped_parents.setdefault(definition.source, {})
            )
            label_key = canonical(definition.name)
            parent_key = canonical(definition.parent) if definition.parent.strip() else ""
            target[label_key] = parent_key
            self.display.setdefault(label_key, definition.name)
            if parent_key:
                self.display.setdefault(parent_key, definition.parent)


def name_comparer(policy: Policy, taxonomy: Taxonomy | None) -> Callable[[str], str]:
    """How names compare for labels under ``taxonomy`` (None: a detector without
    one): the name key, with the taxonomy's aliases and the policy's own
    (:attr:`Policy.aliases`) resolved. Everything that keys rules, ``labels:``
    entries or labels goes through it, so that one spelling never decides
    differently from another."""
    aliases = policy.aliases
    if taxonomy is None:
        if not aliases:
            return name_key

        def aliased(name: str) -> str:
            key = name_key(name)
            return aliases.get(key, key)

        return aliased
    if not aliases:
        return taxonomy.canonical_key

    def canonical(name: str) -> str:
        key = taxonomy.canonical_key(name)
        return aliases.get(key, key)

    return canonical


class CompiledPolicy:
    """A policy ready to evaluate. Thread-safe; share one across threads."""

    def __init__(self, policy: Policy, taxonomy_for: TaxonomyLookup = _no_taxonomy) -> None:
        self.policy = policy
        self._digest: str | None = None  # on first use: a lint pass never reads it
        self._taxonomy_for = taxonomy_for
        self._floor = policy.min_confidence
        self._on_error_severity = policy.on_error.severity
        # (block_from, review_from, resolution) by label key: evaluation reads the
        # thresholds from an exact tuple, which CPython indexes fastest (a named
        # tuple's fields cost it 5-8% per decision)
        self._cache: dict[tuple[str, str | None, str, str], tuple[float, float, Resolution]] = {}
        self._views: dict[int, tuple[Taxonomy | None, _TaxonomyView]] = {}
        self._lock = threading.Lock()

    # -- hierarchy -------------------------------------------------------

    # read-only: a decision derives its kept and dropped labels from these
    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def digest(self) -> str:
        if self._digest is None:  # two threads may both compute it: the same value
            self._digest = self.policy.digest
        return self._digest

    @property
    def on_error(self) -> Verdict:
        return self.policy.on_error

    @property
    def min_confidence(self) -> float:
        return self._floor

    def _view(self, taxonomy: Taxonomy | None) -> _TaxonomyView:
        slot = id(taxonomy)
        found = self._views.get(slot)
        if found is None or found[0] is not taxonomy:
            canonical = name_comparer(self.policy, taxonomy)
            with self._lock:
                if len(self._views) >= MAX_CACHED_VIEWS:  # a plugin making new taxonomies
                    self._views.clear()
                found = (taxonomy, _TaxonomyView(self.policy, canonical))
                self._views[slot] = found
        return found[1]

    def canonical_key(self, taxonomy: Taxonomy | None) -> Callable[[str], str]:
        """How names compare under ``taxonomy`` in this policy (:func:`name_comparer`)."""
        return self._view(taxonomy).canonical

    def lineage(self, label: Label) -> Lineage:
        """Where ``label`` sits: reported parent first, then the policy's ``labels:``
        over the source's taxonomy; the chain ends at an unknown name or a repeat."""
        return self._lineage(label, self._taxonomy_for(label.source, label.model_version))

    def candidates(self, label: Label) -> tuple[Candidate, ...]:
        """Every rule that selects ``label``, most specific first (section 4)."""
        taxonomy = self._taxonomy_for(label.source, label.model_version)
        return self._candidates(label, taxonomy, self._lineage(label, taxonomy))

    def explain(self, label: Label) -> Explanation:
        """How ``label`` is decided: its lineage, every selecting rule, the winner."""
        return self.explain_in(label, self._taxonomy_for(label.source, label.model_version))

    def explain_in(self, label: Label, taxonomy: Taxonomy | None) -> Explanation:
        """:meth:`explain` under a given taxonomy (the decision table walks each one)."""
        lineage = self._lineage(label, taxonomy)
        candidates = self._candidates(label, taxonomy, lineage)
        winner = candidates[0].rule if candidates else None
        body = winner.body if winner is not None else self.policy.default
        return Explanation(label, lineage, candidates, winner, body)

    def _lineage(self, label: Label, taxonomy: Taxonomy | None) -> Lineage:
        view = self._view(taxonomy)
        canonical = view.canonical
        scoped = view.scoped_parents.get(label.source, {})

        def parent_of(key: str) -> str | None:
            written = scoped.get(key, view.unscoped_parents.get(key))
            if written is not None:
                return written
            if taxonomy is not None:
                return taxonomy.parent_key(key)
            return None

        key = canonical(label.name)
        direct = canonical(label.parent) if label.parent.strip() else parent_of(key)
        direct = direct or None
        chain = [key]
        current = direct
        while current and current not in chain:
            chain.append(current)
            current = parent_of(current)
        if label.parent.strip():
            parent_display = tidy_name(label.parent)
        elif direct is None:
            parent_display = ""
        else:
            parent_display = (
                view.display.get(direct)
                or (taxonomy.display_name(direct) if taxonomy is not None else None)
                or direct
            )
        return Lineage(key, direct, tuple(chain), parent_display)

    def _candidates(
        self, label: Label, taxonomy: Taxonomy | None, lineage: Lineage
    ) -> tuple[Candidate, ...]:
        index = self._view(taxonomy)
        found: list[Candidate] = []
        if lineage.direct_parent is not None:
            for order, rule in index.by_name_parent.get((lineage.key, lineage.direct_parent), ()):
                found.append(Candidate(rule, 0, 0, order))
        for order, rule in index.by_name.get(lineage.key, ()):
            found.append(Candidate(rule, 1, 0, order))
        for distance, ancestor in enumerate(lineage.chain):
            for order, rule in index.by_parent.get(ancestor, ()):
                found.append(Candidate(rule, 2, distance, order))
        selecting = [c for c in found if c.rule.match.source in (None, label.source)]
        return tuple(sorted(selecting, key=lambda c: c.sort_key))

    def resolve(self, label: Label) -> Resolution:
        """The deciding body's thresholds, rule id and display parent for ``label``."""
        found = self._cache.get(label.key)
        if found is not None:
            return found[2]
        return self._resolve(label)[2]

    def _resolve(self, label: Label) -> tuple[float, float, Resolution]:
        explanation = self.explain(label)
        block_from, review_from = explanation.body.fires_at
        winner = explanation.winner
        rule_id = winner.id if winner is not None else DEFAULT_RULE
        parent = explanation.lineage.parent_display
        rule_file = winner.file if winner is not None else None
        resolution = Resolution(block_from, review_from, rule_id, parent, rule_file)
        found = (block_from, review_from, resolution)
        if len(self._cache) < MAX_CACHED_RESOLUTIONS:
            self._cache[label.key] = found
        return found

    # -- evaluation ------------------------------------------------------

    def evaluate(
        self,
        labels: Iterable[Label],
        failures: Iterable[DetectorFailure] = (),
        detectors: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Decision:
        """Decide one image from its pooled labels and detector failures (section 5)."""
        floor = self._floor
        cached = self._cache.get
        labels = tuple(labels)
        worst = 0
        for label in labels:
            confidence = label.confidence
            if confidence >= floor:
                resolution = cached(label.key)
                if resolution is None:
                    resolution = self._resolve(label)
                if confidence >= resolution[0]:  # block_from
                    worst = 2
                elif worst == 0 and confidence >= resolution[1]:  # review_from
                    worst = 1
        failures = tuple(failures) if failures else ()
        if failures and self._on_error_severity > worst:
            worst = self._on_error_severity
        return Decision(
            VERDICT_BY_SEVERITY[worst], self, labels, failures, detectors or _NO_METADATA
        )

    def evaluate_results(
        self, results: Sequence[DetectorResult], failures: Iterable[DetectorFailure] = ()
    ) -> Decision:
        """Decide one image from its detectors' results: their labels pooled into
        one list, their metadata kept by detector for the record. The one place
        results become labels: the engine, a shadow candidate and ``evaluate``
        decide through it."""
        labels = [label for result in results for label in result.labels]
        metadata = {result.source: result.metadata for result in results if result.metadata}
        return self.evaluate(labels, failures, metadata)


def compile_policy(policy: Policy, registry: DetectorRegistry | None = None) -> CompiledPolicy:
    """Compile ``policy``; with a ``registry``, labels get their detectors' taxonomies."""
    if registry is None:
        return CompiledPolicy(policy)
    return CompiledPolicy(policy, registry.taxonomy_for)
