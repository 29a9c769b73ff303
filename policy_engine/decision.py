"""The decision record (POLICY_SPEC section 8)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from policy_engine.labels import Label
from policy_engine.model import Verdict, plain_number

DEFAULT_RULE = "default"
ON_ERROR_RULE = "on_error"


@dataclass(frozen=True, slots=True)
class DetectorFailure:
    """A detector that failed for an image (section 6)."""

    source: str
    error: str
    code: str = "detector-error"
    retryable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "error": self.error,
            "code": self.code,
            "retryable": self.retryable,
        }


@dataclass(frozen=True, slots=True)
class SkippedDetector:
    """A detector the lossless cascade did not call for an image, and why: no
    answer it could give could change the decision (``policy_engine.cascade``)."""

    source: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one label was decided: verdict, deciding rule and the threshold that fired."""

    label: Label
    verdict: Verdict
    rule: str
    threshold: float | None
    parent: str
    rule_file: str | None = None
    """The file that wrote the deciding rule, where it is a base the policy extends."""

    def to_dict(self) -> dict[str, Any]:
        record = self.label.to_dict()
        record["parent"] = self.parent
        record["verdict"] = self.verdict.value
        record["rule"] = self.rule
        if self.rule_file is not None:
            record["rule_file"] = self.rule_file
        if self.threshold is not None:
            record["threshold"] = plain_number(self.threshold)
        return record


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a decision is not ``allow``: a label or a detector failure."""

    verdict: Verdict
    rule: str
    source: str
    label: str | None = None
    parent: str | None = None
    confidence: float | None = None
    threshold: float | None = None
    error: str | None = None
    rule_file: str | None = None
    """The file that wrote the deciding rule, where it is a base the policy extends."""

    def sort_key(self) -> tuple[int, int, float, str, str, str, str, float, str]:
        # most severe first; within a severity, detector failures (nothing is known
        # about that image) before labels, then labels by confidence, highest first;
        # the rest only makes the order total, so input order never shows
        return (
            -self.verdict.severity,
            0 if self.error is not None else 1,
            -(self.confidence or 0.0),
            self.label or "",
            self.source,
            self.rule,
            self.parent or "",
            self.threshold or 0.0,
            self.error or "",
        )

    def describe(self, *, compact: bool = False) -> str:
        """The reason in one line, the one way every report shows it:
        ``block   Weapon Violence 97.3 >= 90  [rule weapons, rekognition-moderation]``
        or ``review  detector stub failed: offline  [rule on_error]`` (the verdict
        padded so that reasons line up); ``compact`` for a summary that holds
        several: ``block Weapon Violence 97.3 >= 90 [rule weapons]``."""
        if self.error is not None:
            what, where = f"detector {self.source} failed: {self.error}", f"rule {self.rule}"
        else:
            confidence = plain_number(round(self.confidence or 0.0, 2))
            threshold = plain_number(round(self.threshold or 0.0, 2))
            what = f"{self.label} {confidence} >= {threshold}"
            where = f"rule {self.rule}" if compact else f"rule {self.rule}, {self.source}"
        if compact:
            return f"{self.verdict.value} {what} [{where}]"
        return f"{self.verdict.value:<6}  {what}  [{where}]"

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"verdict": self.verdict.value, "rule": self.rule}
        if self.rule_file is not None:
            record["rule_file"] = self.rule_file
        if self.error is not None:
            record["source"] = self.source
            record["error"] = self.error
            return record
        record.update(
            label=self.label,
            parent=self.parent,
            source=self.source,
            confidence=self.confidence,
            threshold=None if self.threshold is None else plain_number(self.threshold),
        )
        return record


class Resolution(NamedTuple):
    """How a compiled policy decides every label with one key (source, model
    version, name, reported parent): computed once, then looked up."""

    block_from: float
    """The lowest confidence that blocks (infinity: none does)."""
    review_from: float
    """The lowest confidence that reviews (infinity: none does)."""
    rule: str
    """The deciding rule's id (``default`` when no rule selects the label)."""
    parent: str
    """The label's direct parent, as the record shows it ("" when none)."""
    rule_file: str | None = None
    """The file that wrote the deciding rule where it is not the policy's own
    (a base the policy ``extends``; POLICY_SPEC section 9)."""


class DecidingPolicy(Protocol):
    """What a decision needs of the compiled policy that made it."""

    @property
    def name(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def on_error(self) -> Verdict: ...
    @property
    def min_confidence(self) -> float: ...
    def resolve(self, label: Label) -> Resolution: ...


@dataclass(frozen=True, slots=True)
class _DecidedBy:
    """What a decision keeps of its policy when pickled: the policy's identity
    and how it decided each kept label, not the compiled policy itself (which
    holds the detector registry)."""

    name: str
    digest: str
    on_error: Verdict
    min_confidence: float
    resolutions: Mapping[tuple[str, str | None, str, str], Resolution]

    def resolve(self, label: Label) -> Resolution:
        return self.resolutions[label.key]


@dataclass(frozen=True, slots=True, eq=False)
class Decision:
    """What a policy decided for one image.

    ``verdict`` is computed while evaluating. Which rule decided each label,
    and so the reasons, are derived when asked for from the compiled policy's
    cached resolutions: evaluation itself is a look-up and two comparisons per
    label, and the record costs only those who read it.

    Two decisions are equal when they have the same verdict, labels, detector
    failures and detector metadata and were made by the same policy (name and
    digest). A decision pickles (for a process pool, a queue): it keeps the
    deciding policy's name, digest and its resolution of each kept label.
    """

    verdict: Verdict
    policy: DecidingPolicy = field(repr=False)
    labels: tuple[Label, ...] = ()
    failures: tuple[DetectorFailure, ...] = ()
    detectors: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    skipped: tuple[SkippedDetector, ...] = ()
    """The detectors the cascade did not call, each with why (not part of equality:
    which calls were saved never changes what was decided)."""

    @property
    def decision(self) -> Verdict:
        """Deprecated: :attr:`verdict` (``decision.decision`` read badly)."""
        warnings.warn(
            "Decision.decision is deprecated; use Decision.verdict",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.verdict

    def _identity(self) -> tuple[Any, ...]:
        return (
            self.verdict,
            self.policy.name,
            self.policy.digest,
            self.labels,
            self.failures,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return self._identity() == other._identity() and dict(self.detectors) == dict(
            other.detectors
        )

    def __hash__(self) -> int:
        return hash(self._identity())

    def __reduce__(self) -> tuple[Any, ...]:
        policy = _DecidedBy(
            self.policy.name,
            self.policy.digest,
            self.policy.on_error,
            self.policy.min_confidence,
            {label.key: self.policy.resolve(label) for label in self.kept},
        )
        detectors = {name: dict(meta) for name, meta in self.detectors.items()}
        return (
            _decision,
            (self.verdict, policy, self.labels, self.failures, detectors, self.skipped),
        )

    @property
    def policy_name(self) -> str:
        return self.policy.name

    @property
    def policy_digest(self) -> str:
        return self.policy.digest

    @property
    def on_error(self) -> Verdict:
        return self.policy.on_error

    @property
    def kept(self) -> tuple[Label, ...]:
        """The labels at or above ``min_confidence``: each has a verdict."""
        floor = self.policy.min_confidence
        return tuple(label for label in self.labels if label.confidence >= floor)

    @property
    def dropped(self) -> tuple[Label, ...]:
        """The labels below ``min_confidence``: no verdict (section 5)."""
        floor = self.policy.min_confidence
        return tuple(label for label in self.labels if label.confidence < floor)

    def outcomes(self) -> tuple[Outcome, ...]:
        """How each kept label was decided (its verdict, the deciding rule and the
        threshold that fired), in the order the detectors reported the labels."""
        found = []
        for label in self.kept:
            block_from, review_from, rule, parent, rule_file = self.policy.resolve(label)
            confidence = label.confidence
            if confidence >= block_from:
                verdict, threshold = Verdict.BLOCK, block_from
            elif confidence >= review_from:
                verdict, threshold = Verdict.REVIEW, review_from
            else:
                verdict, threshold = Verdict.ALLOW, None
            found.append(Outcome(label, verdict, rule, threshold, parent, rule_file))
        return tuple(found)

    def reasons(self) -> tuple[Reason, ...]:
        """Every review or block, labels and detector failures, most severe first."""
        return self._reasons(self.outcomes())

    def _reasons(self, outcomes: tuple[Outcome, ...]) -> tuple[Reason, ...]:
        found = [
            Reason(
                verdict=o.verdict,
                rule=o.rule,
                source=o.label.source,
                label=o.label.name,
                parent=o.parent,
                confidence=o.label.confidence,
                threshold=o.threshold,
                rule_file=o.rule_file,
            )
            for o in outcomes
            if o.verdict is not Verdict.ALLOW
        ]
        if self.on_error is not Verdict.ALLOW:
            found.extend(
                Reason(verdict=self.on_error, rule=ON_ERROR_RULE, source=f.source, error=f.error)
                for f in self.failures
            )
        return tuple(sorted(found, key=Reason.sort_key))

    def to_dict(self) -> dict[str, Any]:
        """The decision record as plain JSON-ready data."""
        outcomes = self.outcomes()
        record = {
            "decision": self.verdict.value,
            "reasons": [reason.to_dict() for reason in self._reasons(outcomes)],
            "labels": [outcome.to_dict() for outcome in outcomes],
            "dropped": [label.to_dict() for label in self.dropped],
            "errors": [failure.to_dict() for failure in self.failures],
            "detectors": {name: dict(meta) for name, meta in self.detectors.items()},
            "policy": {"name": self.policy_name, "digest": self.policy_digest},
        }
        if self.skipped:  # only where the cascade skipped one: other records stay as they were
            record["skipped"] = [skipped.to_dict() for skipped in self.skipped]
        return record


def _decision(
    verdict: Verdict,
    policy: DecidingPolicy,
    labels: tuple[Label, ...],
    failures: tuple[DetectorFailure, ...],
    detectors: Mapping[str, Mapping[str, Any]],
    skipped: tuple[SkippedDetector, ...] = (),
) -> Decision:
    """Rebuild an unpickled :class:`Decision`, its metadata read-only again."""
    frozen = MappingProxyType({name: MappingProxyType(meta) for name, meta in detectors.items()})
    return Decision(verdict, policy, labels, failures, frozen, skipped)
