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
from typing import TYPE_CHECKING

from policy_engine.compiler import CompiledPolicy
from policy_engine.diagnostics import Position, error
from policy_engine.errors import ShadowPolicyError
from policy_engine.events import DecisionEvent
from policy_engine.hookspecs import hookimpl
from policy_engine.loader import check_policy_file
from policy_engine.log_fields import fields
from policy_engine.plugins import DetectorRegistry
from policy_engine.redaction import loggable

if TYPE_CHECKING:
    from policy_engine.policy_set import CompiledPolicySet

logger = logging.getLogger("policy_engine.shadow")


def load_candidate(
    path: str | os.PathLike[str], registry: DetectorRegistry, *, serving_set: bool = False
) -> CompiledPolicy | CompiledPolicySet:
    """Load and compile a candidate policy, or a candidate set against a serving
    set; raise :class:`ShadowPolicyError` with every error. A candidate must be
    of the serving kind: a policy against a set (or a set against a policy)
    would have no route to compare with, so it is refused rather than guessed."""
    from policy_engine.policy_set import (
        CompiledPolicySet,
        check_policy_set_file,
        is_policy_set_file,
    )

    is_set = is_policy_set_file(path)
    if is_set != serving_set:
        serving, candidate = (
            ("a policy set", "a policy") if serving_set else ("a policy", "a policy set")
        )
        found = error(
            "shadow-kind-mismatch",
            f"the candidate is {candidate} but {serving} is serving: shadow a set with a set",
            str(path),
            Position(),
        )
        raise ShadowPolicyError(str(path), (found,))
    if is_set:
        loaded = check_policy_set_file(path, registry=registry)
        if loaded.policy_set is None or loaded.errors:
            raise ShadowPolicyError(str(path), loaded.errors or loaded.diagnostics)
        return CompiledPolicySet(loaded.policy_set, registry)
    result = check_policy_file(path, registry=registry)
    if result.policy is None or result.errors:
        raise ShadowPolicyError(str(path), result.errors or result.diagnostics)
    return CompiledPolicy(result.policy, registry.taxonomy_for)


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
            extra=fields(
                "shadow-disagreement",
                input=loggable(event.input),
                key=event.key,
                decision=decision.verdict.value,
                policy=decision.policy_name,
                policy_digest=decision.policy_digest,
                shadow_decision=shadow.verdict.value,
                shadow_policy=shadow.policy_name,
                shadow_digest=shadow.policy_digest,
            ),
        )
