"""What plugins are told about each decision (the ``policy_engine_decision_made`` hook)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from policy_engine.decision import Decision


@dataclass(frozen=True, slots=True)
class DecisionEvent:
    """One decision, as an audit log or a shadow comparison needs it.

    ``time`` is when it was made (UTC, ISO 8601); ``input`` is the name the
    caller knows the image by (a path, a URI) and ``key`` the image's
    SHA-256 (or its URI identity); ``context`` is what the caller passed with
    the check (an upload id, a user id), never image bytes or credentials.
    ``shadow`` is the candidate policy's decision on the same labels, when one
    is being shadowed. For a policy set, ``route`` is the route that decided
    (``index``, ``when``, ``policy``; ``context``: the dimension values it was
    routed by, defaults included) and ``policy_set`` the set's ``name`` and
    ``digest``; both are None for a single policy.
    """

    time: str
    input: str
    key: str
    decision: Decision
    context: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    shadow: Decision | None = None
    route: Mapping[str, Any] | None = None
    policy_set: Mapping[str, str] | None = None

    @property
    def disagrees(self) -> bool:
        """Whether a shadowed candidate decided otherwise."""
        return self.shadow is not None and self.shadow.verdict is not self.decision.verdict
