"""What plugins are told about each decision (the ``policy_engine_decision_made`` hook)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from policy_engine.decision import Decision


@dataclass(frozen=True, slots=True)
class DetectorCall:
    """What asking one detector about one image cost (for metrics).

    ``seconds`` is how long the answer took: the call itself when one was
    made (a rate limit's wait excluded), else the cache look-up or the check
    that refused the image (0 for an image refused before any detector ran).
    ``cached`` is True when a recorded answer stood in for the call.
    ``called`` is True when the detector's ``detect`` ran, and for a remote
    detector a request went out (what its service bills): False for a cached
    answer and for an image refused before the call. ``error_code`` is the
    failure's stable code (``timeout``, ``throttled``, ...), None when the
    detector answered.
    """

    detector: str
    seconds: float
    cached: bool = False
    called: bool = False
    error_code: str | None = None


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
    ``digest``; both are None for a single policy. ``detector_calls`` has one
    :class:`DetectorCall` per detector asked about the image, in the order
    they were asked.
    """

    time: str
    input: str
    key: str
    decision: Decision
    context: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    shadow: Decision | None = None
    route: Mapping[str, Any] | None = None
    policy_set: Mapping[str, str] | None = None
    detector_calls: tuple[DetectorCall, ...] = ()

    @property
    def calls(self) -> int:
        """How many detector calls deciding the image made (cached answers excluded)."""
        return sum(call.called for call in self.detector_calls)

    @property
    def cache_hits(self) -> int:
        """How many detectors were answered from the cache instead of called."""
        return sum(call.cached for call in self.detector_calls)

    @property
    def disagrees(self) -> bool:
        """Whether a shadowed candidate decided otherwise."""
        return self.shadow is not None and self.shadow.verdict is not self.decision.verdict
