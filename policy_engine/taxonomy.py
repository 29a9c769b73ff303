"""Label hierarchies: which label sits under which (POLICY_SPEC section 1).

A detector plugin provides one :class:`Taxonomy` per model version; the
policy's ``labels:`` section extends it. All look-ups go through
:func:`~policy_engine.names.name_key`, and aliases (two spellings of one
label) resolve to the canonical spelling first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from policy_engine.names import name_key


@dataclass(frozen=True, slots=True)
class TaxonomyEntry:
    name: str
    parent: str = ""
    level: int | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Taxonomy:
    """An immutable label hierarchy.

    ``id`` names it in records and messages (e.g. ``rekognition-moderation/v7``).
    ``aliases`` maps another spelling to the canonical one. A name listed twice
    keeps its first non-self parent: model 6 lists ``Gambling`` both at the
    top and under itself, and a label is never its own ancestor.
    """

    id: str
    entries: tuple[TaxonomyEntry, ...]
    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    _parent_of: Mapping[str, str] = field(init=False, repr=False, compare=False)
    _display: Mapping[str, str] = field(init=False, repr=False, compare=False)
    _alias_of: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(self.entries))
        object.__setattr__(self, "aliases", MappingProxyType(dict(self.aliases)))
        alias_of = {name_key(a): name_key(c) for a, c in self.aliases.items()}
        parent_of: dict[str, str] = {}
        display: dict[str, str] = {}
        for entry in self.entries:
            key = name_key(entry.name)
            display.setdefault(key, entry.name)
            parent_key = name_key(entry.parent) if entry.parent else ""
            parent_key = alias_of.get(parent_key, parent_key)
            if parent_key == key:
                parent_of.setdefault(key, "")
            elif parent_of.get(key, "") == "":
                parent_of[key] = parent_key
        object.__setattr__(self, "_parent_of", MappingProxyType(parent_of))
        object.__setattr__(self, "_display", MappingProxyType(display))
        object.__setattr__(self, "_alias_of", MappingProxyType(alias_of))

    def canonical_key(self, name: str) -> str:
        """The comparison key of ``name``, with an alias replaced by its canonical spelling."""
        key = name_key(name)
        return self._alias_of.get(key, key)

    def knows(self, key: str) -> bool:
        return key in self._parent_of

    def parent_key(self, key: str) -> str | None:
        """The parent's key of a known label ("" at the top), or None if unknown."""
        return self._parent_of.get(key)

    def display_name(self, key: str) -> str | None:
        return self._display.get(key)

    def keys(self) -> Iterable[str]:
        return self._parent_of.keys()

    @classmethod
    def from_json_file(cls, taxonomy_id: str, path: Path) -> Taxonomy:
        """Read the ``{"labels": [{name, parent, level?}], "aliases": {...}}`` format
        of the shared Rekognition taxonomies."""
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls.from_mapping(taxonomy_id, data)

    @classmethod
    def from_mapping(cls, taxonomy_id: str, data: Mapping[str, Any]) -> Taxonomy:
        entries = tuple(
            TaxonomyEntry(
                name=row["name"], parent=row.get("parent", "") or "", level=row.get("level")
            )
            for row in data.get("labels", ())
        )
        return cls(id=taxonomy_id, entries=entries, aliases=dict(data.get("aliases", {})))
