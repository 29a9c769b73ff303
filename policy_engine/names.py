"""How label names compare: case-insensitively, after trimming and collapsing white space."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=4096)
def name_key(name: str) -> str:
    """The comparison key of a label name (POLICY_SPEC section 1).

    ``name_key("weapon  Violence ") == name_key("Weapon Violence")``.
    """
    return " ".join(name.split()).casefold()


def tidy_name(name: str) -> str:
    """A name with its white space trimmed and collapsed, case kept (for display)."""
    return " ".join(name.split())


def alias_keys(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Alias spellings and the canonical spelling each stands for, as name keys:
    ``(alias, canonical)`` pairs (two spellings of one label, from the
    detectors' taxonomies) become ``{name_key(alias): name_key(canonical)}``.

    A chain (A is B, B is C) resolves to its end, so that every spelling of a
    label has one key; a self-alias is dropped, and so is a cycle (no
    spelling in it can be told canonical).
    """
    direct: dict[str, str] = {}
    for alias, canonical in pairs:
        key, target = name_key(alias), name_key(canonical)
        if key != target:
            direct.setdefault(key, target)
    resolved: dict[str, str] = {}
    for key in direct:
        seen = {key}
        target = direct[key]
        while target in direct and target not in seen:
            seen.add(target)
            target = direct[target]
        if target not in seen:
            resolved[key] = target
    return resolved
