"""The installed entry points of one group, found in one scan of ``sys.path``.

What ``importlib.metadata.entry_points(group=...)`` returns, read straight
from the ``entry_points.txt`` of every ``*.dist-info`` and ``*.egg-info``
folder on ``sys.path``: importing ``importlib.metadata`` alone costs about
15 ms (it pulls in the ``email`` package), a tenth of a cold start. Where the
path holds something only ``importlib.metadata`` reads (a zip archive, a
finder of its own that lists distributions, an egg), it is asked instead.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from functools import reduce
from importlib import import_module, machinery
from typing import Any

INFO_SUFFIXES = (".dist-info", ".egg-info")
# The form importlib.metadata's EntryPoint accepts: module, optional attribute, optional extras.
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


@dataclass(frozen=True, slots=True)
class EntryPoint:
    """One entry point: its ``name`` and ``value`` (``module:attribute``)."""

    name: str
    value: str

    def load(self) -> Any:
        """Import the module and return the attribute named, as
        ``importlib.metadata.EntryPoint.load`` does."""
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"entry point {self.name!r} has a malformed value {self.value!r}")
        module = import_module(match.group("module"))
        return reduce(getattr, filter(None, (match.group("attr") or "").split(".")), module)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _group_entries(text: str, group: str) -> list[EntryPoint]:
    found: list[EntryPoint] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == group and "=" in line:
            name, value = line.split("=", 1)
            found.append(EntryPoint(name.strip(), value.strip()))
    return found


def _only_plain_folders() -> bool:
    """True if every distribution is in a folder on ``sys.path`` (the case read here)."""
    for finder in sys.meta_path:
        if hasattr(finder, "find_distributions") and finder is not machinery.PathFinder:
            return False
    return all(
        isinstance(entry, str) and not entry.endswith(".egg") and not os.path.isfile(entry or ".")
        for entry in sys.path
    )


def _scanned(group: str) -> list[EntryPoint]:
    seen: set[str] = set()  # the first distribution of a name on the path hides later ones
    found: list[EntryPoint] = []
    for entry in sys.path:
        folder = entry or "."
        try:
            children = os.scandir(folder)
        except OSError:  # missing or unreadable: importlib.metadata skips it too
            continue
        with children:
            infos = [c for c in children if c.name.lower().endswith(INFO_SUFFIXES)]
        for info in infos:
            distribution = _normalized(info.name.rpartition(".")[0].partition("-")[0])
            if distribution in seen:
                continue
            seen.add(distribution)
            try:
                with open(os.path.join(info.path, "entry_points.txt"), encoding="utf-8") as file:
                    text = file.read()
            except OSError:  # no entry points (or not a folder)
                continue
            found.extend(_group_entries(text, group))
    return found


def entry_points(group: str) -> tuple[EntryPoint, ...]:
    """The entry points of ``group`` of every installed distribution, in
    ``sys.path`` order; what ``importlib.metadata.entry_points(group=group)``
    gives, as (name, value) pairs."""
    if _only_plain_folders():
        return tuple(_scanned(group))
    from importlib import metadata

    return tuple(EntryPoint(ep.name, ep.value) for ep in metadata.entry_points(group=group))
