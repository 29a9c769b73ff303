"""Lint checks of what each rule decides, on the exact decision of each label
the installed taxonomies and ``labels:`` know (the decision table's label
universe, :func:`~policy_engine.review.table.labels_of`): no sampling, and a
warning only where the taxonomies prove it.

- ``rule-never-decides``: every label a rule selects is decided by another;
- ``narrowing-rule``: a rule narrows a category rule and leaves unset a band
  the category rule sets (rules do not combine);
- ``carve-out-parent``: a child carve-out (``action: allow``) whose parent
  label, reported alongside, is still decided by a stricter rule.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from policy_engine.compiler import Candidate, CompiledPolicy, Explanation
from policy_engine.detectors import taxonomies_of
from policy_engine.labels import Label
from policy_engine.lint.context import LintContext, examples, number, quoted
from policy_engine.model import Rule, Verdict
from policy_engine.names import name_key, tidy_name
from policy_engine.review.table import (
    Band,
    bands_for,
    labels_of,
    reported_parent,
    source_taxonomies,
)
from policy_engine.taxonomy import Taxonomy

if TYPE_CHECKING:
    from policy_engine.plugins import DetectorRegistry


@dataclass(frozen=True, slots=True)
class _Decided:
    """A label of the universe, the taxonomy it was decided under, and how."""

    label: Label
    taxonomy: Taxonomy | None
    explanation: Explanation


def check_decisions(context: LintContext, registry: DetectorRegistry) -> None:
    compiled = CompiledPolicy(context.policy, registry.taxonomy_for)
    everywhere = _decided(compiled, registry, all_taxonomies=True)
    _never_decides(context, registry, everywhere)
    current = _under_current_taxonomies(everywhere, registry)
    _narrowing(context, current)
    _carve_outs(context, compiled, current)


def _universe(
    compiled: CompiledPolicy, registry: DetectorRegistry, all_taxonomies: bool
) -> Iterator[tuple[Label, Taxonomy | None]]:
    """Every label a detector may report, as it would report it (the decision
    table's labels, without made-up ones under categories); and for a detector
    without any taxonomy, any name a rule mentions (no parent). A source no rule
    can select (every rule names another) is left out: the default decides its
    labels, and no check reads a label no rule selects."""
    rule_sources = {rule.match.source for rule in compiled.policy.rules}
    for source in registry.names():
        if None not in rule_sources and source not in rule_sources:
            continue
        for taxonomy in source_taxonomies(source, registry, all_taxonomies):
            canonical = compiled.canonical_key(taxonomy)
            seen: set[str] = set()
            for name, parent in labels_of(
                compiled, source, taxonomy, unknown_under_categories=False
            ):
                seen.add(canonical(name))
                yield Label(name=name, parent=parent, confidence=100.0, source=source), taxonomy
            if taxonomy is not None or taxonomies_of(registry.get(source)):
                continue
            for rule in compiled.policy.rules:
                for mentioned in (rule.match.name, rule.match.parent):
                    key = canonical(mentioned) if mentioned and mentioned.strip() else ""
                    if mentioned and key and key not in seen:
                        seen.add(key)
                        yield Label(tidy_name(mentioned), 100.0, source), taxonomy


def _decided(
    compiled: CompiledPolicy, registry: DetectorRegistry, all_taxonomies: bool
) -> list[_Decided]:
    return [
        _Decided(label, taxonomy, compiled.explain_in(label, taxonomy))
        for label, taxonomy in _universe(compiled, registry, all_taxonomies)
    ]


def _under_current_taxonomies(
    decided: Sequence[_Decided], registry: DetectorRegistry
) -> list[_Decided]:
    """Of labels decided under every taxonomy, those under the current ones, in the
    same order (each source's taxonomies are walked sorted by id either way): what
    ``_decided(..., all_taxonomies=False)`` gives, without deciding them again."""
    current = {
        source: {id(t) for t in source_taxonomies(source, registry, False)}
        for source in registry.names()
    }
    return [item for item in decided if id(item.taxonomy) in current[item.label.source]]


# -- rules that never decide ------------------------------------------------


def _never_decides(
    context: LintContext, registry: DetectorRegistry, decided: Sequence[_Decided]
) -> None:
    selected: dict[int, list[str]] = {}
    winners: dict[int, set[str]] = {}
    decides: set[int] = set()
    for item in decided:
        winner = item.explanation.winner
        if winner is not None:
            decides.add(id(winner))
        for candidate in item.explanation.candidates:
            selected.setdefault(id(candidate.rule), []).append(item.label.name)
            if winner is not None and candidate.rule is not winner:
                winners.setdefault(id(candidate.rule), set()).add(winner.id)
    for position, rule in enumerate(context.policy.rules):
        match = rule.match
        if match.source is not None and match.source not in registry:
            continue  # unknown-source
        if id(rule) in decides:
            continue
        labels = selected.get(id(rule))
        path = context.rule_path(position)
        if labels:
            others = sorted(winners.get(id(rule), set()))
            context.warn(
                "rule-never-decides",
                f"rule '{rule.id}' never decides a label: every label the installed "
                f"taxonomies and labels: give it ({examples(labels)}) is decided by a more "
                f"specific rule ({quoted(others)}); remove it or change its match",
                path,
            )
            continue
        if match.name is None or match.parent is None:
            continue  # names nobody knows: unknown-name / unknown-parent say it
        evidence = _parents_of(context, registry, match.name, match.parent, match.source)
        if evidence is None:
            continue
        places = "; ".join(
            f"{taxonomy_id} puts it under {quoted(sorted(parents)) or 'nothing (the top)'}"
            for taxonomy_id, parents in evidence
        )
        context.warn(
            "rule-never-decides",
            f"rule '{rule.id}' never decides a label: '{match.name}' is never under "
            f"'{match.parent}' ({places}; and no labels: entry puts it under "
            f"'{match.parent}'); match {{name: {match.name}}} alone, or place it under "
            f"'{match.parent}' in labels:",
            path,
        )


def _parents_of(
    context: LintContext, registry: DetectorRegistry, name: str, parent: str, source: str | None
) -> list[tuple[str, set[str]]] | None:
    """The parents the installed taxonomies give ``name`` (by taxonomy), or None
    when one of them may report it under another parent or does not know it."""
    parent_key = name_key(parent)
    if (name_key(name), parent_key) in context.placements:
        return None
    sources = _visible_sources(context, registry, source)
    if not sources:
        return None
    evidence: list[tuple[str, set[str]]] = []
    for src in sources:
        taxonomies = taxonomies_of(registry.get(src))
        if not taxonomies:
            continue  # reports no parents: only labels: could place it
        knows = False
        for taxonomy in taxonomies:
            canonical = taxonomy.canonical_key(name)
            if not taxonomy.knows(canonical):
                continue
            knows = True
            above = taxonomy.parent_key(canonical) or ""
            display = (taxonomy.display_name(above) or above) if above else ""
            evidence.append((taxonomy.id, {display} if display else set()))
        if not knows:
            return None  # a label this detector's taxonomies do not know could be anywhere
    if not evidence or any(
        name_key(place) == parent_key for _, places in evidence for place in places
    ):
        return None
    return evidence


def _visible_sources(
    context: LintContext, registry: DetectorRegistry, source: str | None
) -> Sequence[str]:
    """The installed detectors whose labels a rule can see (spec section 7): its
    ``source``, or the policy's detectors, or every installed one where the
    policy names none."""
    if source is not None:
        return (source,)
    if context.policy.detectors:
        return [name for name in context.policy.detectors if name in registry]
    return registry.names()


# -- narrowing rules ----------------------------------------------------------


def _narrowing(context: LintContext, decided: Sequence[_Decided]) -> None:
    """A rule that wins over a category rule for some labels and leaves unset a
    band the category rule sets: those labels are never blocked (reviewed)."""
    narrowed: dict[tuple[int, int, str], list[str]] = {}
    rules: dict[tuple[int, int, str], tuple[Rule, Rule, float]] = {}
    for item in decided:
        winner = item.explanation.winner
        if winner is None or winner.body.action is not None:
            continue
        category = _overridden_category(item.explanation.candidates)
        if category is None:
            continue
        self_label = (
            category.distance == 0 and winner.match.parent is None and winner.match.name is not None
        )
        if self_label:
            continue
        fires_at = category.rule.body.fires_at
        for key, fires in (("block_at", fires_at.block_from), ("review_at", fires_at.review_from)):
            if getattr(winner.body, key) is None and fires <= 100:
                slot = (id(winner), id(category.rule), key)
                narrowed.setdefault(slot, []).append(item.label.name)
                rules[slot] = (winner, category.rule, fires)
    for slot, labels in narrowed.items():
        rule, category_rule, fires = rules[slot]
        key = slot[2]
        verb = "blocks" if key == "block_at" else "reviews"
        context.warn(
            "narrowing-rule",
            f"rule '{rule.id}' narrows category rule '{category_rule.id}' "
            f"({category_rule.match.describe()}) but leaves {key} unset: '{category_rule.id}' "
            f"{verb} from {number(fires)}, yet the labels '{rule.id}' decides "
            f"({examples(labels)}) are never "
            f"{'blocked' if key == 'block_at' else 'reviewed'}, because "
            f"rules do not combine; set {key} on '{rule.id}' (e.g. {number(fires)}) if they "
            "should be",
            context.path_of_rule(rule),
        )


def _overridden_category(candidates: Sequence[Candidate]) -> Candidate | None:
    """The category rule (``parent`` alone) that would decide the label were it not
    for the winner: the first one after the winner, less specific than it."""
    if not candidates:
        return None
    winner = candidates[0]
    for candidate in candidates[1:]:
        if candidate.rank == 2 and candidate.rule is not winner.rule:
            return candidate
    return None


# -- carve-outs under a stricter parent ---------------------------------------


def _carve_outs(
    context: LintContext, compiled: CompiledPolicy, decided: Sequence[_Decided]
) -> None:
    """A rule that allows a child label whose parent, which the detector reports
    alongside, is decided by a rule stricter somewhere: the image is still
    reviewed or blocked (POLICY_SPEC section 5)."""
    floor = context.policy.min_confidence
    found: dict[tuple[int, str], tuple[Rule, str, str, str | None, Band]] = {}
    for item in decided:
        winner, lineage = item.explanation.winner, item.explanation.lineage
        if winner is None or winner.body.action is not Verdict.ALLOW:
            continue
        # the detector reports the parent alongside only where its taxonomy
        # gives one (a labels: placement is the policy's, not the detector's)
        if not (item.label.parent and lineage.direct_parent):
            continue
        parent_key, parent_name = lineage.direct_parent, lineage.parent_display
        parent = Label(
            name=parent_name,
            parent=reported_parent(item.taxonomy, parent_key),
            confidence=100.0,
            source=item.label.source,
        )
        parent_decided = compiled.explain_in(parent, item.taxonomy)
        if parent_decided.winner is winner:
            continue
        stricter = _stricter_somewhere(
            bands_for(winner.body, floor), bands_for(parent_decided.body, floor)
        )
        if stricter is not None:
            parent_rule = parent_decided.winner.id if parent_decided.winner is not None else None
            found.setdefault(
                (id(winner), parent_key),
                (winner, item.label.name, parent_name, parent_rule, stricter),
            )
    for rule, child, parent_name, parent_rule, band in found.values():
        verb = "blocks" if band.verdict is Verdict.BLOCK else "reviews"
        decider = "the default" if parent_rule is None else f"rule '{parent_rule}'"
        context.warn(
            "carve-out-parent",
            f"rule '{rule.id}' allows '{child}', but its parent label '{parent_name}', "
            f"which the detector reports alongside, is decided by {decider}, which "
            f"{verb} from {number(band.low)}: the image is still "
            f"{'blocked' if band.verdict is Verdict.BLOCK else 'reviewed'}; add "
            f"{{name: {parent_name}, action: allow}} if the parent alone should not count "
            "(POLICY_SPEC section 5)",
            context.path_of_rule(rule),
        )


def _stricter_somewhere(child: Sequence[Band], parent: Sequence[Band]) -> Band | None:
    """A band of ``parent`` more severe than ``child`` at some confidence, if any
    (the first, lowest; exact, band edges included as the bands say)."""
    for theirs in parent:
        for ours in child:
            if theirs.verdict.severity <= ours.verdict.severity:
                continue
            low, high = max(ours.low, theirs.low), min(ours.high, theirs.high)
            if low < high or (low == high and ours.contains(low) and theirs.contains(low)):
                return theirs
    return None
