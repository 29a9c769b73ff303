"""What a run has decided, by image, in bounded memory.

A run sends each distinct image once, and an identical image later in the run
gets the first one's decision. Keeping every decision in memory cost about
1 KB an image (a million inputs: a gigabyte). Here the most recent decisions
stay in memory (an LRU of :data:`RECENT` entries); older ones move to a
temporary SQLite database on disk (created only when the first one moves,
deleted when the index closes), pickled (a decision pickles compactly: its
labels, failures, and the deciding policy's name, digest and resolutions),
under the SHA-256 digest of their key. Memory then holds at most
:data:`RECENT` decisions and SQLite's page cache, whatever the run's length.
"""

from __future__ import annotations

import hashlib
import pickle
import sqlite3
from collections import OrderedDict
from typing import Generic, TypeVar

RECENT = 2048
"""Decisions kept in memory; older ones are on disk."""

_PAGE_CACHE_KIB = 2048

T = TypeVar("T")


class DecidedIndex(Generic[T]):
    """A map from a key to its decision, bounded in memory. Not thread-safe:
    the caller holds its own lock."""

    def __init__(self, recent: int | None = None) -> None:
        self._recent_limit = RECENT if recent is None else recent
        self._recent: OrderedDict[str, T] = OrderedDict()
        self._disk: sqlite3.Connection | None = None
        self.spilled = 0
        """How many decisions moved to disk."""

    def get(self, key: str) -> T | None:
        found = self._recent.get(key)
        if found is not None:
            self._recent.move_to_end(key)
            return found
        if self._disk is None:
            return None
        row = self._disk.execute(
            "SELECT outcome FROM decided WHERE key = ?", (_digest(key),)
        ).fetchone()
        if row is None:
            return None
        outcome: T = pickle.loads(row[0])
        return outcome

    def put(self, key: str, outcome: T) -> None:
        self._recent[key] = outcome
        self._recent.move_to_end(key)
        if len(self._recent) > self._recent_limit:
            old_key, old = self._recent.popitem(last=False)
            self._spill(old_key, old)

    def _spill(self, key: str, outcome: T) -> None:
        try:
            blob = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an outcome that cannot pickle: a later copy is decided again
            return
        if self._disk is None:
            self._disk = _temporary_database()
        self._disk.execute("INSERT OR REPLACE INTO decided VALUES (?, ?)", (_digest(key), blob))
        self.spilled += 1

    def close(self) -> None:
        """Forget everything; the database file goes with its connection."""
        self._recent.clear()
        if self._disk is not None:
            self._disk.close()
            self._disk = None


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def _temporary_database() -> sqlite3.Connection:
    # "" is SQLite's private temporary database on disk, removed when closed;
    # nothing here must survive a crash, so no journal and no syncing.
    database = sqlite3.connect("", check_same_thread=False, isolation_level=None)
    database.execute(f"PRAGMA cache_size = -{_PAGE_CACHE_KIB}")
    database.execute("PRAGMA journal_mode = OFF")
    database.execute("PRAGMA synchronous = OFF")
    database.execute("CREATE TABLE decided (key BLOB PRIMARY KEY, outcome BLOB) WITHOUT ROWID")
    return database
