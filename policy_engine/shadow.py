"""Shadow evaluation: a candidate policy decides the same labels as the active one.

The candidate never runs detectors of its own. The active policy's detectors
run once per image; both compiled policies then evaluate those labels and
failures, so a shadow costs no call. Disagreements reach every
``policy_engine_decision_made`` hook (the event's ``shadow``), and the
built-in :class:`ShadowDisagreementLog` writes one ``logging`` warning for each.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from policy_engine.compiler import CompiledPolicy
from policy_engine.decision import Decision, DetectorFailure
from policy_engine.detectors import DetectorResult
from policy_engine.diagnostics import Diagnostic
from policy_engine.errors import PolicyLoadError
from policy_engine.events import DecisionEvent
from policy_engine.hookspecs import hookimpl
from policy_engine.loader import check_policy_file
from policy_engine.plugins import DetectorRegistry
from policy_engine.redaction import loggable

logger = logging.getLogger("policy_engine.shadow")


class ShadowPolicyError(PolicyLoadError):
    """The candidate (shadow) policy does not load; ``diagnostics`` say why."""

    def __init__(self, path: str, diagnostics: Sequence[Diagnostic]) -> None:
        super().__init__(diagnostics)
        self.path = path
        details = "\n".join(d.render() for d in self.diagnostics)
        self.args = (f"the shadow (candidate) policy {path} does not load:\n{details}",)


def load_candidate(path: str | os.PathLike[str], registry: DetectorRegistry) -> CompiledPolicy:
    """Load and compile a candidate policy; raise :class:`ShadowPolicyError` with every error."""
    result = check_policy_file(path, registry=registry)
    if result.policy is None or result.errors:
        raise ShadowPolicyError(str(path), result.errors or result.diagnostics)
    return CompiledPolicy(result.policy, registry.taxonomy_for)


def evaluate_on(
    compiled: CompiledPolicy,
    results: Sequence[DetectorResult],
    failures: Sequence[DetectorFailure],
) -> Decision:
    """What ``compiled`` decides for labels and failures another policy's detectors found
    (the same pooling as :meth:`policy_engine.Engine.decide`)."""
    labels = [label for result in results for label in result.labels]
    metadata = {result.source: result.metadata for result in results if result.metadata}
    return compiled.evaluate(labels, failures, metadata)


class ShadowDisagreementLog:
    """Built-in hook: a ``logging`` warning for each decision the candidate disagrees with."""

    @hookimpl
    def policy_engine_decision_made(self, event: DecisionEvent) -> None:
        shadow = event.shadow
        if shadow is None or not event.disagrees:
            return
        decision = event.decision
        logger.warning(
            "shadow disagreement for %s (key %s): active policy %s (%s) decided %s, "
            "candidate %s (%s) decided %s",
            loggable(event.input),
            event.key,
            decision.policy_name,
            decision.policy_digest,
            decision.verdict.value,
            shadow.policy_name,
            shadow.policy_digest,
            shadow.verdict.value,
        )
