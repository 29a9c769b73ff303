"""Rewriting a policy's label names from one taxonomy to the next (model 6 -> 7).

The text is edited in place: only the scalars that hold a renamed label are
replaced, at the positions ``yaml.compose`` reports for them, so comments,
layout and quoting stay as written. Where a name's meaning cannot be carried
over exactly, the rule is left as it is (or renamed only where the name
itself is exact) and a finding says why:

- ``migrate-ambiguous``: the old name maps to several new ones (which one the
  rule meant is not for a tool to guess);
- ``migrate-unmapped``: the old taxonomy knows the name, the mapping and the
  new taxonomy do not;
- ``migrate-category-changed``: a category rule (``parent:``) whose new
  category covers other labels than the old one did;
- ``migrate-parent-changed``: a ``{name, parent}`` rule whose label is
  reported under another parent in the new taxonomy (it would select nothing);
- ``migrate-collision``: two rules that would get the same match (a load error):
  the later one is left as is;
- ``migrate-other-source``: a name scoped to another detector, left as is.

The mapping comes in as plain data (:data:`NameMapping`); :func:`load_mapping`
reads the ``{"level1": {...}, "level2": {...}}`` file the Rekognition plugin ships.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from policy_engine.diagnostics import Diagnostic, Position, warning
from policy_engine.names import name_key, nearest_current_name
from policy_engine.taxonomy import Taxonomy

NameMapping = Mapping[str, tuple[str, ...]]
"""Old name (any spelling) -> the new names it becomes, one or several."""


def load_mapping(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Read a mapping file: ``{"level1": {old: [new, ...]}, "level2": {...}, ...}``
    (every key starting with ``level``; other keys, such as ``note``, are ignored),
    or a flat ``{old: [new, ...]}``. Levels are merged."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return mapping_from_data(data)


def mapping_from_data(data: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    if not isinstance(data, Mapping):
        raise ValueError("a name mapping must be a JSON object")
    levels = [v for k, v in data.items() if k.startswith("level") and isinstance(v, Mapping)]
    if not levels:
        levels = [{k: v for k, v in data.items() if isinstance(v, list)}]
    merged: dict[str, tuple[str, ...]] = {}
    for level in levels:
        for old, new in level.items():
            if not isinstance(new, list) or not all(isinstance(n, str) for n in new):
                raise ValueError(f"mapping of {old!r}: expected a list of names")
            found = list(merged.get(old, ()))
            found += [n for n in new if n not in found]
            merged[old] = tuple(found)
    return merged


@dataclass(frozen=True, slots=True)
class Migration:
    """The new text, the renames made and every finding about what was not exact."""

    text: str
    renamed: int
    findings: tuple[Diagnostic, ...]


@dataclass(frozen=True, slots=True)
class _Scalar:
    node: yaml.ScalarNode
    where: str  # e.g. "rules[2].match.parent", for messages

    @property
    def value(self) -> str:
        return str(self.node.value)

    @property
    def position(self) -> Position:
        mark = self.node.start_mark
        return Position(mark.line + 1, mark.column + 1)


@dataclass(frozen=True, slots=True)
class _Entry:
    """A rule's match or a ``labels:`` entry: its name, parent and source scalars."""

    kind: str  # "rule" or "label"
    index: int
    rule_id: str | None
    name: _Scalar | None
    parent: _Scalar | None
    source: str | None

    def title(self) -> str:
        if self.kind == "rule":
            return f"rule {self.rule_id!r}" if self.rule_id else f"rules[{self.index}]"
        return f"labels[{self.index}]"


def _mapping_items(node: yaml.Node) -> Iterator[tuple[str, yaml.Node]]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                yield str(key.value), value


def _scalar(node: yaml.Node | None, where: str) -> _Scalar | None:
    if isinstance(node, yaml.ScalarNode) and isinstance(node.value, str):
        return _Scalar(node, where)
    return None


def _entries(root: yaml.Node) -> Iterator[_Entry]:
    top = dict(_mapping_items(root))
    rules = top.get("rules")
    if isinstance(rules, yaml.SequenceNode):
        for index, rule in enumerate(rules.value):
            fields = dict(_mapping_items(rule))
            match = dict(_mapping_items(fields.get("match", yaml.MappingNode("", []))))
            rule_id = _scalar(fields.get("id"), "")
            source = _scalar(match.get("source"), "")
            yield _Entry(
                "rule",
                index,
                rule_id.value if rule_id else None,
                _scalar(match.get("name"), f"rules[{index}].match.name"),
                _scalar(match.get("parent"), f"rules[{index}].match.parent"),
                source.value if source else None,
            )
    labels = top.get("labels")
    if isinstance(labels, yaml.SequenceNode):
        for index, entry in enumerate(labels.value):
            fields = dict(_mapping_items(entry))
            source = _scalar(fields.get("source"), "")
            yield _Entry(
                "label",
                index,
                None,
                _scalar(fields.get("name"), f"labels[{index}].name"),
                _scalar(fields.get("parent"), f"labels[{index}].parent"),
                source.value if source else None,
            )


def _plain_ok(value: str) -> bool:
    """Whether ``value`` reads back as itself written plain, in block and flow context."""
    for template in ("k: {}\n", "{{k: {}}}\n", "[{}]\n"):
        try:
            loaded = yaml.safe_load(template.format(value))
        except yaml.YAMLError:
            return False
        found = loaded.get("k") if isinstance(loaded, dict) else loaded[0]
        if found != value:
            return False
    return True


def quoted_like(original: str, style: str | None, value: str) -> str:
    """``value`` as YAML in the quoting style of the scalar it replaces, where it can be."""
    if style is None and _plain_ok(value):
        return value
    if style == "'" and "\n" not in value:
        return "'" + value.replace("'", "''") + "'"
    replacement = json.dumps(value, ensure_ascii=False)  # a valid YAML double-quoted scalar
    if style in ("|", ">"):
        # keep the line break(s) the block scalar's span ends with
        replacement += original[len(original.rstrip()) :]
    return replacement


class _Migrator:
    def __init__(
        self,
        text: str,
        file: str,
        mapping: NameMapping,
        old: Taxonomy,
        new: Taxonomy,
        sources: frozenset[str],
    ) -> None:
        self.text = text
        self.file = file
        self.mapping = {name_key(k): v for k, v in mapping.items()}
        self.old = old
        self.new = new
        self.sources = sources
        self.findings: list[Diagnostic] = []
        self.edits: dict[int, tuple[int, str]] = {}

    # -- names ------------------------------------------------------------------

    def targets(self, name: str) -> tuple[str, ...] | None:
        """The new names of ``name``; None when it is no old-taxonomy name to migrate."""
        key = name_key(name)
        if key in self.mapping:
            return tuple(self._spelt(n) for n in self.mapping[key])
        if self.old.knows(self.old.canonical_key(name)):
            new_key = self.new.canonical_key(name)
            if self.new.knows(new_key):
                return (self.new.display_name(new_key) or name,)
            return ()
        return None

    def changes(self, name: str) -> bool:
        """Whether migrating would change what ``name`` means (not only its case)."""
        targets = self.targets(name)
        if targets is None:
            return False
        return [name_key(t) for t in targets] != [name_key(name)]

    def _spelt(self, name: str) -> str:
        key = self.new.canonical_key(name)
        return self.new.display_name(key) or name

    def old_members(self, category: str) -> set[str]:
        """Keys of the old category and every old label under it."""
        return self._members(self.old, category)

    def new_members(self, category: str) -> set[str]:
        return self._members(self.new, category)

    @classmethod
    def _members(cls, taxonomy: Taxonomy, category: str) -> set[str]:
        top = taxonomy.canonical_key(category)
        keys = taxonomy.keys()
        return {key for key in keys if top in cls._chain(taxonomy, key)}

    @staticmethod
    def _chain(taxonomy: Taxonomy, key: str) -> list[str]:
        chain = [key]
        current = taxonomy.parent_key(key)
        while current and current not in chain:
            chain.append(current)
            current = taxonomy.parent_key(current)
        return chain

    # -- findings and edits -----------------------------------------------------

    def note(self, code: str, scalar: _Scalar, message: str) -> None:
        self.findings.append(warning(code, message, self.file, scalar.position))

    def rename(self, scalar: _Scalar, new: str) -> None:
        if scalar.value == new:
            return
        start, end = scalar.node.start_mark.index, scalar.node.end_mark.index
        original = self.text[start:end]
        self.edits[start] = (end, quoted_like(original, scalar.node.style, new))

    def apply(self) -> str:
        text = self.text
        for start in sorted(self.edits, reverse=True):
            end, replacement = self.edits[start]
            text = text[:start] + replacement + text[end:]
        return text

    # -- one scalar ---------------------------------------------------------------

    def migrate_name(self, entry: _Entry, scalar: _Scalar) -> str | None:
        """The single new name for ``scalar``, or None (left as is, with a finding
        where it is an old name that does not carry over)."""
        targets = self.targets(scalar.value)
        if targets is None:
            return None
        what = f"{entry.title()}: {scalar.where} {scalar.value!r}"
        if len(targets) > 1:
            candidates = ", ".join(repr(t) for t in targets)
            self.note(
                "migrate-ambiguous",
                scalar,
                f"{what} maps to several model 7 labels: {candidates}; left as is: "
                "split it by hand into one rule per label",
            )
            return None
        if not targets:
            nearest = nearest_current_name(scalar.value, self.new)
            self.note(
                "migrate-unmapped",
                scalar,
                f"{what} has no model 7 equivalent; left as is (it would select nothing)"
                + (f"; the nearest current name is '{nearest}'" if nearest is not None else ""),
            )
            return None
        return targets[0]

    def category_check(self, entry: _Entry, scalar: _Scalar, new: str) -> None:
        """A category rule covers the same labels after the rename, or a finding says
        which labels it gains and loses."""
        mapped: set[str] = set()
        lost: list[str] = []
        for key in sorted(self.old_members(scalar.value)):
            display = self.old.display_name(key) or key
            targets = self.targets(display) or ()
            if not targets:
                lost.append(display)
            mapped.update(self.new.canonical_key(t) for t in targets)
        members = self.new_members(new)
        gained = sorted(self.new.display_name(k) or k for k in members - mapped)
        outside = sorted(self.new.display_name(k) or k for k in mapped - members)
        if not (gained or lost or outside):
            return
        parts = []
        if gained:
            parts.append(f"now also covers {', '.join(gained)}")
        if outside:
            parts.append(f"no longer covers {', '.join(outside)} (elsewhere in model 7)")
        if lost:
            parts.append(f"model 6 labels without a model 7 name: {', '.join(lost)}")
        self.note(
            "migrate-category-changed",
            scalar,
            f"{entry.title()}: category {scalar.value!r} -> {new!r} covers other labels: "
            + "; ".join(parts),
        )

    # -- the whole file -----------------------------------------------------------

    def run(self, root: yaml.Node) -> int:
        renamed = 0
        seen_matches: dict[tuple[str | None, str | None, str | None], str] = {}
        for entry in _entries(root):
            scoped_elsewhere = entry.source is not None and entry.source not in self.sources
            new_name = new_parent = None
            if scoped_elsewhere:
                for scalar in (entry.name, entry.parent):
                    if scalar is not None and self.changes(scalar.value):
                        self.note(
                            "migrate-other-source",
                            scalar,
                            f"{entry.title()}: {scalar.where} {scalar.value!r} is scoped to "
                            f"source {entry.source!r}; left as is: check whether it should "
                            "follow the model 7 names",
                        )
            else:
                if entry.name is not None:
                    new_name = self.migrate_name(entry, entry.name)
                if entry.parent is not None:
                    new_parent = self.migrate_name(entry, entry.parent)
            name = new_name if new_name is not None else _value(entry.name)
            parent = new_parent if new_parent is not None else _value(entry.parent)
            if entry.kind == "rule":
                matcher = (
                    name_key(name) if name is not None else None,
                    name_key(parent) if parent is not None else None,
                    entry.source,
                )
                first = seen_matches.get(matcher)
                if first is not None and (new_name is not None or new_parent is not None):
                    anchor = entry.parent or entry.name
                    assert anchor is not None
                    self.note(
                        "migrate-collision",
                        anchor,
                        f"{entry.title()} would get the same match as {first}; left as is: "
                        "merge the two rules by hand",
                    )
                    old_matcher = (
                        name_key(_value(entry.name) or "") if entry.name else None,
                        name_key(_value(entry.parent) or "") if entry.parent else None,
                        entry.source,
                    )
                    seen_matches.setdefault(old_matcher, entry.title())
                    continue
                seen_matches.setdefault(matcher, entry.title())
                if entry.parent is not None and new_parent is not None:
                    if entry.name is None:
                        self.category_check(entry, entry.parent, new_parent)
                    elif name is not None:
                        self.parent_check(entry, entry.parent, name, new_parent)
            for scalar, new in ((entry.name, new_name), (entry.parent, new_parent)):
                if scalar is not None and new is not None and new != scalar.value:
                    self.rename(scalar, new)
                    renamed += 1
        return renamed

    def parent_check(self, entry: _Entry, scalar: _Scalar, name: str, parent: str) -> None:
        """A ``{name, parent}`` rule selects the label only under that direct parent."""
        parent_key = self.new.parent_key(self.new.canonical_key(name))
        if parent_key is None or parent_key == self.new.canonical_key(parent):
            return
        actual = self.new.display_name(parent_key) or "" if parent_key else ""
        where = f"directly under {actual!r}" if actual else "at the top"
        self.note(
            "migrate-parent-changed",
            scalar,
            f"{entry.title()}: model 7 reports {name!r} {where}, not under {parent!r}, so "
            "this rule would select nothing; fix its parent by hand",
        )


def _value(scalar: _Scalar | None) -> str | None:
    return None if scalar is None else scalar.value


def migrate_text(
    text: str,
    mapping: NameMapping,
    old: Taxonomy,
    new: Taxonomy,
    *,
    sources: frozenset[str] = frozenset(),
    file: str = "<string>",
) -> Migration:
    """Rewrite the label names of policy ``text`` from taxonomy ``old`` to ``new``.

    Names in rule matches and ``labels:`` entries are rewritten when the entry is
    unscoped or scoped to one of ``sources`` (the detectors whose taxonomies these
    are). Nothing else in the text changes. The text must parse as YAML (load it
    first to report errors properly).
    """
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        return Migration(text, 0, ())
    migrator = _Migrator(text, file, mapping, old, new, sources)
    renamed = migrator.run(root)
    findings = tuple(sorted(migrator.findings, key=Diagnostic.sort_key))
    return Migration(migrator.apply(), renamed, findings)
