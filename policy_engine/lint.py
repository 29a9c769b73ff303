"""The policy linter (POLICY_SPEC section 7): warnings about a policy, and one
kind of error, a rule's name that no taxonomy of the detectors it can see
knows (it would switch the rule off in silence).

Warnings never stop a policy from loading. Each finding has a stable code
(listed, with every error code, in :data:`DIAGNOSTIC_CODES`), a message that
says what to do, and the position of the offending node. An unknown rule name
is an error unless its line says ``# policy-engine: ignore[unknown-name]``;
then, and where a detector the rule can see has no taxonomy, a warning.

Checks that need the installed detectors' taxonomies run only with a
registry. Checks about what a rule decides work on the exact decision of
each label the taxonomies know (:class:`~policy_engine.compiler.CompiledPolicy`
and :func:`~policy_engine.table.bands_for`): no sampling, and a warning only
where the taxonomies prove it.

Older taxonomies: a detector's current taxonomy is ``detector.taxonomy(None)``;
any other of ``detector.taxonomies()`` is an older model's (for Rekognition,
model 6). A name only an older taxonomy knows gets ``model-6-name``. Where the
detector says what the current model calls it
(:meth:`~policy_engine.detectors.Detector.taxonomy_migration`), the message
suggests those names; otherwise the nearest current spelling.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from policy_engine.diagnostics import Diagnostic, Position, Severity, error, warning
from policy_engine.labels import Label
from policy_engine.model import Body, Policy, Rule, Verdict, plain_number
from policy_engine.names import name_key, tidy_name
from policy_engine.source import JsonPath, SourceMap
from policy_engine.taxonomy import Taxonomy

if TYPE_CHECKING:
    from policy_engine.compiler import Candidate, CompiledPolicy
    from policy_engine.detectors import Detector
    from policy_engine.plugins import DetectorRegistry
    from policy_engine.table import Band


@dataclass(frozen=True, slots=True)
class CodeInfo:
    severity: Severity
    description: str


ERROR, WARNING = Severity.ERROR, Severity.WARNING

DIAGNOSTIC_CODES: Mapping[str, CodeInfo] = {
    # -- reading the file ----------------------------------------------------
    "unreadable": CodeInfo(ERROR, "The policy file cannot be read."),
    "file-too-large": CodeInfo(ERROR, "The policy file is over 1 MiB."),
    "encoding": CodeInfo(ERROR, "The policy file is not UTF-8."),
    "empty-policy": CodeInfo(ERROR, "The policy file holds no YAML document."),
    "yaml-syntax": CodeInfo(ERROR, "The file is not valid YAML, or holds more than one document."),
    "yaml-depth": CodeInfo(ERROR, "The document is nested too deeply."),
    "document-too-large": CodeInfo(ERROR, "The document's aliases expand past 1 MiB."),
    "recursive-alias": CodeInfo(ERROR, "A YAML alias refers to itself."),
    "yaml-node": CodeInfo(ERROR, "An unsupported YAML node."),
    "yaml-tag": CodeInfo(ERROR, "A YAML tag other than the plain ones (str, int, float, ...)."),
    "yaml-value": CodeInfo(ERROR, "A scalar that is not a valid or finite value."),
    "yaml-key": CodeInfo(ERROR, "A mapping key that is not a plain scalar."),
    "yaml-merge-key": CodeInfo(ERROR, "A merge key (<<); write the keys out."),
    "duplicate-key": CodeInfo(ERROR, "A key given twice in one mapping."),
    # -- the schema ----------------------------------------------------------
    "unknown-key": CodeInfo(ERROR, "A key the policy language does not have (a typo?)."),
    "missing-key": CodeInfo(ERROR, "A required key is missing."),
    "wrong-type": CodeInfo(ERROR, "A value of the wrong type."),
    "invalid-value": CodeInfo(ERROR, "A value that is not one of those allowed."),
    "out-of-range": CodeInfo(ERROR, "A number outside its range (thresholds are 0 to 100)."),
    "schema": CodeInfo(ERROR, "Any other schema violation."),
    # -- meaning -------------------------------------------------------------
    "duplicate-rule-id": CodeInfo(ERROR, "Two rules have the same id."),
    "duplicate-match": CodeInfo(
        ERROR, "Two rules have the same match (names compare as names do)."
    ),
    "threshold-order": CodeInfo(ERROR, "review_at is not below block_at."),
    "duplicate-label": CodeInfo(ERROR, "A label is placed twice in labels:."),
    "label-cycle": CodeInfo(ERROR, "labels: places labels in a cycle."),
    "unknown-detector": CodeInfo(
        ERROR, "detectors: names a detector no installed plugin provides."
    ),
    "policy-does-not-load": CodeInfo(ERROR, "A policy tests file's policy has errors."),
    "invalid-label": CodeInfo(ERROR, "A tests file's label is invalid (name, confidence, source)."),
    "invalid-response": CodeInfo(ERROR, "A tests file's raw response is malformed."),
    "unrecognised-response": CodeInfo(
        ERROR, "A tests file's raw response is one no installed detector recognises."
    ),
    "unreadable-recording": CodeInfo(ERROR, "A tests file names a recording that cannot be read."),
    "invalid-recording": CodeInfo(ERROR, "A tests file names a recording that is not valid JSON."),
    # -- the linter ----------------------------------------------------------
    "unknown-name": CodeInfo(
        ERROR,
        "A rule's match name that no taxonomy of the detectors it can see nor labels: knows "
        "(a warning where the line says # policy-engine: ignore[unknown-name], or where one "
        "of those detectors has no taxonomy).",
    ),
    "unknown-parent": CodeInfo(
        ERROR,
        "A rule's match parent that no taxonomy of the detectors it can see nor labels: knows "
        "(a warning as for unknown-name, and for a labels: parent no taxonomy, entry nor "
        "rule knows).",
    ),
    "name-spelling": CodeInfo(
        WARNING, "A name that differs from the taxonomy's spelling only in case or spaces."
    ),
    "model-6-name": CodeInfo(
        WARNING,
        "A name only an older taxonomy (Rekognition model 6) has; the current model renamed it.",
    ),
    "threshold-below-floor": CodeInfo(
        WARNING, "A threshold below min_confidence: that band starts at the floor instead."
    ),
    "narrowing-rule": CodeInfo(
        WARNING, "A rule narrows a category rule and leaves unset a band the category rule sets."
    ),
    "carve-out-parent": CodeInfo(
        WARNING, "A child carve-out whose parent label is still decided by a stricter rule."
    ),
    "rule-never-decides": CodeInfo(
        WARNING,
        "A rule that can never decide a label: every label it selects is decided by another.",
    ),
    "unknown-source": CodeInfo(
        WARNING, "A rule's match source names no installed detector, so the rule never decides."
    ),
    "on-error-allow": CodeInfo(
        WARNING, "on_error: allow lets an image through unchecked whenever a detector fails."
    ),
    "threshold-scale": CodeInfo(
        WARNING, "Every threshold is at most 1: confidences run from 0 to 100, not 0 to 1."
    ),
    "no-detectors": CodeInfo(
        WARNING, "The policy names no detectors: check, the embedding API and the Lambda refuse it."
    ),
    "unknown-region": CodeInfo(
        WARNING,
        "A detector's region setting that its plugin does not know as a region of its "
        "service (from the plugin's own settings check, Detector.lint_settings).",
    ),
}
"""Every diagnostic code, with its severity and what it means (SARIF rules, README)."""

UNKNOWN_NAME = "unknown-name"
"""The code whose ignore comment acknowledges an unknown rule name or parent (section 7)."""


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
) -> list[Diagnostic]:
    """Every finding of the linter about ``policy``: warnings, and the errors of
    section 7 (a rule's name no taxonomy it can see knows).

    ``data`` is the document as parsed (to see names as written, before white
    space is tidied); ``rule_indexes`` / ``label_indexes`` give each rule's and
    ``labels:`` entry's index in the file (when some were dropped as invalid).
    ``acknowledged`` gives, by line, the codes its ``# policy-engine:
    ignore[...]`` comment names (:func:`~policy_engine.loader.acknowledged_codes`);
    the linter applies them to unknown names itself, as an acknowledged
    unknown name is still a warning. With ``decisions`` false, what each rule
    decides and whether the policy names detectors are not checked: the loader
    does so when the policy has errors, so that a broken file reports its
    errors, not guesses about the whole.
    """
    linter = _Linter(
        policy,
        source_map,
        registry,
        data,
        tuple(rule_indexes) if rule_indexes is not None else tuple(range(len(policy.rules))),
        tuple(label_indexes) if label_indexes is not None else tuple(range(len(policy.labels))),
        acknowledged or {},
    )
    linter.floors()
    linter.scale()
    linter.on_error()
    if decisions:
        linter.no_detectors()
    if registry is not None:
        linter.sources()
        linter.detector_settings()
        linter.names()
        if decisions and not any(d.severity is Severity.ERROR for d in linter.found):
            linter.decisions()
    return linter.found


def taxonomies_of(detector: Detector) -> tuple[Taxonomy, ...]:
    """``detector.taxonomies()``, or none where the plugin fails: a plugin's
    optional extra never breaks loading (its names then cannot be checked)."""
    try:
        return tuple(detector.taxonomies())
    except Exception:
        return ()


def current_taxonomy(detector: Detector) -> Taxonomy | None:
    """``detector.taxonomy(None)``, or None where the plugin fails."""
    try:
        return detector.taxonomy(None)
    except Exception:
        return None


def unknown_name_errors(policy: Policy, registry: DetectorRegistry) -> list[Diagnostic]:
    """The unknown-name errors of ``policy`` against ``registry``'s taxonomies, for a
    policy loaded without a registry (so not checked then): positioned at its
    rules, and with no ignore comment seen (they are not in the loaded policy)."""
    values: dict[JsonPath, Position] = {
        ("rules", i): rule.position for i, rule in enumerate(policy.rules)
    }
    values.update({("labels", i): label.position for i, label in enumerate(policy.labels)})
    found = lint_policy(policy, SourceMap(policy.file, values), registry=registry, decisions=False)
    return [d for d in found if d.severity is Severity.ERROR]


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


def _nearest_hint(
    key: str,
    spellings: Sequence[str],
    *,
    cutoff: float,
    otherwise: str = "fix the spelling, or place it under labels:",
) -> str:
    """``did you mean 'X'?`` for the known spelling nearest to ``key``; with a cutoff
    of 0, the nearest whatever its distance; else ``otherwise``."""
    by_key = {name_key(s): s for s in spellings if name_key(s) != key}
    nearest = difflib.get_close_matches(key, list(by_key), n=1, cutoff=max(cutoff, 0.6))
    if nearest:
        return f"did you mean '{by_key[nearest[0]]}'?"
    if cutoff <= 0:
        nearest = difflib.get_close_matches(key, list(by_key), n=1, cutoff=0.0)
        if nearest:
            return f"the nearest known name is '{by_key[nearest[0]]}'"
    return otherwise


def _quoted(names: Iterable[str]) -> str:
    items = [f"'{n}'" for n in names]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def _number(value: float) -> str:
    return f"{plain_number(value)}"


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


class _Linter:
    def __init__(
        self,
        policy: Policy,
        source_map: SourceMap,
        registry: DetectorRegistry | None,
        data: Any,
        rule_indexes: tuple[int, ...],
        label_indexes: tuple[int, ...],
        acknowledged: Mapping[int, frozenset[str]],
    ) -> None:
        self.policy = policy
        self.acknowledged = acknowledged
        self.source_map = source_map
        self.file = source_map.file
        self.registry = registry
        self.data = data
        self.rule_indexes = rule_indexes
        self.label_indexes = label_indexes
        self.found: list[Diagnostic] = []
        self._sights: dict[str | None, _Sight | None] = {}

    def warn(self, code: str, message: str, path: JsonPath) -> None:
        self.found.append(warning(code, message, self.file, self.source_map.at(path)))

    def fail(self, code: str, message: str, path: JsonPath) -> None:
        self.found.append(error(code, message, self.file, self.source_map.at(path)))

    def rule_path(self, position: int) -> JsonPath:
        return ("rules", self.rule_indexes[position])

    def written(self, path: JsonPath, fallback: str) -> str:
        """The string at ``path`` in the parsed document, as written."""
        value = self.data
        for part in path:
            in_map = isinstance(value, dict) and isinstance(part, str) and part in value
            in_list = isinstance(value, list) and isinstance(part, int) and part < len(value)
            if not (in_map or in_list):
                return fallback
            value = value[part]
        return value if isinstance(value, str) else fallback

    # -- thresholds ------------------------------------------------------

    def floors(self) -> None:
        bodies: list[tuple[Body, JsonPath]] = [
            (rule.body, self.rule_path(i)) for i, rule in enumerate(self.policy.rules)
        ]
        bodies.append((self.policy.default, ("default",)))
        floor = self.policy.min_confidence
        for body, path in bodies:
            for key, value in (("review_at", body.review_at), ("block_at", body.block_at)):
                if value is not None and 0 < value < floor:
                    self.warn(
                        "threshold-below-floor",
                        f"{key} {value:g} is below min_confidence {floor:g}: labels under "
                        f"{floor:g} are dropped, so this band starts at {floor:g}; raise "
                        f"{key} to {floor:g} or lower min_confidence",
                        (*path, key),
                    )

    def scale(self) -> None:
        """Thresholds that all lie at or below 1: a 0-1 scale written by mistake
        (0.8 for 80%), which reviews or blocks nearly every label."""
        written: list[tuple[float, JsonPath]] = []
        bodies = [(rule.body, self.rule_path(i)) for i, rule in enumerate(self.policy.rules)]
        bodies.append((self.policy.default, ("default",)))
        for body, path in bodies:
            for key in ("review_at", "block_at"):
                value = getattr(body, key)
                if value is not None:
                    written.append((value, (*path, key)))
        if not written:
            return
        numbers = [value for value, _ in written]
        if isinstance(self.data, dict) and "min_confidence" in self.data:
            numbers.append(self.policy.min_confidence)
        if max(numbers) > 1 or max(numbers) <= 0:
            return
        examples = ", ".join(_number(v) for v in sorted(set(numbers))[:3])
        self.warn(
            "threshold-scale",
            f"every threshold in this policy is at most 1 ({examples}"
            f"{', ...' if len(set(numbers)) > 3 else ''}), but confidences run from 0 to "
            "100, not 0 to 1: these bands fire at almost any confidence; write e.g. 80 "
            "for 80%",
            min(written, key=lambda item: self.source_map.at(item[1]))[1],
        )

    def on_error(self) -> None:
        if self.policy.on_error is not Verdict.ALLOW:
            return
        self.warn(
            "on-error-allow",
            "on_error: allow lets an image through unchecked whenever a detector fails "
            "(an outage, throttling, a malformed response, an unreadable image): a failure "
            "then yields allow; use review (the default) or block, unless allowing "
            "unchecked images is meant",
            ("on_error",),
        )

    def no_detectors(self) -> None:
        written = self.data.get("detectors", {}) if isinstance(self.data, dict) else None
        if self.policy.detectors or written != {}:
            return  # named, or not a map (the schema says so)
        installed = ""
        if self.registry is not None:
            installed = f" (installed: {', '.join(self.registry.names()) or 'none'})"
        self.warn(
            "no-detectors",
            "the policy names no detectors: check, the embedding API and the Lambda "
            "function refuse to run it (only evaluate, test and check --replay bring "
            "labels of their own), and its rule names are checked against every installed "
            f"detector; name the detectors it runs under detectors:{installed}",
            ("detectors",),
        )

    def detector_settings(self) -> None:
        """Each detector's own checks of its settings
        (:meth:`~policy_engine.detectors.Detector.lint_settings`)."""
        registry = self.registry
        assert registry is not None
        for name, settings in self.policy.detectors.items():
            if name not in registry or not isinstance(settings, Mapping):
                continue  # unknown-detector / the schema say it
            try:
                findings = tuple(registry.get(name).lint_settings(settings))
            except Exception:  # a plugin's optional check must never break loading
                continue
            for finding in findings:
                self.warn(finding.code, finding.message, ("detectors", name, *finding.path))

    # -- sources ---------------------------------------------------------

    def sources(self) -> None:
        registry = self.registry
        assert registry is not None
        for position, rule in enumerate(self.policy.rules):
            source = rule.match.source
            if source is None or source in registry or source in self.policy.detectors:
                continue
            self.warn(
                "unknown-source",
                f"no installed detector is named {source!r}, so this rule selects nothing "
                f"and never decides (installed: {', '.join(registry.names()) or 'none'}); "
                "fix the name or install the plugin",
                (*self.rule_path(position), "match", "source"),
            )

    # -- names -----------------------------------------------------------

    def _known_names(self) -> dict[str, _Known]:
        assert self.registry is not None
        spellings: dict[str, list[str]] = {}
        current: set[str] = set()
        older: dict[str, list[tuple[Detector, Taxonomy]]] = {}
        for detector in self.registry.detectors():
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
            key: _Known(
                tuple(dict.fromkeys(names)),
                key in current,
                tuple(older.get(key, ())),
            )
            for key, names in spellings.items()
        }

    def _sight(self, source: str | None) -> _Sight | None:
        """The detectors whose labels a rule with ``source`` can see: its source,
        or the policy's detectors (every installed one where the policy names
        none: ``evaluate``, ``test`` and a replay bring labels of any). None
        where they are not installed (``unknown-source``, ``unknown-detector``
        say so)."""
        if source not in self._sights:
            self._sights[source] = self._see(source)
        return self._sights[source]

    def _see(self, source: str | None) -> _Sight | None:
        registry = self.registry
        assert registry is not None
        if source is not None:
            if source not in registry:
                return None
            names: Sequence[str] = (source,)
        elif self.policy.detectors:
            names = [n for n in self.policy.detectors if n in registry]
            if not names:
                return None
        else:
            names = registry.names()
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

    def _acknowledged(self, path: JsonPath, code: str) -> bool:
        """Whether the line of the node at ``path`` carries ``# policy-engine:
        ignore[unknown-name]`` (or the code itself): a name the service has but
        the taxonomy data lacks."""
        codes = self.acknowledged.get(self.source_map.at(path).line, frozenset())
        return UNKNOWN_NAME in codes or code in codes

    def names(self) -> None:
        known = self._known_names()
        canonical = self.policy.canonical_key
        policy_names = {canonical(d.name) for d in self.policy.labels}
        policy_parents = {canonical(d.parent) for d in self.policy.labels if d.parent.strip()}
        rule_names = {
            canonical(n)
            for r in self.policy.rules
            for n in (r.match.name, r.match.parent)
            if n is not None
        }
        policy_spellings = {d.name for d in self.policy.labels} | {
            d.parent for d in self.policy.labels if d.parent.strip()
        }
        suggestions = sorted(
            {
                s
                for k in (*known, *policy_names, *policy_parents)
                for s in (known[k].spellings[:1] if k in known else ())
            }
            | policy_spellings
        )
        successors: dict[str, tuple[str, ...]] = {}
        assert self.registry is not None
        for detector in self.registry.detectors():
            successors.update(_successors(detector))

        def spelling(path: JsonPath, written: str, what: str, entry: _Known) -> None:
            """The warnings about a name some taxonomy knows: an older model's name,
            or a spelling that differs from the taxonomy's."""
            key = name_key(written)
            if not entry.current and entry.older and key not in policy_names:
                detector, old = entry.older[0]
                now = current_taxonomy(detector)
                now_id = now.id if now is not None else "its current taxonomy"
                new_names = successors.get(key, ())
                if new_names:
                    advice = f"write {_quoted(new_names)} (what the current model calls it)"
                else:
                    current_names = [
                        s for k, e in known.items() if e.current for s in e.spellings[:1]
                    ]
                    close = difflib.get_close_matches(written, current_names, n=1, cutoff=0.8)
                    advice = (
                        f"the nearest current name is '{close[0]}'"
                        if close
                        else f"{now_id} has no equivalent: decide what the rule should "
                        "cover now (policy-engine migrate lists such rules)"
                    )
                self.warn(
                    "model-6-name",
                    f"{what} '{tidy_name(written)}' is a label of {old.id} that {now_id}, "
                    f"the current taxonomy of {detector.name}, does not have: responses of "
                    f"the current model never carry it; {advice}",
                    path,
                )
                return
            if written not in entry.spellings:
                self.warn(
                    "name-spelling",
                    f"{what} '{written}' matches the label '{entry.spellings[0]}' only "
                    f"because names compare ignoring case and spaces; write "
                    f"'{entry.spellings[0]}' as the taxonomy does",
                    path,
                )

        def rule_name(
            path: JsonPath, fallback: str, what: str, code: str, source: str | None
        ) -> None:
            sight = self._sight(source)
            if sight is None:
                return
            written = self.written(path, fallback)
            key = name_key(written)
            entry = known.get(key)
            defined = canonical(written) in policy_names | policy_parents
            if not sight.without:
                # every detector the rule can see has a taxonomy: the name is checkable
                if key in sight.keys:
                    assert entry is not None  # sight's taxonomies are installed ones
                    spelling(path, written, what, entry)
                elif not defined:
                    self._unknown_name(path, written, what, code, sight, policy_spellings)
                return
            if entry is not None:
                spelling(path, written, what, entry)
            elif (
                source is None
                and len(sight.without) < len(sight.detectors)
                and not defined
                and not self._acknowledged(path, code)
            ):
                # a detector without a taxonomy may report any name: a warning only, and
                # only where another detector the rule sees has a taxonomy (with none,
                # such as custom labels alone, any name is as good as any other)
                hint = _nearest_hint(key, [*suggestions], cutoff=0.6)
                self.warn(
                    code,
                    f"{what} '{tidy_name(written)}' is a label no installed taxonomy nor "
                    f"labels: knows, and it cannot be checked: {_quoted(sight.without)} "
                    f"{'has' if len(sight.without) == 1 else 'have'} no taxonomy, so "
                    f"{'its' if len(sight.without) == 1 else 'their'} labels may carry any "
                    f"name ({hint}); adding source: to the rule makes the name checkable",
                    path,
                )

        for position, rule in enumerate(self.policy.rules):
            path = (*self.rule_path(position), "match")
            source = rule.match.source
            if rule.match.name is not None:
                rule_name((*path, "name"), rule.match.name, "match name", "unknown-name", source)
            if rule.match.parent is not None:
                rule_name(
                    (*path, "parent"), rule.match.parent, "match parent", "unknown-parent", source
                )
        extra = [n for r in self.policy.rules for n in (r.match.parent,) if n is not None]
        for position, definition in enumerate(self.policy.labels):
            path = ("labels", self.label_indexes[position])
            written = self.written((*path, "name"), definition.name)
            entry = known.get(name_key(written))
            if entry is not None:
                spelling((*path, "name"), written, "label", entry)
            if not definition.parent.strip():
                continue
            parent_path = (*path, "parent")
            written = self.written(parent_path, definition.parent)
            entry = known.get(name_key(written))
            if entry is not None:
                spelling(parent_path, written, "parent", entry)
            elif canonical(written) not in policy_names | rule_names and not self._acknowledged(
                parent_path, "unknown-parent"
            ):
                hint = _nearest_hint(
                    name_key(written),
                    [*suggestions, *extra],
                    cutoff=0.6,
                    otherwise="a rule on it would decide them as one category",
                )
                self.warn(
                    "unknown-parent",
                    f"parent '{tidy_name(written)}' is a label no installed taxonomy nor "
                    f"labels: knows and no rule matches: it only groups the labels placed "
                    f"under it here; {hint}",
                    parent_path,
                )

    def _unknown_name(
        self,
        path: JsonPath,
        written: str,
        what: str,
        code: str,
        sight: _Sight,
        policy_spellings: Iterable[str],
    ) -> None:
        """A rule's name that the taxonomies of every detector it can see, and
        labels:, do not know: an error (the rule would never select the label
        meant), a warning where the policy acknowledges it (section 7)."""
        detectors = _quoted(sight.detectors)
        if self._acknowledged(path, code):
            self.warn(
                code,
                f"{what} '{tidy_name(written)}' is a label no taxonomy of {detectors} nor "
                "labels: knows, acknowledged by the ignore comment: the rule selects only a "
                "label reported under exactly that name; placing it under labels: makes "
                "it known",
                path,
            )
            return
        hint = _nearest_hint(name_key(written), [*sight.spellings, *policy_spellings], cutoff=0.0)
        self.fail(
            code,
            f"{what} '{tidy_name(written)}' is a label no taxonomy of {detectors} nor "
            f"labels: knows, so the rule would never select the label meant and would "
            f"decide nothing ({hint}); for a label the service reports that the taxonomy "
            f"data lacks, place it under labels:, or acknowledge it with the comment "
            f"'# policy-engine: ignore[{UNKNOWN_NAME}]' on this line",
            path,
        )

    # -- decisions -------------------------------------------------------

    def _universe(
        self, compiled: CompiledPolicy, all_taxonomies: bool
    ) -> Iterator[tuple[Label, Taxonomy | None]]:
        """Every label a detector may report, as it would report it: each
        taxonomy's labels with their parents; the policy's ``labels:``; and for
        a detector without a taxonomy, any name a rule mentions (no parent)."""
        registry = self.registry
        assert registry is not None
        for source in registry.names():
            detector = registry.get(source)
            current = current_taxonomy(detector)
            taxonomies: tuple[Taxonomy | None, ...]
            if all_taxonomies:
                taxonomies = taxonomies_of(detector) or (None,)
            else:
                taxonomies = (current,) if current is not None else (None,)
            for taxonomy in taxonomies:
                seen: set[str] = set()
                canonical = taxonomy.canonical_key if taxonomy is not None else name_key
                if taxonomy is not None:
                    for key in sorted(taxonomy.keys()):
                        parent_key = taxonomy.parent_key(key) or ""
                        parent = (taxonomy.display_name(parent_key) or "") if parent_key else ""
                        seen.add(key)
                        yield (
                            Label(
                                name=taxonomy.display_name(key) or key,
                                parent=parent,
                                confidence=100.0,
                                source=source,
                            ),
                            (taxonomy),
                        )
                names = [
                    n
                    for d in self.policy.labels
                    if d.source in (None, source)
                    for n in (d.name, d.parent)
                ]
                if taxonomy is None and not taxonomies_of(detector):
                    names += [
                        n
                        for r in self.policy.rules
                        for n in (r.match.name, r.match.parent)
                        if n is not None
                    ]
                for name in names:
                    key = canonical(name) if name.strip() else ""
                    if key and key not in seen:
                        seen.add(key)
                        yield Label(name=tidy_name(name), confidence=100.0, source=source), taxonomy

    def decisions(self) -> None:
        from policy_engine.compiler import CompiledPolicy

        registry = self.registry
        assert registry is not None
        compiled = CompiledPolicy(self.policy, registry.taxonomy_for)
        self._never_decides(compiled)
        self._narrowing_and_carve_outs(compiled)

    def _rule_position(self, rule: Rule) -> int:
        for position, candidate in enumerate(self.policy.rules):
            if candidate is rule:
                return position
        raise ValueError(rule.id)

    def _never_decides(self, compiled: CompiledPolicy) -> None:
        registry = self.registry
        assert registry is not None
        selected: dict[int, list[str]] = {}
        winners: dict[int, set[str]] = {}
        decides: set[int] = set()
        for label, taxonomy in self._universe(compiled, all_taxonomies=True):
            explanation = compiled.explain_in(label, taxonomy)
            if explanation.winner is not None:
                decides.add(id(explanation.winner))
            for candidate in explanation.candidates:
                selected.setdefault(id(candidate.rule), []).append(label.name)
                if explanation.winner is not None and candidate.rule is not explanation.winner:
                    winners.setdefault(id(candidate.rule), set()).add(explanation.winner.id)
        for position, rule in enumerate(self.policy.rules):
            match = rule.match
            if match.source is not None and match.source not in registry:
                continue  # unknown-source
            if id(rule) in decides:
                continue
            labels = selected.get(id(rule))
            path = self.rule_path(position)
            if labels:
                examples = _quoted(sorted(set(labels))[:3])
                others = sorted(winners.get(id(rule), set()))
                self.warn(
                    "rule-never-decides",
                    f"rule '{rule.id}' never decides a label: every label the installed "
                    f"taxonomies and labels: give it ({examples}"
                    f"{', ...' if len(set(labels)) > 3 else ''}) is decided by a more specific "
                    f"rule ({_quoted(others)}); remove it or change its match",
                    path,
                )
                continue
            if match.name is None or match.parent is None:
                continue  # names nobody knows: unknown-name / unknown-parent say it
            evidence = self._parents_of(match.name, match.parent, match.source)
            if evidence is None:
                continue
            places = "; ".join(
                f"{taxonomy_id} puts it under {_quoted(sorted(parents)) or 'nothing (the top)'}"
                for taxonomy_id, parents in evidence
            )
            self.warn(
                "rule-never-decides",
                f"rule '{rule.id}' never decides a label: '{match.name}' is never under "
                f"'{match.parent}' ({places}; and no labels: entry puts it under "
                f"'{match.parent}'); match {{name: {match.name}}} alone, or place it under "
                f"'{match.parent}' in labels:",
                path,
            )

    def _parents_of(
        self, name: str, parent: str, source: str | None
    ) -> list[tuple[str, set[str]]] | None:
        """The parents the installed taxonomies give ``name`` (by taxonomy), or None
        when one of them may report it under another parent or does not know it."""
        registry = self.registry
        assert registry is not None
        parent_key = name_key(parent)
        for definition in self.policy.labels:
            if name_key(definition.name) == name_key(name) and (
                name_key(definition.parent) == parent_key
            ):
                return None
        sources = (source,) if source is not None else registry.names()
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

    def _narrowing_and_carve_outs(self, compiled: CompiledPolicy) -> None:
        from policy_engine.table import bands_for

        floor = self.policy.min_confidence
        narrowing: dict[tuple[int, int, str], list[str]] = {}
        narrowing_rules: dict[tuple[int, int, str], tuple[Rule, Rule, float]] = {}
        carve_outs: dict[tuple[int, str], tuple[Rule, str, str, str | None, Band]] = {}
        for label, taxonomy in self._universe(compiled, all_taxonomies=False):
            explanation = compiled.explain_in(label, taxonomy)
            winner = explanation.winner
            if winner is None:
                continue
            category = _overridden_category(explanation.candidates)
            if category is not None and winner.body.action is None:
                self_label = (
                    category.distance == 0
                    and winner.match.parent is None
                    and winner.match.name is not None
                )
                if not self_label:
                    fires_at = category.rule.body.fires_at
                    bands = (("block_at", fires_at.block_from), ("review_at", fires_at.review_from))
                    for key, fires in bands:
                        if getattr(winner.body, key) is None and fires <= 100:
                            slot = (id(winner), id(category.rule), key)
                            narrowing.setdefault(slot, []).append(label.name)
                            narrowing_rules[slot] = (winner, category.rule, fires)
            if (
                winner.body.action is Verdict.ALLOW
                and label.parent
                and explanation.lineage.direct_parent
            ):
                # the detector reports the parent alongside only where its taxonomy
                # gives one (a labels: placement is the policy's, not the detector's)
                parent_key = explanation.lineage.direct_parent
                parent_name = explanation.lineage.parent_display
                grand = ""
                if taxonomy is not None:
                    grand_key = taxonomy.parent_key(parent_key) or ""
                    grand = (taxonomy.display_name(grand_key) or "") if grand_key else ""
                decided = compiled.explain_in(
                    Label(name=parent_name, parent=grand, confidence=100.0, source=label.source),
                    taxonomy,
                )
                if decided.winner is winner:
                    continue
                stricter = _stricter_somewhere(
                    bands_for(winner.body, floor), bands_for(decided.body, floor)
                )
                if stricter is not None:
                    parent_rule = decided.winner.id if decided.winner is not None else None
                    carve_outs.setdefault(
                        (id(winner), parent_key),
                        (winner, label.name, parent_name, parent_rule, stricter),
                    )
        for slot, labels in narrowing.items():
            rule, category_rule, fires = narrowing_rules[slot]
            key = slot[2]
            verb = "blocks" if key == "block_at" else "reviews"
            examples = _quoted(sorted(set(labels))[:3])
            more = ", ..." if len(set(labels)) > 3 else ""
            self.warn(
                "narrowing-rule",
                f"rule '{rule.id}' narrows category rule '{category_rule.id}' "
                f"({category_rule.match.describe()}) but leaves {key} unset: '{category_rule.id}' "
                f"{verb} from {_number(fires)}, yet the labels '{rule.id}' decides ({examples}"
                f"{more}) are never {'blocked' if key == 'block_at' else 'reviewed'}, because "
                f"rules do not combine; set {key} on '{rule.id}' (e.g. {_number(fires)}) if they "
                "should be",
                self.rule_path(self._rule_position(rule)),
            )
        for rule, child, parent_name, parent_rule, band in carve_outs.values():
            verb = "blocks" if band.verdict is Verdict.BLOCK else "reviews"
            decider = "the default" if parent_rule is None else f"rule '{parent_rule}'"
            self.warn(
                "carve-out-parent",
                f"rule '{rule.id}' allows '{child}', but its parent label '{parent_name}', "
                f"which the detector reports alongside, is decided by {decider}, which "
                f"{verb} from {_number(band.low)}: the image is still "
                f"{'blocked' if band.verdict is Verdict.BLOCK else 'reviewed'}; add "
                f"{{name: {parent_name}, action: allow}} if the parent alone should not count "
                "(POLICY_SPEC section 5)",
                self.rule_path(self._rule_position(rule)),
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
