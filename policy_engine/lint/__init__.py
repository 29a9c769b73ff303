"""The policy linter (POLICY_SPEC section 7): warnings about a policy, and one
kind of error, a rule's name that no taxonomy of the detectors it can see
knows (it would switch the rule off in silence).

Warnings never stop a policy from loading. Each finding has a stable code
(registered, with every other code, in
:data:`~policy_engine.diagnostics.DIAGNOSTIC_CODES`), a message that says
what to do, and the position of the offending node. An unknown rule name is
an error unless its line says ``# policy-engine: ignore[unknown-name]``;
then, and where a detector the rule can see has no taxonomy, a warning.

The checks, by what they need:

- :mod:`~policy_engine.lint.settings`: the policy alone (thresholds, scale,
  ``on_error``, no detectors) and the installed detectors' own settings
  checks and names (sources);
- :mod:`~policy_engine.lint.names`: rule and ``labels:`` names against the
  installed detectors' taxonomies;
- :mod:`~policy_engine.lint.decisions`: what each rule decides, on the exact
  decision of each label the taxonomies know (no sampling; a warning only
  where the taxonomies prove it).

Checks that need the installed detectors' taxonomies run only with a
registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from policy_engine.diagnostics import Diagnostic, Severity
from policy_engine.lint.context import LintContext
from policy_engine.model import Policy
from policy_engine.source import SourceMap

if TYPE_CHECKING:
    from policy_engine.plugins import DetectorRegistry


def lint_policy(
    policy: Policy,
    source_map: SourceMap,
    *,
    registry: DetectorRegistry | None = None,
    data: Any = None,
    rule_indexes: Sequence[int] | None = None,
    label_indexes: Sequence[int] | None = None,
    decisions: bool = True,
    acknowledged: Mapping[int, frozenset[str]] | None = None,
    acknowledged_in: Mapping[str, Mapping[int, frozenset[str]]] | None = None,
) -> list[Diagnostic]:
    """Every finding of the linter about ``policy``: warnings, and the errors of
    section 7 (a rule's name no taxonomy it can see knows).

    ``data`` is the document as parsed (to see names as written, before white
    space is tidied); ``rule_indexes`` / ``label_indexes`` give each rule's and
    ``labels:`` entry's index in the file (when some were dropped as invalid).
    ``acknowledged`` gives, by line, the codes its ``# policy-engine:
    ignore[...]`` comment names (:func:`~policy_engine.loader.acknowledged_codes`);
    the linter applies them to unknown names itself, as an acknowledged
    unknown name is still a warning; ``acknowledged_in`` gives them by file, for
    nodes a base the policy ``extends`` wrote. With ``decisions`` false, what each rule
    decides and whether the policy names detectors are not checked: the loader
    does so when the policy has errors, so that a broken file reports its
    errors, not guesses about the whole.
    """
    from policy_engine.lint import names, settings

    context = LintContext(
        policy,
        source_map,
        registry,
        data,
        tuple(rule_indexes) if rule_indexes is not None else tuple(range(len(policy.rules))),
        tuple(label_indexes) if label_indexes is not None else tuple(range(len(policy.labels))),
        acknowledged or {},
        acknowledged_in or {},
    )
    settings.check_floors(context)
    settings.check_scale(context)
    settings.check_on_error(context)
    if decisions:
        settings.check_no_detectors(context)
    if registry is not None:
        settings.check_sources(context, registry)
        settings.check_detector_settings(context, registry)
        names.check_names(context, registry)
        if decisions and not any(d.severity is Severity.ERROR for d in context.found):
            from policy_engine.lint.decisions import check_decisions

            check_decisions(context, registry)
    return context.found
