"""Loading a policy: read, parse YAML, check the schema, build, check meaning.

Each layer collects every error it finds; a later layer runs only on input
the earlier ones accepted. The result is a :class:`~policy_engine.model.Policy`
or a :class:`~policy_engine.errors.PolicyLoadError` listing all diagnostics,
sorted by position. The only I/O is reading the file.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policy_engine.detectors import taxonomies_of
from policy_engine.diagnostics import (
    Diagnosed,
    Diagnostic,
    Position,
    Severity,
    error,
    sort_diagnostics,
)
from policy_engine.errors import PolicyLoadError, SourceError
from policy_engine.gc_pause import gc_paused
from policy_engine.json_types import plain
from policy_engine.lint import lint_policy
from policy_engine.model import Body, Cascade, LabelDefinition, Match, Policy, Rule, Verdict
from policy_engine.names import alias_keys, name_key, tidy_name
from policy_engine.source import (
    JsonPath,
    SourceMap,
    decimal_version,
    parse_document,
    read_policy_text,
)

if TYPE_CHECKING:
    from policy_engine.plugins import DetectorRegistry
    from policy_engine.schema import SchemaReport


@dataclass(frozen=True, slots=True)
class LoadResult(Diagnosed):
    """A policy (None if it has errors) and every diagnostic about it, sorted by position."""

    policy: Policy | None
    diagnostics: tuple[Diagnostic, ...]


def check_policy_text(
    text: str,
    file: str = "<string>",
    *,
    registry: DetectorRegistry | None = None,
    base_dir: str | None = None,
    cache: PolicyFileCache | None = None,
) -> LoadResult:
    """Load a policy from text, collecting diagnostics instead of raising.

    With a ``registry``, detector names and settings are checked against the
    installed plugins, their taxonomies' aliases count when comparing rule
    matchers, and the linter (:mod:`policy_engine.lint`) checks names and
    what each rule decides against the installed taxonomies. A base the
    policy ``extends`` is read relative to ``base_dir``, through ``cache``.
    """
    files = cache if cache is not None else PolicyFileCache()
    return _check_layer(text, file, base_dir or ".", registry, files).result


def _check_layer(
    text: str, file: str, base_dir: str, registry: DetectorRegistry | None, files: PolicyFileCache
) -> _Layer:
    """The policy in ``text``: its effective policy (section 9) and every diagnostic."""
    from policy_engine.schema import check_policy_data

    files.parses += 1
    try:
        document = parse_document(text, file)
    except SourceError as exc:
        return _failed_layer(file, base_dir, sort_diagnostics(exc.diagnostics))
    source_map = document.source_map
    diagnostics = list(document.diagnostics)
    acknowledged: dict[str, Mapping[int, frozenset[str]]] = {file: acknowledged_codes(text)}
    report = check_policy_data(document.data, source_map, document.refused)
    diagnostics.extend(report.diagnostics)
    if not isinstance(document.data, dict):
        return _failed_layer(file, base_dir, sort_diagnostics(diagnostics))
    data: dict[str, Any] = document.data
    # Go on with every part the schema accepted, so that one run reports all errors.
    detectors = data.get("detectors")
    if isinstance(detectors, dict) and report.usable(("detectors",)):
        diagnostics.extend(_check_detectors(detectors, source_map, registry))
    diagnostics.extend(decimal_version(data, source_map))
    effective = _Effective(data, source_map, report, {}, 0)
    complete = True  # whether ``effective`` is the whole effective policy
    if "extends" in data:
        base, found = _base_of(data, source_map, report, base_dir, registry, files)
        diagnostics.extend(found)
        if base is None:
            complete = False
        else:
            acknowledged.update(base.acknowledged)
            effective, found = _merge(base, data, source_map, report, registry)
            diagnostics.extend(found)
    elif "remove_rules" in data:
        diagnostics.append(
            error(
                "remove-rules-without-extends",
                "remove_rules: drops rules of a base, but this policy extends none; "
                "add extends: or remove remove_rules:",
                file,
                source_map.key_at(("remove_rules",)),
            )
        )
    built = _build(
        effective.data,
        effective.source_map,
        base_dir,
        effective.report,
        _alias_map(registry),
        registry,
        effective.detector_dirs,
    )
    diagnostics.extend(_check_meaning(built, effective.source_map))
    # the linter (POLICY_SPEC section 7): unknown names are errors too, so they
    # are always checked; what each rule decides only when the policy is
    # consistent, i.e. has no errors, and whole (its base loaded)
    diagnostics.extend(
        lint_policy(
            built.policy,
            effective.source_map,
            registry=registry,
            data=effective.data,
            rule_indexes=built.rule_indexes,
            label_indexes=built.label_indexes,
            decisions=complete and not any(d.severity is Severity.ERROR for d in diagnostics),
            acknowledged=acknowledged[file],
            acknowledged_in=acknowledged,
        )
    )
    diagnostics = _without_ignored_warnings(diagnostics, acknowledged, file)
    policy: Policy | None = built.policy
    if not complete or any(d.severity is Severity.ERROR for d in diagnostics):
        policy = None
    result = LoadResult(policy, sort_diagnostics(diagnostics))
    if policy is None:
        return _Layer(result, file, base_dir, None, acknowledged)
    return _Layer(result, file, base_dir, effective, acknowledged)


_IGNORE_COMMENT = re.compile(r"#\s*policy-engine:\s*ignore\[([A-Za-z0-9_, -]+)\]")


def acknowledged_codes(text: str) -> dict[int, frozenset[str]]:
    """The codes each line's ``# policy-engine: ignore[CODE, ...]`` comment names,
    by line number: a comment at the end of a line covers that line, a comment
    line of its own covers the line below it too. Only real YAML comments
    count: a ``#`` inside a quoted or block string is text (:func:`yaml_comments`)."""
    if "policy-engine:" not in text:
        return {}
    found: dict[int, set[str]] = {}
    for number, (comment, alone) in yaml_comments(text).items():
        match = _IGNORE_COMMENT.search(comment)
        if match is None:
            continue
        codes = {code.strip() for code in match.group(1).split(",") if code.strip()}
        found.setdefault(number, set()).update(codes)
        if alone:
            found.setdefault(number + 1, set()).update(codes)
    return {number: frozenset(codes) for number, codes in found.items()}


def yaml_comments(text: str) -> dict[int, tuple[str, bool]]:
    """Every comment in the YAML ``text`` by 1-based line: its text (from the
    ``#``) and whether it stands on a line of its own.

    PyYAML drops comments before composing nodes, so they are found around
    the scanner's tokens instead: a comment is what follows, after blanks, the
    last token that ends on a line, when it starts with ``#``. A quoted or
    block scalar is one token, so a ``#`` inside it is never taken for a
    comment. Text that does not scan has no comments."""
    import yaml

    covered: dict[int, int] = {}  # 0-based line -> column the tokens reach on it
    spanned: set[int] = set()  # lines a multi-line token runs to the end of
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            start, end = token.start_mark, token.end_mark
            if (start.line, start.column) == (end.line, end.column):
                continue  # a zero-width token (block start or end, key): no text
            spanned.update(range(start.line, end.line))
            covered[end.line] = max(covered.get(end.line, 0), end.column)
    except yaml.YAMLError:
        return {}
    comments: dict[int, tuple[str, bool]] = {}
    for index, line in enumerate(text.splitlines()):
        if index in spanned:
            continue
        rest = line[covered.get(index, 0) :].lstrip(" \t")
        if rest.startswith("#"):
            comments[index + 1] = (rest, index not in covered)
    return comments


UNKNOWN_NAME_CODES = frozenset({"unknown-name", "unknown-parent"})
"""Codes the linter acknowledges itself, as an acknowledged unknown name is
still a warning where it would be an error without the comment (section 7)."""


def _without_ignored_warnings(
    diagnostics: list[Diagnostic],
    acknowledged: Mapping[str, Mapping[int, frozenset[str]]],
    file: str,
) -> list[Diagnostic]:
    """Drop warnings a comment acknowledges: ``# policy-engine: ignore[CODE, ...]`` at
    the end of the warned line, or on a comment line of its own just above it, in
    the file where the warned node is written (``acknowledged``: by file, then line).
    Errors are never ignored. A comment, not a key: the policy language is unchanged."""
    return [
        d
        for d in diagnostics
        if d.severity is Severity.ERROR
        or d.code in UNKNOWN_NAME_CODES
        or d.code not in acknowledged.get(d.file or file, {}).get(d.line, ())
    ]


def check_policy_file(
    path: str | os.PathLike[str],
    *,
    registry: DetectorRegistry | None = None,
    cache: PolicyFileCache | None = None,
) -> LoadResult:
    """Like :func:`check_policy_text`, reading the file (at most 1 MiB).

    Several loads that share a ``cache`` (a policy set's routes) read and parse
    each file, a base that several files extend included, once. The cyclic
    garbage collector is paused meanwhile (:func:`~policy_engine.gc_pause.gc_paused`):
    a load builds objects that all stay alive, and its collections walking them
    again cost a fifth of loading a big policy."""
    files = cache if cache is not None else PolicyFileCache()
    with gc_paused():
        return files.layer(Path(path), str(path), registry).result


def registry_errors(
    policy: Policy,
    registry: DetectorRegistry,
    detectors: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Diagnostic]:
    """The errors the loader finds with ``registry`` (detectors' settings, rules
    that are one match under its taxonomies' aliases, and, for a policy loaded
    without a registry, names no taxonomy knows), found again by the same checks
    for a policy already built: an :class:`~policy_engine.engine.Engine` given a
    policy loaded without this registry must not run what the loader would have
    refused. ``detectors`` stands in for the policy's ``detectors:`` (a replay's
    settings). Positioned where the policy kept positions (rules and ``labels:``
    entries); detectors' settings at the file's start."""
    values: dict[JsonPath, Position] = {
        ("rules", i): rule.position for i, rule in enumerate(policy.rules)
    }
    values.update({("labels", i): label.position for i, label in enumerate(policy.labels)})
    source_map = SourceMap(policy.file, values)
    settings = plain(policy.detectors if detectors is None else detectors)
    found = _check_detectors(settings, source_map, registry)
    aliased = dataclasses.replace(policy, aliases=_alias_map(registry))
    indexes = tuple(range(len(policy.rules)))
    built = _Built(aliased, indexes, tuple(range(len(policy.labels))))
    found.extend(_check_meaning(built, source_map))
    if not policy.names_checked:  # loaded without a registry: an unknown name is unseen
        found.extend(lint_policy(policy, source_map, registry=registry, decisions=False))
    return [d for d in sort_diagnostics(found) if d.severity is Severity.ERROR]


def parse_policy(
    text: str, file: str = "<string>", *, registry: DetectorRegistry | None = None
) -> Policy:
    """Load a policy from text; raise :class:`PolicyLoadError` with every error."""
    return _policy_or_raise(check_policy_text(text, file, registry=registry))


def load_policy(
    path: str | os.PathLike[str],
    *,
    registry: DetectorRegistry | None = None,
    cache: PolicyFileCache | None = None,
) -> Policy:
    """Load a policy file; raise :class:`PolicyLoadError` with every error.
    Loads sharing a ``cache`` read each file once (:class:`PolicyFileCache`)."""
    return _policy_or_raise(check_policy_file(path, registry=registry, cache=cache))


def dump_policy(policy: Policy) -> str:
    """The policy's canonical form as YAML; loading it gives an equal policy."""
    import yaml

    return yaml.safe_dump(policy.to_data(), sort_keys=False, allow_unicode=True)


def _policy_or_raise(result: LoadResult) -> Policy:
    if result.policy is None:
        raise PolicyLoadError(result.errors)
    return result.policy


def _check_detectors(
    detectors: Mapping[str, Any], source_map: SourceMap, registry: DetectorRegistry | None
) -> list[Diagnostic]:
    if registry is None:
        return []
    from policy_engine.schema import check_against_schema, settings_validator

    found: list[Diagnostic] = []
    for name, settings in detectors.items():
        path = ("detectors", name)
        if name not in registry:
            known = ", ".join(registry.names()) or "none"
            found.append(
                error(
                    "unknown-detector",
                    f"no installed plugin provides detector {name!r} (installed: {known})",
                    source_map.file,
                    source_map.key_at(path),
                )
            )
            continue
        validator = settings_validator(registry.get(name).settings_schema)
        if not isinstance(settings, dict):
            continue  # the policy schema reports it
        found.extend(check_against_schema(validator, settings, source_map, base=path).diagnostics)
    return found


def _body(data: Mapping[str, Any]) -> Body:
    action = data.get("action")
    return Body(
        action=Verdict(action) if action is not None else None,
        review_at=float(data["review_at"]) if "review_at" in data else None,
        block_at=float(data["block_at"]) if "block_at" in data else None,
    )


@dataclass(frozen=True, slots=True)
class _Built:
    """A policy built from the parts the schema accepted, and where each rule and
    label definition stands in the file (its index under ``rules:`` / ``labels:``)."""

    policy: Policy
    rule_indexes: tuple[int, ...]
    label_indexes: tuple[int, ...]


def _usable_items(data: Mapping[str, Any], key: str, report: SchemaReport) -> list[tuple[int, Any]]:
    items = data.get(key)
    if not isinstance(items, list):
        return []
    return [(i, item) for i, item in enumerate(items) if report.usable((key, i))]


def _build(
    data: Mapping[str, Any],
    source_map: SourceMap,
    base_dir: str,
    report: SchemaReport,
    aliases: Mapping[str, str],
    registry: DetectorRegistry | None,
    detector_dirs: Mapping[str, str] | None = None,
) -> _Built:
    def field(key: str, fallback: Any) -> Any:
        return data.get(key, fallback) if report.usable((key,)) else fallback

    default = field("default", "allow")
    rules = [
        (
            index,
            Rule(
                id=raw["id"],
                match=Match(
                    name=tidy_name(raw["match"]["name"]) if "name" in raw["match"] else None,
                    parent=tidy_name(raw["match"]["parent"]) if "parent" in raw["match"] else None,
                    source=raw["match"].get("source"),
                ),
                body=_body(raw),
                description=raw.get("description"),
                position=source_map.at(("rules", index)),
                file=_written_elsewhere(source_map, ("rules", index)),
            ),
        )
        for index, raw in _usable_items(data, "rules", report)
    ]
    labels = [
        (
            index,
            LabelDefinition(
                name=tidy_name(raw["name"]),
                parent=tidy_name(raw["parent"]),
                source=raw.get("source"),
                position=source_map.at(("labels", index)),
            ),
        )
        for index, raw in _usable_items(data, "labels", report)
    ]
    detectors = field("detectors", {})
    cascade = field("cascade", {})
    cascade = cascade if isinstance(cascade, dict) else {}
    policy = Policy(
        name=field("name", "invalid"),
        description=field("description", None),
        min_confidence=float(field("min_confidence", 50)),
        default=Body(action=Verdict(default)) if isinstance(default, str) else _body(default),
        on_error=Verdict(field("on_error", "review")),
        detectors=detectors if isinstance(detectors, dict) else {},
        labels=tuple(label for _, label in labels),
        rules=tuple(rule for _, rule in rules),
        file=source_map.file,
        base_dir=base_dir,
        aliases=aliases,
        names_checked=registry is not None,
        detector_dirs=detector_dirs or {},
        cascade=Cascade(
            skip=cascade.get("skip", True) is not False,
            costs={name: float(cost) for name, cost in (cascade.get("costs") or {}).items()},
        ),
    )
    return _Built(policy, tuple(i for i, _ in rules), tuple(i for i, _ in labels))


def _written_elsewhere(source_map: SourceMap, path: JsonPath) -> str | None:
    """The file the node at ``path`` was written in, if not the policy's own (a base's)."""
    file = source_map.at(path).file
    return file if file is not None and file != source_map.file else None


def _alias_map(registry: DetectorRegistry | None) -> dict[str, str]:
    """Every alias the installed detectors' taxonomies give (alias key -> canonical
    key): two spellings of one label are one name in a policy, whichever
    detector reports it (:attr:`Policy.aliases`)."""
    if registry is None:
        return {}
    return alias_keys(
        (alias, canonical)
        for detector in registry.detectors()
        for taxonomy in taxonomies_of(detector)
        for alias, canonical in taxonomy.aliases.items()
    )


def _check_meaning(built: _Built, source_map: SourceMap) -> list[Diagnostic]:
    policy = built.policy
    file = source_map.file
    found: list[Diagnostic] = []

    def canonical(name: str | None) -> str | None:
        return None if name is None else policy.canonical_key(name)

    ids: dict[str, int] = {}
    matchers: dict[tuple[str | None, str | None, str | None], tuple[int, str]] = {}
    for position, rule in enumerate(policy.rules):
        index = built.rule_indexes[position]
        first = ids.setdefault(rule.id, index)
        if first != index:
            first_at = source_map.at(("rules", first))
            # in a policy that extends a base, indexes are the effective policy's: name the file
            where = (
                f"rules[{first}] (line {first_at.line})"
                if first_at.file is None
                else f"the rule at {first_at.file}, line {first_at.line}"
            )
            found.append(
                error(
                    "duplicate-rule-id",
                    f"rule id {rule.id!r} is used already by {where}",
                    file,
                    source_map.at(("rules", index, "id")),
                )
            )
        matcher = (canonical(rule.match.name), canonical(rule.match.parent), rule.match.source)
        first_index, first_id = matchers.setdefault(matcher, (index, rule.id))
        if first_index != index:
            earlier_rule = policy.rules[built.rule_indexes.index(first_index)]
            earlier = earlier_rule.match
            # a base's rule is found in the base, not at an index of this file
            where = (
                f"rules[{first_index}]"
                if earlier_rule.file is None
                else f"{earlier_rule.file}, line {earlier_rule.position.line}"
            )
            respelt = any(
                a is not None and b is not None and name_key(a) != name_key(b)
                for a, b in ((earlier.name, rule.match.name), (earlier.parent, rule.match.parent))
            )
            why = "names compare case-insensitively"
            if respelt:
                why += ", and the alias spellings of one label as one name"
            found.append(
                error(
                    "duplicate-match",
                    f"rule {rule.id!r} has the same match as rule {first_id!r} "
                    f"({where}): {rule.match.describe()}; {why}, so merge "
                    "the two rules",
                    file,
                    source_map.at(("rules", index, "match")),
                )
            )
        found.extend(_check_body(rule.body, ("rules", index), source_map))
    found.extend(_check_body(policy.default, ("default",), source_map))
    found.extend(_check_label_definitions(policy.labels, source_map, policy.canonical_key))
    for name in policy.cascade.costs:
        if name not in policy.detectors:  # a typo would set no cost at all, in silence
            runs = ", ".join(sorted(policy.detectors)) or "none"
            found.append(
                error(
                    "cascade-unknown-detector",
                    f"cascade: costs: {name!r} is not a detector this policy runs "
                    f"(its detectors: {runs})",
                    file,
                    source_map.key_at(("cascade", "costs", name)),
                )
            )
    return found


def _check_body(body: Body, path: tuple[str | int, ...], source_map: SourceMap) -> list[Diagnostic]:
    if body.review_at is not None and body.block_at is not None and body.review_at >= body.block_at:
        return [
            error(
                "threshold-order",
                f"review_at ({body.review_at:g}) must be below block_at ({body.block_at:g})",
                source_map.file,
                source_map.at((*path, "review_at")),
            )
        ]
    return []


def _check_label_definitions(
    labels: Iterable[LabelDefinition], source_map: SourceMap, canonical: Callable[[str], str]
) -> list[Diagnostic]:
    """Duplicates, and cycles the ``labels:`` section makes by itself (section 1),
    with names compared as the policy compares them (``canonical``: aliases
    resolved, so two spellings of one label are one entry)."""
    file = source_map.file
    found: list[Diagnostic] = []
    scoped: dict[tuple[str | None, str], LabelDefinition] = {}
    for definition in labels:
        key = (definition.source, canonical(definition.name))
        first = scoped.setdefault(key, definition)
        if first is not definition:
            same = ""
            if name_key(first.name) != name_key(definition.name):
                same = f" as {first.name!r}, another spelling of the same label"
            found.append(
                error(
                    "duplicate-label",
                    f"label {definition.name!r} is placed already{same} "
                    f"(line {first.position.line})",
                    file,
                    definition.position,
                )
            )
    sources = {source for source, _ in scoped} | {None}
    reported: set[frozenset[str]] = set()
    for source in sorted(sources, key=lambda s: s or ""):
        # the parents a label from `source` gets: its own entries over unscoped ones
        parent_of: dict[str, LabelDefinition] = {
            name: d for (s, name), d in scoped.items() if s is None
        }
        parent_of.update(
            {name: d for (s, name), d in scoped.items() if s == source and s is not None}
        )
        for start in sorted(parent_of):
            chain = [start]
            current = start
            while True:
                placed = parent_of.get(current)
                if placed is None or not placed.parent:
                    break
                current = canonical(placed.parent)
                if current in chain:
                    cycle = chain[chain.index(current) :]
                    members = frozenset(cycle)
                    if members not in reported:
                        reported.add(members)
                        first_def = min((parent_of[n] for n in cycle), key=lambda d: d.position)
                        names = " -> ".join(
                            [*(parent_of[n].name for n in cycle), parent_of[cycle[0]].name]
                        )
                        found.append(
                            error(
                                "label-cycle",
                                f"labels: places labels in a cycle ({names}); a label cannot be "
                                "its own ancestor",
                                file,
                                first_def.position,
                            )
                        )
                    break
                chain.append(current)
    return found


# -- extends (POLICY_SPEC section 9) --------------------------------------

MAX_EXTENDS_DEPTH = 8
"""How many ``extends`` steps a policy may stand on (section 9)."""


@dataclass(frozen=True, slots=True)
class _Effective:
    """A policy's effective document: the values (only those the schema
    accepted), where each was written (positions naming their file once a base
    is merged in), which values the schema refused, the folder of the file that
    wrote each detector entry a base gave, and how many ``extends`` steps it
    stands on."""

    data: dict[str, Any]
    source_map: SourceMap
    report: SchemaReport
    detector_dirs: Mapping[str, str]
    depth: int


@dataclass(frozen=True, slots=True)
class _Layer:
    """One file loaded: its result, and, when it loaded, its effective document
    (what a file that extends it builds on). ``unreadable`` says why the file
    could not be read at all."""

    result: LoadResult
    file: str
    base_dir: str
    effective: _Effective | None
    acknowledged: Mapping[str, Mapping[int, frozenset[str]]]
    unreadable: str | None = None


def _failed_layer(
    file: str, base_dir: str, diagnostics: tuple[Diagnostic, ...], unreadable: str | None = None
) -> _Layer:
    return _Layer(LoadResult(None, diagnostics), file, base_dir, None, {}, unreadable)


class PolicyFileCache:
    """Policy files read, parsed and checked once each, by resolved path, for
    loads that share it: the routes of a policy set that extend one base read
    it once. Use one cache for one load of related files (a file edited
    meanwhile is not read again) and one registry (results are kept per
    registry). ``reads`` and ``parses`` count the work done.

    ``read`` reads files from elsewhere than the file system (a git revision:
    an old policy's base is the base at that revision, never today's); it gets
    the path as written, joined to its extending file's folder, and raises
    :class:`OSError` when it cannot read it."""

    def __init__(self, read: Callable[[str], str] | None = None) -> None:
        self._read = read
        self._layers: dict[tuple[Path, int], _Layer] = {}
        self._registries: dict[int, DetectorRegistry | None] = {}
        self._loading: list[Path] = []
        self._texts: dict[Path, str] = {}
        self.reads = 0
        self.parses = 0

    def read_already(self, path: Path, text: str) -> None:
        """``path``'s ``text``, read by the caller (to tell a set from a policy):
        loading ``path`` uses it instead of reading the file again."""
        self._texts[self._key(path)] = text

    def _key(self, path: Path) -> Path:
        return resolved_path(path) if self._read is None else Path(os.path.normpath(path))

    def loading(self, path: Path) -> bool:
        """Whether ``path`` is being loaded now (extending it again is a cycle)."""
        return self._key(path) in self._loading

    def layer(self, path: Path, shown: str, registry: DetectorRegistry | None) -> _Layer:
        """The file at ``path`` (named ``shown`` in diagnostics) loaded."""
        resolved = self._key(path)
        self._registries[id(registry)] = registry  # keeps the id from being reused
        key = (resolved, id(registry))
        found = self._layers.get(key)
        if found is not None:
            return found
        self._loading.append(resolved)
        try:
            loaded = self._load(path, resolved, shown, registry)
        finally:
            self._loading.pop()
        self._layers[key] = loaded
        return loaded

    def _load(
        self, path: Path, resolved: Path, shown: str, registry: DetectorRegistry | None
    ) -> _Layer:
        folder = str(resolved.parent)
        self.reads += 1
        try:
            text = self._texts.pop(resolved, None)
            if text is None:
                text = read_policy_text(path) if self._read is None else self._read(str(resolved))
        except SourceError as exc:
            return _failed_layer(shown, folder, sort_diagnostics(exc.diagnostics))
        except (OSError, ValueError) as exc:  # ValueError: a NUL character in the name
            reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
            diagnostic = error("unreadable", f"cannot read the policy: {reason}", shown, Position())
            return _failed_layer(shown, folder, (diagnostic,), reason)
        return _check_layer(text, shown, folder, registry, self)


def resolved_path(path: Path) -> Path:
    """``path`` resolved; as written (made absolute) when it cannot be: a
    symlink loop, a NUL character. Reading it then fails with a located error."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL: compare as written
        return path.absolute()


def _base_of(
    data: Mapping[str, Any],
    source_map: SourceMap,
    report: SchemaReport,
    base_dir: str,
    registry: DetectorRegistry | None,
    files: PolicyFileCache,
) -> tuple[_Layer | None, list[Diagnostic]]:
    """The base ``extends`` names, loaded; or None, and the errors at the
    ``extends`` node (with the base's own diagnostics, at their positions)."""
    written = data.get("extends")
    if not isinstance(written, str) or not report.usable(("extends",)):
        return None, []  # the schema reported it
    file = source_map.file
    at = source_map.at(("extends",))
    path = Path(base_dir) / written
    # the base as the user would find it: next to this file, as this file is named
    shown = os.path.normpath(os.path.join(os.path.dirname(file), written))
    if files.loading(path):
        return None, [
            error(
                "extends-cycle",
                f"extends: {written!r} leads back to a policy being loaded: a cycle; "
                "a policy cannot be its own base",
                file,
                at,
            )
        ]
    base = files.layer(path, shown, registry)
    if base.unreadable is not None:
        return None, [
            error(
                "extends-unreadable",
                f"extends: cannot read the base policy {shown!r}: {base.unreadable}",
                file,
                at,
            )
        ]
    if base.effective is None:
        count = len(base.result.errors)
        return None, [
            error(
                "base-does-not-load",
                f"extends: the base policy {shown!r} does not load ({count} "
                f"error{'s' if count != 1 else ''}, reported at their own positions)",
                file,
                at,
            ),
            *base.result.diagnostics,
        ]
    if base.effective.depth + 1 > MAX_EXTENDS_DEPTH:
        return None, [
            error(
                "extends-depth",
                f"extends: {written!r} makes more than {MAX_EXTENDS_DEPTH} levels of "
                "extends; flatten some of them",
                file,
                at,
            )
        ]
    return base, list(base.result.diagnostics)


class _Copier:
    """Copies what source maps say of values (and their keys) to new paths in
    one map, each position naming the file it was written in."""

    def __init__(self, file: str) -> None:
        self.map = SourceMap(file)
        # each table grouped once by the first two parts of its paths, so that a
        # rule's entries are found without scanning the whole file's
        self._groups: dict[int, tuple[object, dict[JsonPath, list[tuple[JsonPath, Position]]]]] = {}

    def copy(self, source: SourceMap, old: JsonPath, new: JsonPath) -> None:
        for table, into in ((source.values, self.map.values), (source.keys, self.map.keys)):
            for path, position in self._under(table, old):
                into[(*new, *path[len(old) :])] = _named(position, source.file)

    def _under(
        self, table: Mapping[JsonPath, Position], prefix: JsonPath
    ) -> list[tuple[JsonPath, Position]]:
        kept = self._groups.get(id(table))
        if kept is None:
            groups: dict[JsonPath, list[tuple[JsonPath, Position]]] = {}
            for path, position in table.items():
                groups.setdefault(path[:2], []).append((path, position))
            kept = (table, groups)  # the table kept alive: its id is not reused
            self._groups[id(table)] = kept
        groups = kept[1]
        if len(prefix) >= 2:
            return [(p, at) for p, at in groups.get(prefix[:2], ()) if p[: len(prefix)] == prefix]
        return [
            (p, at)
            for head, entries in groups.items()
            if head[: len(prefix)] == prefix
            for p, at in entries
        ]


_REPLACED_KEYS = ("description", "min_confidence", "default", "on_error")


def _merge(
    base: _Layer,
    data: Mapping[str, Any],
    source_map: SourceMap,
    report: SchemaReport,
    registry: DetectorRegistry | None,
) -> tuple[_Effective, list[Diagnostic]]:
    """The effective document of a file that extends ``base`` (section 9's
    table): the base's, with the values of this file the schema accepted on top."""
    from policy_engine.schema import SchemaReport as Report

    assert base.effective is not None
    below = base.effective
    file = source_map.file
    out = _Copier(file)
    found: list[Diagnostic] = []
    merged: dict[str, Any] = {}
    out.map.values[()] = _named(source_map.at(()), file)
    for key in ("version", "name", *_REPLACED_KEYS):
        if key in data and report.usable((key,)):
            merged[key] = data[key]
            out.copy(source_map, (key,), (key,))
        elif key in below.data:
            merged[key] = below.data[key]
            out.copy(below.source_map, (key,), (key,))
    # detectors: by name, an entry replaces the base's whole
    detectors: dict[str, Any] = {}
    dirs: dict[str, str] = {}
    for name, settings in (below.data.get("detectors") or {}).items():
        detectors[name] = settings
        dirs[name] = below.detector_dirs.get(name, base.base_dir)
        out.copy(below.source_map, ("detectors", name), ("detectors", name))
    own_detectors = data.get("detectors")
    if isinstance(own_detectors, dict):
        for name, settings in own_detectors.items():
            if report.usable(("detectors", name)) and isinstance(settings, dict):
                detectors[name] = settings
                dirs.pop(name, None)
                out.copy(source_map, ("detectors", name), ("detectors", name))
    if "detectors" in below.data or isinstance(own_detectors, dict):
        merged["detectors"] = detectors
        at = source_map if isinstance(own_detectors, dict) else below.source_map
        out.map.values.setdefault(("detectors",), _named(at.at(("detectors",)), at.file))
        out.map.keys.setdefault(("detectors",), _named(at.key_at(("detectors",)), at.file))
    _merge_cascade(below, data, source_map, report, out, merged)
    # labels: the base's entries, then this file's; one for the same name and
    # source (as names compare) replaces the base's
    aliases = _alias_map(registry)

    def label_key(entry: Mapping[str, Any]) -> tuple[str | None, str]:
        key = name_key(tidy_name(entry["name"]))
        return entry.get("source"), aliases.get(key, key)

    own_labels = _usable_items(data, "labels", report)
    replaced = {label_key(entry) for _, entry in own_labels}
    labels: list[Any] = []
    for index, entry in enumerate(below.data.get("labels") or []):
        if label_key(entry) not in replaced:
            out.copy(below.source_map, ("labels", index), ("labels", len(labels)))
            labels.append(entry)
    for index, entry in own_labels:
        out.copy(source_map, ("labels", index), ("labels", len(labels)))
        labels.append(entry)
    if labels or "labels" in below.data or "labels" in data:
        merged["labels"] = labels
    # rules: remove_rules drops base rules; a rule with a base rule's id
    # replaces it in place; other rules are appended in order
    base_rules: list[tuple[SourceMap, JsonPath, Any]] = [
        (below.source_map, ("rules", index), rule)
        for index, rule in enumerate(below.data.get("rules") or [])
    ]
    base_ids = {rule["id"] for _, _, rule in base_rules}
    removed: set[str] = set()
    for index, rule_id in _usable_items(data, "remove_rules", report):
        if rule_id in base_ids:
            removed.add(rule_id)
        else:
            known = ", ".join(sorted(base_ids)) or "none"
            found.append(
                error(
                    "unknown-removed-rule",
                    f"remove_rules: the base {base.file!r} has no rule {rule_id!r} "
                    f"(its rules: {known})",
                    file,
                    source_map.at(("remove_rules", index)),
                )
            )
    rules = [entry for entry in base_rules if entry[2]["id"] not in removed]
    replaceable = {entry[2]["id"]: position for position, entry in enumerate(rules)}
    for index, rule in _usable_items(data, "rules", report):
        entry = (source_map, ("rules", index), rule)
        position = replaceable.pop(rule["id"], None)
        if position is None:
            rules.append(entry)
        else:
            rules[position] = entry
    for position, (written_in, path, _) in enumerate(rules):
        out.copy(written_in, path, ("rules", position))
    merged["rules"] = [rule for _, _, rule in rules]
    out.map.keys.setdefault(("rules",), _named(source_map.key_at(("rules",)), file))
    out.map.values.setdefault(("rules",), _named(source_map.at(("rules",)), file))
    effective = _Effective(merged, out.map, Report((), frozenset()), dirs, below.depth + 1)
    return effective, found


def _merge_cascade(
    below: _Effective,
    data: Mapping[str, Any],
    source_map: SourceMap,
    report: SchemaReport,
    out: _Copier,
    merged: dict[str, Any],
) -> None:
    """``cascade:`` of a file that extends a base: ``skip`` replaces the base's
    where this file gives it; ``costs`` merge by detector name, this file's
    entry replacing the base's."""
    base = below.data.get("cascade")
    own = data.get("cascade") if report.usable(("cascade",)) else None
    if not isinstance(base, dict) and not isinstance(own, dict):
        return
    cascade: dict[str, Any] = {}
    costs: dict[str, Any] = {}
    for layer, written_in in ((base, below.source_map), (own, source_map)):
        if not isinstance(layer, dict):
            continue
        if "skip" in layer:
            cascade["skip"] = layer["skip"]
            out.copy(written_in, ("cascade", "skip"), ("cascade", "skip"))
        for name, cost in (layer.get("costs") or {}).items():
            costs[name] = cost
            out.copy(written_in, ("cascade", "costs", name), ("cascade", "costs", name))
    if costs:
        cascade["costs"] = costs
    merged["cascade"] = cascade
    at = source_map if isinstance(own, dict) else below.source_map
    out.map.values.setdefault(("cascade",), _named(at.at(("cascade",)), at.file))
    out.map.keys.setdefault(("cascade",), _named(at.key_at(("cascade",)), at.file))


def _named(position: Position, file: str) -> Position:
    return position if position.file else dataclasses.replace(position, file=file)
