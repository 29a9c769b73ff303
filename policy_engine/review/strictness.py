"""Whether one policy is at least as strict as another, exactly (POLICY_SPEC section 11).

Policy A is at least as strict as policy B when every label either policy's
detectors can report gets, at every confidence from 0 to 100, a verdict under A
at least as severe as under B, and the failure of every detector either declares
contributes a verdict under A at least as severe as under B.

The labels are the decision table's universe (:func:`~policy_engine.review.table.labels_of`)
of both policies, plus what a detector may still report
(:func:`~policy_engine.review.table.unknown_name_labels`: a name only a rule or
``labels:`` mentions, alone and under every category either policy knows, and a
label nobody knows at the top), walked for every source either policy can meet, under
every taxonomy each source knows (older models' too: a gate must not miss a
label an older model reports), plus :data:`OTHER_DETECTOR`, a detector neither
policy names. Each label's verdicts are the table's bands; between the cut
points of both policies' bands neither changes its verdict, so one look at each
piece is exact. Where a piece differs, it is a counterexample: the label, the
band, both verdicts and both deciding rules.

What a policy sees (the choices the spec leaves open, written down):

- a label below the policy's ``min_confidence`` is dropped: ``allow``, decided
  by :data:`DROPPED_BY`;
- a policy that declares ``detectors:`` ignores every other detector's labels
  (``allow``, :data:`IGNORED_BY`), and their failures contribute ``allow``;
- a policy that declares no ``detectors:`` sees the labels of every detector,
  as :meth:`~policy_engine.compiler.CompiledPolicy.evaluate` decides them, and
  any detector's failure contributes its ``on_error``.

:func:`visible` applies the same to a list of labels and failures, so a caller
can decide an image exactly as this module reasons about it.

The answer is one function of two compiled policies and a registry, so a policy
set can call it for each pair of routes or contexts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import chain, pairwise
from typing import TYPE_CHECKING, Any

from policy_engine.compiler import CompiledPolicy
from policy_engine.decision import DetectorFailure
from policy_engine.labels import Label
from policy_engine.model import Verdict, plain_number
from policy_engine.names import name_key
from policy_engine.review.table import (
    MAX_CONFIDENCE,
    Band,
    labels_of,
    source_taxonomies,
    table_row,
    table_sources,
    unknown_name_labels,
)
from policy_engine.taxonomy import Taxonomy

if TYPE_CHECKING:
    from policy_engine.plugins import DetectorRegistry

OTHER_DETECTOR = "<any other detector>"
"""Stands for a detector neither policy names: seen only by a policy with no ``detectors:``."""
DROPPED_BY = "below min_confidence"
"""The "rule" of a band where a label is dropped (it counts as ``allow``)."""
IGNORED_BY = "detector not declared"
"""The "rule" of a label or failure from a detector the policy does not declare."""
ON_ERROR_BY = "on_error"
"""The "rule" of a detector failure's verdict."""


class Relation(StrEnum):
    """How policy A compares with policy B."""

    STRICTER = "stricter"
    """Somewhere more severe, nowhere less."""
    MORE_LENIENT = "more-lenient"
    """Somewhere less severe, nowhere more."""
    MIXED = "mixed"
    """More severe somewhere and less severe somewhere else."""
    EQUAL = "equal"
    """The same verdict for every label at every confidence, and for every failure."""


def sees(policy: CompiledPolicy, source: str) -> bool:
    """Whether ``policy`` decides the labels and failures of detector ``source``."""
    declared = policy.policy.detectors
    return not declared or source in declared


def visible(
    policy: CompiledPolicy, labels: Iterable[Label], failures: Iterable[DetectorFailure] = ()
) -> tuple[tuple[Label, ...], tuple[DetectorFailure, ...]]:
    """The labels and failures ``policy`` decides: those of detectors it sees."""
    return (
        tuple(label for label in labels if sees(policy, label.source)),
        tuple(failure for failure in failures if sees(policy, failure.source)),
    )


@dataclass(frozen=True, slots=True)
class Counterexample:
    """A band of one label (or a detector's failure) where the two policies' verdicts differ.

    ``parent`` is the parent the detector reports with the label (``""``: none, so
    each policy takes the one its taxonomy and ``labels:`` know); ``label`` is ``""``
    for a detector failure (then the band is all of [0, 100])."""

    source: str
    taxonomy: str
    label: str
    parent: str
    low: float
    high: float
    closed: bool
    verdict_a: Verdict
    verdict_b: Verdict
    rule_a: str
    rule_b: str

    @property
    def failure(self) -> bool:
        return not self.label

    @property
    def a_more_severe(self) -> bool:
        return self.verdict_a.severity > self.verdict_b.severity

    def describe_range(self) -> str:
        return Band(self.low, self.high, Verdict.ALLOW, self.closed).describe()

    def describe(self, a: str = "A", b: str = "B") -> str:
        """``Weapon Violence (rekognition-moderation, v7, parent Violence) [80, 90):
        A review (rule weapons), B block (rule violence)``."""
        verdicts = (
            f"{a} {self.verdict_a.value} ({_by(self.rule_a)}), "
            f"{b} {self.verdict_b.value} ({_by(self.rule_b)})"
        )
        if self.failure:
            return f"failure of detector {self.source}: {verdicts}"
        where = ", ".join(
            part
            for part in (self.source, self.taxonomy, f"parent {self.parent}" if self.parent else "")
            if part
        )
        return f"{self.label} ({where}) {self.describe_range()}: {verdicts}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "failure" if self.failure else "label",
            "source": self.source,
            "taxonomy": self.taxonomy,
            "label": self.label,
            "parent": self.parent,
            "from": plain_number(self.low),
            "to": plain_number(self.high),
            "to_included": self.closed,
            "a": {"verdict": self.verdict_a.value, "rule": self.rule_a},
            "b": {"verdict": self.verdict_b.value, "rule": self.rule_b},
        }


def _by(rule: str) -> str:
    return rule if rule in (DROPPED_BY, IGNORED_BY, ON_ERROR_BY) else f"rule {rule}"


@dataclass(frozen=True, slots=True)
class Strictness:
    """Policy A compared with policy B: every band where A is more severe, and every
    band where A is less severe (each a counterexample to one direction)."""

    a: str
    b: str
    a_more_severe: tuple[Counterexample, ...]
    """Counterexamples to "B is at least as strict as A"."""
    a_less_severe: tuple[Counterexample, ...]
    """Counterexamples to "A is at least as strict as B"."""

    @property
    def relation(self) -> Relation:
        if self.a_more_severe and self.a_less_severe:
            return Relation.MIXED
        if self.a_more_severe:
            return Relation.STRICTER
        if self.a_less_severe:
            return Relation.MORE_LENIENT
        return Relation.EQUAL

    @property
    def a_at_least_as_strict(self) -> bool:
        return not self.a_less_severe

    @property
    def b_at_least_as_strict(self) -> bool:
        return not self.a_more_severe

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "relation": self.relation.value,
            "a_more_severe": [c.to_dict() for c in self.a_more_severe],
            "a_less_severe": [c.to_dict() for c in self.a_less_severe],
        }


@dataclass(frozen=True, slots=True)
class UniverseLabel:
    """One label of the universe: as ``source`` reports it, under ``taxonomy``."""

    source: str
    taxonomy: Taxonomy | None
    name: str
    parent: str


@dataclass(frozen=True, slots=True)
class _Segment:
    low: float
    high: float
    closed: bool
    verdict: Verdict
    decided_by: str

    def contains(self, confidence: float) -> bool:
        return self.low <= confidence < self.high or (self.closed and confidence == self.high)


def universe_sources(
    a: CompiledPolicy, b: CompiledPolicy, registry: DetectorRegistry | None
) -> tuple[str, ...]:
    """Every detector either policy can meet: those they name, every installed one
    (a policy with no ``detectors:`` sees them all), and :data:`OTHER_DETECTOR`."""
    found = {*table_sources(a, registry), *table_sources(b, registry)}
    if registry is not None:
        found.update(registry.names())
    return (*sorted(found - {OTHER_DETECTOR}), OTHER_DETECTOR)  # the named ones first


def universe(
    a: CompiledPolicy, b: CompiledPolicy, registry: DetectorRegistry | None = None
) -> Iterator[UniverseLabel]:
    """Every label either policy's detectors can report (section 11), each once."""
    for source in universe_sources(a, b, registry):
        for taxonomy in source_taxonomies(source, registry, True):
            seen: set[tuple[str, str]] = set()
            walked = chain(
                labels_of(a, source, taxonomy),
                labels_of(b, source, taxonomy),
                unknown_name_labels((a, b), source, taxonomy),
            )
            for name, parent in walked:
                key = (name_key(name), name_key(parent) if parent.strip() else "")
                if key not in seen:
                    seen.add(key)
                    yield UniverseLabel(source, taxonomy, name, parent)


def _segments(policy: CompiledPolicy, item: UniverseLabel) -> tuple[_Segment, ...]:
    """The verdicts of ``item`` under ``policy`` over all of [0, 100]."""
    if not sees(policy, item.source):
        return (_Segment(0, MAX_CONFIDENCE, True, Verdict.ALLOW, IGNORED_BY),)
    row = table_row(policy, item.source, item.taxonomy, item.name, item.parent)
    segments = [_Segment(b.low, b.high, b.closed, b.verdict, row.rule) for b in row.bands]
    floor = policy.policy.min_confidence
    if floor > 0:
        segments.insert(0, _Segment(0, floor, False, Verdict.ALLOW, DROPPED_BY))
    return tuple(segments)


def _at(segments: tuple[_Segment, ...], confidence: float) -> _Segment:
    for segment in segments:
        if segment.contains(confidence):
            return segment
    raise AssertionError(f"no band holds {confidence}")  # the segments cover [0, 100]


def _label_differences(
    a: CompiledPolicy, b: CompiledPolicy, item: UniverseLabel
) -> Iterator[Counterexample]:
    side_a, side_b = _segments(a, item), _segments(b, item)
    cuts = sorted({s.low for s in (*side_a, *side_b)} | {MAX_CONFIDENCE})
    pieces = [(low, high, False) for low, high in pairwise(cuts)]
    pieces.append((MAX_CONFIDENCE, MAX_CONFIDENCE, True))
    merged: list[tuple[float, float, bool, _Segment, _Segment]] = []
    for low, high, closed in pieces:
        at_a, at_b = _at(side_a, low), _at(side_b, low)
        if merged:
            last = merged[-1]
            same = (last[3].verdict, last[3].decided_by, last[4].verdict, last[4].decided_by)
            if same == (at_a.verdict, at_a.decided_by, at_b.verdict, at_b.decided_by):
                merged[-1] = (last[0], high, closed, at_a, at_b)
                continue
        merged.append((low, high, closed, at_a, at_b))
    taxonomy = item.taxonomy.id if item.taxonomy is not None else ""
    for low, high, closed, at_a, at_b in merged:
        if at_a.verdict is not at_b.verdict:
            yield Counterexample(
                item.source,
                taxonomy,
                item.name,
                item.parent,
                low,
                high,
                closed,
                at_a.verdict,
                at_b.verdict,
                at_a.decided_by,
                at_b.decided_by,
            )


def failure_verdict(policy: CompiledPolicy, source: str) -> tuple[Verdict, str]:
    """The verdict the failure of detector ``source`` contributes under ``policy``, and why."""
    if sees(policy, source):
        return policy.policy.on_error, ON_ERROR_BY
    return Verdict.ALLOW, IGNORED_BY


def compare_policies(
    a: CompiledPolicy, b: CompiledPolicy, registry: DetectorRegistry | None = None
) -> Strictness:
    """Policy ``a`` compared with policy ``b``, exactly (see the module's docstring)."""
    found: list[Counterexample] = []
    for item in universe(a, b, registry):
        found.extend(_label_differences(a, b, item))
    failing = {*a.policy.detectors, *b.policy.detectors}
    for source in (*sorted(failing - {OTHER_DETECTOR}), OTHER_DETECTOR):
        (verdict_a, by_a), (verdict_b, by_b) = (
            failure_verdict(a, source),
            failure_verdict(b, source),
        )
        if verdict_a is not verdict_b:
            found.append(
                Counterexample(
                    source, "", "", "", 0, MAX_CONFIDENCE, True, verdict_a, verdict_b, by_a, by_b
                )
            )
    return Strictness(
        a.policy.name,
        b.policy.name,
        tuple(c for c in found if c.a_more_severe),
        tuple(c for c in found if not c.a_more_severe),
    )


# -- promises -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """A policy a promise names: as reports show it (a file, later a set's context),
    and the policy itself (None: the policy of the tests file holding the promise)."""

    name: str
    compiled: CompiledPolicy | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StrictnessPromise:
    """A promise that policy ``stricter`` is at least as strict as policy ``than``."""

    stricter: PolicyRef
    than: PolicyRef

    def describe(self) -> str:
        return f"{self.stricter.name} is at least as strict as {self.than.name}"

    def check(self, own: CompiledPolicy, registry: DetectorRegistry | None = None) -> Strictness:
        """``stricter`` compared with ``than`` (``own`` stands for a reference without a
        policy); the promise holds when the result's ``a_at_least_as_strict``."""
        return compare_policies(self.stricter.compiled or own, self.than.compiled or own, registry)
