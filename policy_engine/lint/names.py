"""Lint checks of names: every rule's ``match`` name and parent, and every
``labels:`` entry, against the installed detectors' taxonomies.

- a name no taxonomy the rule can see nor ``labels:`` knows: ``unknown-name``
  / ``unknown-parent``, an error (a warning where acknowledged, or where a
  detector the rule sees has no taxonomy and may report any name);
- a name only an older taxonomy knows: ``model-6-name``. A detector's current
  taxonomy is ``detector.taxonomy(None)``; any other of
  ``detector.taxonomies()`` is an older model's (for Rekognition, model 6).
  Where the detector says what the current model calls it
  (:meth:`~policy_engine.detectors.Detector.taxonomy_migration`), the message
  suggests those names; otherwise the nearest current spelling;
- a spelling that differs from the taxonomy's in case or spaces: ``name-spelling``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from policy_engine.detectors import current_taxonomy, taxonomies_of
from policy_engine.lint.context import UNKNOWN_NAME, LintContext, nearest_hint, quoted
from policy_engine.names import name_key, nearest_current_name, tidy_name
from policy_engine.source import JsonPath
from policy_engine.taxonomy import Taxonomy

if TYPE_CHECKING:
    from policy_engine.detectors import Detector
    from policy_engine.plugins import DetectorRegistry


@dataclass(frozen=True, slots=True)
class _Known:
    """A label name some taxonomy knows: the spellings, and where."""

    spellings: tuple[str, ...]
    current: bool
    """Whether some detector's current taxonomy (or an alias of it) knows it."""
    older: tuple[tuple[Detector, Taxonomy], ...]
    """Older taxonomies that know it, with their detector."""


@dataclass(frozen=True, slots=True)
class _Sight:
    """The detectors whose labels a rule can see, and the names their taxonomies know."""

    detectors: tuple[str, ...]
    keys: frozenset[str]
    """Name keys of every label their taxonomies (any model) know, aliases included."""
    spellings: tuple[str, ...]
    """Those labels as the taxonomies spell them (for suggestions)."""
    without: tuple[str, ...]
    """Those of the detectors that have no taxonomy: their labels may carry any name."""


def check_names(context: LintContext, registry: DetectorRegistry) -> None:
    _NameCheck(context, registry).run()


def _known_names(registry: DetectorRegistry) -> dict[str, _Known]:
    spellings: dict[str, list[str]] = {}
    current: set[str] = set()
    older: dict[str, list[tuple[Detector, Taxonomy]]] = {}
    for detector in registry.detectors():
        now = current_taxonomy(detector)
        for taxonomy in taxonomies_of(detector):
            is_current = now is not None and taxonomy.id == now.id
            names = [(k, taxonomy.display_name(k) or k) for k in list(taxonomy.keys())]
            names += [(name_key(a), a) for a in taxonomy.aliases]
            for key, display in names:
                listed = spellings.setdefault(key, [])
                if is_current:
                    listed.insert(0, display)
                    current.add(key)
                else:
                    listed.append(display)
                    older.setdefault(key, []).append((detector, taxonomy))
    return {
        key: _Known(tuple(dict.fromkeys(names)), key in current, tuple(older.get(key, ())))
        for key, names in spellings.items()
    }


def _successors(detector: Detector) -> dict[str, tuple[str, ...]]:
    """What the detector's older taxonomies' names became in its current one,
    keyed by name key (:meth:`Detector.taxonomy_migration`)."""
    current = current_taxonomy(detector)
    if current is None:
        return {}
    found: dict[str, tuple[str, ...]] = {}
    for old in taxonomies_of(detector):
        if old is current:
            continue
        try:
            mapping = detector.taxonomy_migration(old, current)
        except Exception:  # a plugin's optional extra must never break loading
            continue
        for name, successors in (mapping or {}).items():
            found[name_key(name)] = tuple(str(n) for n in successors)
    return found


def _sight(context: LintContext, registry: DetectorRegistry, source: str | None) -> _Sight | None:
    """The detectors whose labels a rule with ``source`` can see: its source,
    or the policy's detectors (every installed one where the policy names
    none: ``evaluate``, ``test`` and a replay bring labels of any). None
    where they are not installed (``unknown-source``, ``unknown-detector``
    say so)."""
    if source is not None:
        if source not in registry:
            return None
        names: Sequence[str] = (source,)
    elif context.policy.detectors:
        names = [n for n in context.policy.detectors if n in registry]
        if not names:
            return None
    else:
        names = registry.names()
    if not names:  # no detector at all: nothing to check a name against
        return None
    keys: set[str] = set()
    spellings: dict[str, str] = {}
    without: list[str] = []
    for name in names:
        taxonomies = taxonomies_of(registry.get(name))
        if not taxonomies:
            without.append(name)
        for taxonomy in taxonomies:
            known = list(taxonomy.keys())
            keys.update(known)
            for key in known:
                spellings.setdefault(key, taxonomy.display_name(key) or key)
            for alias in taxonomy.aliases:
                keys.add(name_key(alias))
    return _Sight(tuple(names), frozenset(keys), tuple(spellings.values()), tuple(without))


class _NameCheck:
    """The names of one policy against one registry's taxonomies."""

    def __init__(self, context: LintContext, registry: DetectorRegistry) -> None:
        self.context = context
        self.registry = registry
        policy = context.policy
        self.known = _known_names(registry)
        self.canonical = policy.canonical_key
        self.policy_names = {self.canonical(d.name) for d in policy.labels}
        self.policy_parents = {self.canonical(d.parent) for d in policy.labels if d.parent.strip()}
        self.rule_names = {
            self.canonical(n)
            for r in policy.rules
            for n in (r.match.name, r.match.parent)
            if n is not None
        }
        # each name check is one set look-up, whatever the size of the policy
        self.defined = self.policy_names | self.policy_parents
        self.named_or_matched = self.policy_names | self.rule_names
        rule_parents = [r.match.parent for r in policy.rules if r.match.parent]
        self.policy_spellings = {d.name for d in policy.labels} | {
            d.parent for d in policy.labels if d.parent.strip()
        }
        self.suggestions = sorted(
            {
                s
                for k in (*self.known, *self.policy_names, *self.policy_parents)
                for s in (self.known[k].spellings[:1] if k in self.known else ())
            }
            | self.policy_spellings
        )
        self.parent_suggestions = [*self.suggestions, *rule_parents]
        self.successors: dict[str, tuple[str, ...]] = {}
        for detector in registry.detectors():
            self.successors.update(_successors(detector))
        self._sights: dict[str | None, _Sight | None] = {}

    def sight(self, source: str | None) -> _Sight | None:
        if source not in self._sights:
            self._sights[source] = _sight(self.context, self.registry, source)
        return self._sights[source]

    def run(self) -> None:
        policy = self.context.policy
        for position, rule in enumerate(policy.rules):
            path = (*self.context.rule_path(position), "match")
            source = rule.match.source
            if rule.match.name is not None:
                self.rule_name(
                    (*path, "name"), rule.match.name, "match name", "unknown-name", source
                )
            if rule.match.parent is not None:
                self.rule_name(
                    (*path, "parent"), rule.match.parent, "match parent", "unknown-parent", source
                )
        for position in range(len(policy.labels)):
            self.label_entry(position)

    # -- a name some taxonomy knows ----------------------------------------

    def spelling(self, path: JsonPath, written: str, what: str, entry: _Known) -> None:
        """The warnings about a name some taxonomy knows: an older model's name,
        or a spelling that differs from the taxonomy's."""
        if not entry.current and entry.older and name_key(written) not in self.policy_names:
            self.older_name(path, written, what, entry)
        elif written not in entry.spellings:
            self.context.warn(
                "name-spelling",
                f"{what} '{written}' matches the label '{entry.spellings[0]}' only "
                f"because names compare ignoring case and spaces; write "
                f"'{entry.spellings[0]}' as the taxonomy does",
                path,
            )

    def older_name(self, path: JsonPath, written: str, what: str, entry: _Known) -> None:
        detector, old = entry.older[0]
        now = current_taxonomy(detector)
        now_id = now.id if now is not None else "its current taxonomy"
        new_names = self.successors.get(name_key(written), ())
        if new_names:
            advice = f"write {quoted(new_names)} (what the current model calls it)"
        else:
            close = nearest_current_name(written, now) if now is not None else None
            advice = (
                f"the nearest current name is '{close}'"
                if close is not None
                else f"{now_id} has no equivalent: decide what the rule should "
                "cover now (policy-engine migrate lists such rules)"
            )
        self.context.warn(
            "model-6-name",
            f"{what} '{tidy_name(written)}' is a label of {old.id} that {now_id}, "
            f"the current taxonomy of {detector.name}, does not have: responses of "
            f"the current model never carry it; {advice}",
            path,
        )

    # -- rules -------------------------------------------------------------

    def rule_name(
        self, path: JsonPath, fallback: str, what: str, code: str, source: str | None
    ) -> None:
        sight = self.sight(source)
        if sight is None:
            return
        written = self.context.written(path, fallback)
        key = name_key(written)
        entry = self.known.get(key)
        defined = self.canonical(written) in self.defined
        if not sight.without:
            # every detector the rule can see has a taxonomy: the name is checkable
            if key in sight.keys:
                assert entry is not None  # sight's taxonomies are installed ones
                self.spelling(path, written, what, entry)
            elif not defined:
                self.unknown_name(path, written, what, code, sight)
            return
        if entry is not None:
            self.spelling(path, written, what, entry)
        elif (
            source is None
            and len(sight.without) < len(sight.detectors)
            and not defined
            and not self.context.is_acknowledged(path, code)
        ):
            self.unchecked_name(path, written, what, code, sight)

    def unknown_name(
        self, path: JsonPath, written: str, what: str, code: str, sight: _Sight
    ) -> None:
        """A rule's name that the taxonomies of every detector it can see, and
        labels:, do not know: an error (the rule would never select the label
        meant), a warning where the policy acknowledges it (section 7)."""
        detectors = quoted(sight.detectors)
        if self.context.is_acknowledged(path, code):
            self.context.warn(
                code,
                f"{what} '{tidy_name(written)}' is a label no taxonomy of {detectors} nor "
                "labels: knows, acknowledged by the ignore comment: the rule selects only a "
                "label reported under exactly that name; placing it under labels: makes "
                "it known",
                path,
            )
            return
        spellings: Iterable[str] = [*sight.spellings, *self.policy_spellings]
        hint = nearest_hint(name_key(written), list(spellings), cutoff=0.0)
        self.context.fail(
            code,
            f"{what} '{tidy_name(written)}' is a label no taxonomy of {detectors} nor "
            f"labels: knows, so the rule would never select the label meant and would "
            f"decide nothing ({hint}); for a label the service reports that the taxonomy "
            f"data lacks, place it under labels:, or acknowledge it with the comment "
            f"'# policy-engine: ignore[{UNKNOWN_NAME}]' on this line",
            path,
        )

    def unchecked_name(
        self, path: JsonPath, written: str, what: str, code: str, sight: _Sight
    ) -> None:
        """A name no taxonomy knows, where a detector without a taxonomy may report
        any name: a warning only, and only where another detector the rule sees
        has a taxonomy (with none, such as custom labels alone, any name is as
        good as any other)."""
        hint = nearest_hint(name_key(written), self.suggestions, cutoff=0.6)
        one = len(sight.without) == 1
        self.context.warn(
            code,
            f"{what} '{tidy_name(written)}' is a label no installed taxonomy nor "
            f"labels: knows, and it cannot be checked: {quoted(sight.without)} "
            f"{'has' if one else 'have'} no taxonomy, so "
            f"{'its' if one else 'their'} labels may carry any "
            f"name ({hint}); adding source: to the rule makes the name checkable",
            path,
        )

    # -- labels: entries ---------------------------------------------------

    def label_entry(self, position: int) -> None:
        context = self.context
        definition = context.policy.labels[position]
        path = ("labels", context.label_indexes[position])
        written = context.written((*path, "name"), definition.name)
        entry = self.known.get(name_key(written))
        if entry is not None:
            self.spelling((*path, "name"), written, "label", entry)
        if not definition.parent.strip():
            return
        parent_path = (*path, "parent")
        written = context.written(parent_path, definition.parent)
        entry = self.known.get(name_key(written))
        if entry is not None:
            self.spelling(parent_path, written, "parent", entry)
        elif self.canonical(written) not in self.named_or_matched and not (
            context.is_acknowledged(parent_path, "unknown-parent")
        ):
            hint = nearest_hint(
                name_key(written),
                self.parent_suggestions,
                cutoff=0.6,
                otherwise="a rule on it would decide them as one category",
            )
            context.warn(
                "unknown-parent",
                f"parent '{tidy_name(written)}' is a label no installed taxonomy nor "
                f"labels: knows and no rule matches: it only groups the labels placed "
                f"under it here; {hint}",
                parent_path,
            )
