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
    Diagnostic,
    Position,
    Severity,
    error,
    sort_diagnostics,
)
from policy_engine.errors import PolicyLoadError, SourceError
from policy_engine.json_types import plain
from policy_engine.lint import lint_policy
from policy_engine.model import Body, LabelDefinition, Match, Policy, Rule, Verdict
from policy_engine.names import alias_keys, name_key, tidy_name
from policy_engine.source import JsonPath, SourceMap, parse_document, read_policy_text

if TYPE_CHECKING:
    from policy_engine.plugins import DetectorRegistry
    from policy_engine.schema import SchemaReport


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A policy (None if it has errors) and every diagnostic about it, sorted by position."""

    policy: Policy | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)


def check_policy_text(
    text: str,
    file: str = "<string>",
    *,
    registry: DetectorRegistry | None = None,
    base_dir: str | None = None,
) -> LoadResult:
    """Load a policy from text, collecting diagnostics instead of raising.

    With a ``registry``, detector names and settings are checked against the
    installed plugins, their taxonomies' aliases count when comparing rule
    matchers, and the linter (:mod:`policy_engine.lint`) checks names and
    what each rule decides against the installed taxonomies.
    """
    from policy_engine.schema import check_policy_data

    try:
        document = parse_document(text, file)
    except SourceError as exc:
        return LoadResult(None, sort_diagnostics(exc.diagnostics))
    source_map = document.source_map
    diagnostics = list(document.diagnostics)
    acknowledged = acknowledged_codes(text)
    report = check_policy_data(document.data, source_map, document.refused)
    diagnostics.extend(report.diagnostics)
    if isinstance(document.data, dict):
        # Go on with every part the schema accepted, so that one run reports all errors.
        detectors = document.data.get("detectors")
        if isinstance(detectors, dict) and report.usable(("detectors",)):
            diagnostics.extend(_check_detectors(detectors, source_map, registry))
        if isinstance(document.data.get("version"), float):
            # JSON Schema counts 1.0 as an integer; the spec asks for the integer 1
            diagnostics.append(
                error(
                    "invalid-value",
                    "version: write the integer 1, not a decimal",
                    file,
                    source_map.at(("version",)),
                )
            )
        built = _build(
            document.data, source_map, base_dir or ".", report, _alias_map(registry), registry
        )
        diagnostics.extend(_check_meaning(built, source_map))
        # the linter (POLICY_SPEC section 7): unknown names are errors too, so they
        # are always checked; what each rule decides only when the policy is
        # consistent, i.e. has no errors
        diagnostics.extend(
            lint_policy(
                built.policy,
                source_map,
                registry=registry,
                data=document.data,
                rule_indexes=built.rule_indexes,
                label_indexes=built.label_indexes,
                decisions=not any(d.severity is Severity.ERROR for d in diagnostics),
                acknowledged=acknowledged,
            )
        )
        policy: Policy | None = built.policy
    else:
        policy = None
    diagnostics = _without_ignored_warnings(diagnostics, acknowledged)
    if any(d.severity is Severity.ERROR for d in diagnostics):
        policy = None
    return LoadResult(policy, sort_diagnostics(diagnostics))


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
    diagnostics: list[Diagnostic], acknowledged: Mapping[int, frozenset[str]]
) -> list[Diagnostic]:
    """Drop warnings a comment acknowledges: ``# policy-engine: ignore[CODE, ...]`` at
    the end of the warned line, or on a comment line of its own just above it.
    Errors are never ignored. A comment, not a key: the policy language is unchanged."""
    return [
        d
        for d in diagnostics
        if d.severity is Severity.ERROR
        or d.code in UNKNOWN_NAME_CODES
        or d.code not in acknowledged.get(d.line, ())
    ]


def check_policy_file(
    path: str | os.PathLike[str], *, registry: DetectorRegistry | None = None
) -> LoadResult:
    """Like :func:`check_policy_text`, reading the file (at most 1 MiB)."""
    file_path = Path(path)
    try:
        text = read_policy_text(file_path)
    except SourceError as exc:
        return LoadResult(None, sort_diagnostics(exc.diagnostics))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return LoadResult(
            None, (error("unreadable", f"cannot read the policy: {reason}", str(path), Position()),)
        )
    return check_policy_text(
        text, str(path), registry=registry, base_dir=str(file_path.resolve().parent)
    )


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
    path: str | os.PathLike[str], *, registry: DetectorRegistry | None = None
) -> Policy:
    """Load a policy file; raise :class:`PolicyLoadError` with every error."""
    return _policy_or_raise(check_policy_file(path, registry=registry))


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
    )
    return _Built(policy, tuple(i for i, _ in rules), tuple(i for i, _ in labels))


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
            found.append(
                error(
                    "duplicate-rule-id",
                    f"rule id {rule.id!r} is used already by rules[{first}] "
                    f"(line {source_map.at(('rules', first)).line})",
                    file,
                    source_map.at(("rules", index, "id")),
                )
            )
        matcher = (canonical(rule.match.name), canonical(rule.match.parent), rule.match.source)
        first_index, first_id = matchers.setdefault(matcher, (index, rule.id))
        if first_index != index:
            earlier = policy.rules[built.rule_indexes.index(first_index)].match
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
                    f"(rules[{first_index}]): {rule.match.describe()}; {why}, so merge "
                    "the two rules",
                    file,
                    source_map.at(("rules", index, "match")),
                )
            )
        found.extend(_check_body(rule.body, ("rules", index), source_map))
    found.extend(_check_body(policy.default, ("default",), source_map))
    found.extend(_check_label_definitions(policy.labels, source_map, policy.canonical_key))
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
