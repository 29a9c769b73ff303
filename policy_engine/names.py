"""How label names compare: case-insensitively, after trimming and collapsing white space."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from policy_engine.taxonomy import Taxonomy

NEAREST_CURRENT_CUTOFF = 0.8
"""How alike (difflib's ratio of the name keys) an older model's name and a
current name must be for one to be suggested for the other."""


# Sized above the distinct names of the largest policy (a 1 MiB one has some
# 6,500; 4,096 thrashed, recomputing every key), at about 220 bytes an entry.
@lru_cache(maxsize=32768)
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


def nearest_name(written: str, spellings: Iterable[str], *, cutoff: float) -> str | None:
    """The spelling nearest to ``written``, compared as name keys (difflib's
    ratio at least ``cutoff``), other than ``written``'s own; None if none is."""
    key = name_key(written)
    by_key = {name_key(spelling): spelling for spelling in spellings}
    by_key.pop(key, None)
    import difflib  # only when a name is wrong: start-up does not pay for it

    close = difflib.get_close_matches(key, list(by_key), n=1, cutoff=cutoff)
    return by_key[close[0]] if close else None


def nearest_current_name(written: str, current: Taxonomy) -> str | None:
    """The name of ``current`` (a detector's current taxonomy) nearest to an
    older model's name that has no successor: what ``validate`` (the
    ``model-6-name`` warning) and ``migrate`` (``migrate-unmapped``) both
    suggest, so that they never disagree."""
    spellings = [current.display_name(key) or key for key in list(current.keys())]
    return nearest_name(written, spellings, cutoff=NEAREST_CURRENT_CUTOFF)
