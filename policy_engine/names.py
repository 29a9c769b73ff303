"""How label names compare: case-insensitively, after trimming and collapsing white space."""

from __future__ import annotations

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
