"""Policy sets (POLICY_SPEC section 10): context dimensions, routes tried in
order, and deciding an image with the policy its context routes to.

A set is pure data once loaded (:class:`PolicySet`, :mod:`policy_engine.sets.model`);
:func:`check_policy_set_file` loads one (:mod:`policy_engine.sets.loading`) and
proves at load time that every combination reaches a route
(:func:`analyse_routes`, :mod:`policy_engine.sets.totality`); a
:class:`CompiledPolicySet` decides (:mod:`policy_engine.sets.deciding`), reading
content types from detectors' metadata (:mod:`policy_engine.sets.content_types`).
This module is where their public names are imported from.
"""

from __future__ import annotations

from policy_engine.sets.content_types import CONTENT_TYPES_KEY, content_types_of
from policy_engine.sets.deciding import (
    CompiledPolicySet,
    Routing,
    SetDecision,
    compile_policy_set,
)
from policy_engine.sets.loading import (
    PolicySetLoadResult,
    check_policy_or_set_file,
    check_policy_set_file,
    check_policy_set_text,
    is_policy_set_file,
    is_policy_set_text,
    load_policy_set,
    policy_set_schema,
)
from policy_engine.sets.model import (
    CONTENT_TYPE,
    DEFAULT_CONTENT_TYPES_AT,
    MAX_COMBINATIONS,
    Dimension,
    PolicySet,
    ResolvedContext,
    Route,
)
from policy_engine.sets.totality import (
    RouteAnalysis,
    analyse_routes,
    combination_count,
    describe_combination,
)

__all__ = [
    "CONTENT_TYPE",
    "CONTENT_TYPES_KEY",
    "DEFAULT_CONTENT_TYPES_AT",
    "MAX_COMBINATIONS",
    "CompiledPolicySet",
    "Dimension",
    "PolicySet",
    "PolicySetLoadResult",
    "ResolvedContext",
    "Route",
    "RouteAnalysis",
    "Routing",
    "SetDecision",
    "analyse_routes",
    "check_policy_or_set_file",
    "check_policy_set_file",
    "check_policy_set_text",
    "combination_count",
    "compile_policy_set",
    "content_types_of",
    "describe_combination",
    "is_policy_set_file",
    "is_policy_set_text",
    "load_policy_set",
    "policy_set_schema",
]
