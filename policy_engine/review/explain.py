"""Explaining a decision: for each label, every rule that selects it with its
rank and distance, the winner and the comparison that fired.
``policy-engine explain`` prints it, and a failed test case shows it for its
labels."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from policy_engine.compiler import Candidate, CompiledPolicy
from policy_engine.decision import DEFAULT_RULE, ON_ERROR_RULE, Decision, DetectorFailure, Reason
from policy_engine.labels import Label
from policy_engine.model import Body, Verdict, plain_number

if TYPE_CHECKING:
    from policy_engine.plugins import DetectorRegistry

RANK_NAMES = ("name+parent", "name", "parent")
"""Candidate.rank 0, 1, 2 as shown to people (POLICY_SPEC section 4)."""


def _number(value: float) -> str:
    return str(plain_number(value))


def comparison(body: Body, confidence: float, floor: float) -> tuple[Verdict | None, str]:
    """The label's verdict (None when dropped) and the comparison that gave it:
    ``97.3 >= 90 (block_at)``, or when nothing fired ``54 < 60 (review_at)``."""
    shown = _number(confidence)
    if confidence < floor:
        return None, f"{shown} < {_number(floor)} (min_confidence): dropped"
    if body.action is Verdict.ALLOW:
        return Verdict.ALLOW, "action: allow"
    block_from, review_from = body.fires_at
    if confidence >= block_from:
        what = "action: block" if body.action is not None else "block_at"
        return Verdict.BLOCK, f"{shown} >= {_number(block_from)} ({what})"
    if confidence >= review_from:
        what = "action: review" if body.action is not None else "review_at"
        return Verdict.REVIEW, f"{shown} >= {_number(review_from)} ({what})"
    lowest, what = min((review_from, "review_at"), (block_from, "block_at"))
    if math.isinf(lowest):  # pragma: no cover - a body always sets a band
        return Verdict.ALLOW, "no threshold"
    return Verdict.ALLOW, f"{shown} < {_number(lowest)} ({what})"


@dataclass(frozen=True, slots=True)
class CandidateTrace:
    """A rule that selects the label: how specific it is, and whether it decides."""

    rule: str
    match: str
    rank: str
    distance: int
    winner: bool
    file: str | None = None
    """The file that wrote the rule, where it is a base the policy extends."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rule": self.rule,
            "match": json.loads(self.match),
            "rank": self.rank,
            "distance": self.distance,
            "winner": self.winner,
        }
        if self.file is not None:
            data["file"] = self.file
        return data


@dataclass(frozen=True, slots=True)
class LabelTrace:
    """How one label is decided, step by step."""

    label: Label
    parent: str
    lineage: tuple[str, ...]
    taxonomy: str | None
    candidates: tuple[CandidateTrace, ...]
    rule: str
    verdict: Verdict | None
    """None when the label is dropped (below min_confidence)."""
    comparison: str
    rule_file: str | None = None
    """The file that wrote the deciding rule, where it is a base the policy extends."""

    def lines(self) -> list[str]:
        label = self.label
        parent = f"parent {self.parent}" if self.parent else "no parent"
        head = f"{label.name} ({parent}; {label.source}; confidence {_number(label.confidence)})"
        lines = [head]
        if len(self.lineage) > 1:
            lines.append(f"  hierarchy: {' > '.join(self.lineage)}")
        if self.taxonomy:
            lines.append(f"  taxonomy: {self.taxonomy}")
        if self.candidates:
            lines.append("  rules that select it, most specific first:")
            for c in self.candidates:
                mark = "*" if c.winner else " "
                written = f" (in {c.file})" if c.file else ""
                lines.append(
                    f"   {mark} {c.rule}{written}  {c.match}  rank {c.rank}, "
                    f"distance {c.distance}" + ("  <- decides" if c.winner else "")
                )
        else:
            lines.append("  no rule selects it: the policy's default decides")
        verdict = "dropped" if self.verdict is None else self.verdict.value
        written = f" in {self.rule_file}" if self.rule_file else ""
        lines.append(f"  {verdict}: {self.comparison}  [rule {self.rule}{written}]")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label.to_dict(),
            "parent": self.parent,
            "lineage": list(self.lineage),
            "taxonomy": self.taxonomy,
            "candidates": [c.to_dict() for c in self.candidates],
            "rule": self.rule,
            **({"rule_file": self.rule_file} if self.rule_file is not None else {}),
            "verdict": None if self.verdict is None else self.verdict.value,
            "dropped": self.verdict is None,
            "comparison": self.comparison,
        }


@dataclass(frozen=True, slots=True)
class DecisionTrace:
    """A decision and how each of its labels was decided."""

    decision: Decision
    labels: tuple[LabelTrace, ...]
    """The labels kept (at or above min_confidence), in the order given."""
    dropped: tuple[LabelTrace, ...]

    def lines(self) -> list[str]:
        decision = self.decision
        lines = [
            f"decision: {decision.verdict.value}  (policy {decision.policy_name}, "
            f"{decision.policy_digest[:19]})"
        ]
        for trace in self.labels:
            lines.extend(trace.lines())
        if self.dropped:
            floor = _number(decision.policy.min_confidence)
            lines.append(f"dropped below min_confidence {floor}:")
            lines.extend(
                f"  {t.label.name} ({t.label.source}): {t.comparison}" for t in self.dropped
            )
        if decision.failures:
            lines.append("detector errors:")
            errors = [r for r in decision.reasons() if r.error is not None]
            if not errors:  # on_error: allow gives no reasons; the failures still show
                errors = [
                    Reason(Verdict.ALLOW, ON_ERROR_RULE, f.source, error=f.error)
                    for f in decision.failures
                ]
            lines.extend(f"  {r.describe()}" for r in errors)
        return lines

    def to_dict(self) -> dict[str, Any]:
        record = self.decision.to_dict()
        return {
            "decision": record["decision"],
            "policy": record["policy"],
            "labels": [t.to_dict() for t in self.labels],
            "dropped": [t.to_dict() for t in self.dropped],
            "errors": record["errors"],
            "reasons": record["reasons"],
        }


def trace_label(
    compiled: CompiledPolicy, label: Label, registry: DetectorRegistry | None = None
) -> LabelTrace:
    """How ``compiled`` decides ``label``: every selecting rule, the winner, the comparison."""
    explanation = compiled.explain(label)
    taxonomy = registry.taxonomy_for(label.source, label.model_version) if registry else None
    canonical = compiled.canonical_key(taxonomy)
    written = {canonical(d.name): d.name for d in compiled.policy.labels}
    written.update({canonical(d.parent): d.parent for d in compiled.policy.labels if d.parent})

    def display(key: str) -> str:
        if key == explanation.lineage.key:
            return label.name
        found = taxonomy.display_name(key) if taxonomy is not None else None
        return found or written.get(key) or key

    winner = explanation.winner
    verdict, compared = comparison(
        explanation.body, label.confidence, compiled.policy.min_confidence
    )
    return LabelTrace(
        label=label,
        parent=explanation.lineage.parent_display,
        lineage=tuple(display(key) for key in explanation.lineage.chain),
        taxonomy=taxonomy.id if taxonomy is not None else None,
        candidates=tuple(_candidate(c, c.rule is winner) for c in explanation.candidates),
        rule=winner.id if winner is not None else DEFAULT_RULE,
        verdict=verdict,
        comparison=compared,
        rule_file=winner.file if winner is not None else None,
    )


def _candidate(candidate: Candidate, winner: bool) -> CandidateTrace:
    return CandidateTrace(
        candidate.rule.id,
        candidate.rule.match.describe(),
        RANK_NAMES[candidate.rank],
        candidate.distance,
        winner,
        candidate.rule.file,
    )


def explain_decision(
    compiled: CompiledPolicy,
    labels: Iterable[Label],
    failures: Iterable[DetectorFailure] = (),
    registry: DetectorRegistry | None = None,
) -> DecisionTrace:
    """Evaluate and explain: the decision, and a trace of every label."""
    labels = tuple(labels)
    decision = compiled.evaluate(labels, tuple(failures))
    traces = [trace_label(compiled, label, registry) for label in labels]
    return DecisionTrace(
        decision,
        tuple(t for t in traces if t.verdict is not None),
        tuple(t for t in traces if t.verdict is None),
    )
