"""Finding the PDQ hashes of a bank within a Hamming distance of a query.

:class:`MultiIndex` is multi-index hashing (Norouzi, Punjani and Fleet, 2012):
the 256 bits split into 16 chunks of 16 bits, and one table per chunk lists
the bank's hashes by that chunk's value. If two hashes differ in at most
``r`` bits, then by the pigeonhole principle some chunk differs in at most
``r // 16`` bits, so the candidates are the hashes listed under every value
within ``r // 16`` bits of the query's chunks (17 values per chunk at the
default distance 31: about 4,000 candidates in a bank of a million). Each
table entry carries the next 96 bits of its hash, read in the same sweep as
the table, which bound a candidate's distance from below and drop nearly all
unrelated ones before their hashes are read from random places in memory
(the slow part); the survivors' exact distances then decide. The answer is
exactly brute force's (a property test checks it). Everything is numpy, no
Python loop over hashes; the tables cost about 280 bytes per hash.

:func:`brute_force` is the baseline: XOR with every hash and count bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from itertools import combinations

import numpy as np
import numpy.typing as npt

from policy_engine_hash_match.hashing import HASH_BYTES, HashArray

CHUNK_BITS = 16
CHUNKS = 8 * HASH_BYTES // CHUNK_BITS
_VALUES = 1 << CHUNK_BITS
SCAN_BELOW = 4096
"""Banks smaller than this are scanned: the scan takes microseconds, and the
tables (8 MiB of offsets whatever the bank's size) would cost more to build."""

Positions = npt.NDArray[np.intp]
Distances = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Found:
    """Positions in the bank within the distance, ascending, and their distances."""

    positions: Positions
    distances: Distances


def distances_to(hashes: HashArray, query: HashArray) -> Distances:
    """The Hamming distance from ``query`` (32 bytes) to each row of ``hashes``."""
    words = np.ascontiguousarray(hashes).view(np.uint64)
    xor = words ^ np.ascontiguousarray(query).view(np.uint64)
    counts: Distances = np.bitwise_count(xor).sum(axis=-1, dtype=np.intp)
    return counts


def brute_force(hashes: HashArray, query: HashArray, max_distance: int) -> Found:
    """Every row of ``hashes`` within ``max_distance`` of ``query``, by a full scan."""
    distances = distances_to(hashes, query)
    positions = np.flatnonzero(distances <= max_distance)
    return Found(positions, distances[positions])


@cache
def _flips(radius: int) -> npt.NDArray[np.uint16]:
    """Every 16-bit mask of at most ``radius`` bits set."""
    masks = [
        sum(1 << bit for bit in bits)
        for count in range(radius + 1)
        for bits in combinations(range(CHUNK_BITS), count)
    ]
    return np.array(masks, dtype=np.uint16)


def _chunks(hashes: HashArray) -> npt.NDArray[np.uint16]:
    """Each hash's 16 chunks as big-endian 16-bit values, shape (N, 16)."""
    return np.ascontiguousarray(hashes).view(">u2").astype(np.uint16)


class MultiIndex:
    """The PDQ hashes of one bank, indexed for look-ups within a distance."""

    def __init__(self, hashes: HashArray, *, scan_below: int = SCAN_BELOW) -> None:
        self.hashes: HashArray = np.ascontiguousarray(hashes, dtype=np.uint8).reshape(
            -1, HASH_BYTES
        )
        self._scan = len(self.hashes) < scan_below
        self._order = np.empty(0, np.uint32)
        self._starts = np.empty(0, np.int64)
        self._side = np.empty(0, np.uint64)
        self._side2 = np.empty(0, np.uint32)
        if self._scan:
            return
        chunks = _chunks(self.hashes)
        # One table per chunk, in flat arrays: for chunk j and value v, the bank
        # positions listed are order[starts[j*65536+v] : starts[j*65536+v+1]].
        # A stable argsort of 16-bit values is a radix sort: linear in the bank.
        orders = [np.argsort(chunks[:, j], kind="stable") for j in range(CHUNKS)]
        self._order = np.concatenate(orders).astype(np.uint32)
        counts = [np.bincount(chunks[:, j], minlength=_VALUES) for j in range(CHUNKS)]
        self._starts = np.zeros(CHUNKS * _VALUES + 1, dtype=np.int64)
        np.cumsum(np.concatenate(counts), out=self._starts[1:])
        # Beside each entry, the next 96 bits of its hash, in table order: a
        # candidate whose 112 bits (its chunk and these) already differ by more
        # than the distance is dropped without reading its hash from a random
        # place in memory (the slow part). An unrelated hash differs in ~48 of
        # them (a chunk probed matches it, so only the 96 count): few survive.
        words, words2 = _side_words(chunks)
        self._side = np.concatenate([words[order, j] for j, order in enumerate(orders)])
        self._side2 = np.concatenate([words2[order, j] for j, order in enumerate(orders)])

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def nbytes(self) -> int:
        tables = self._order.nbytes + self._starts.nbytes + self._side.nbytes + self._side2.nbytes
        return self.hashes.nbytes + tables

    def search(self, query: HashArray, max_distance: int) -> Found:
        """Every hash within ``max_distance`` of ``query``: what :func:`brute_force` finds."""
        if self._scan or max_distance >= 4 * CHUNKS:
            # a small bank, or a chunk radius past 3 (2,517 values a chunk): a scan is as quick
            return brute_force(self.hashes, query, max_distance)
        flips = _flips(max_distance // CHUNKS)
        query_chunks = _chunks(query.reshape(1, HASH_BYTES))
        values = query_chunks[0][:, None] ^ flips[None, :]
        keys = ((np.arange(CHUNKS, dtype=np.int64) * _VALUES)[:, None] + values).reshape(-1)
        starts = self._starts[keys]
        lengths = self._starts[keys + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return Found(np.empty(0, np.intp), np.empty(0, np.intp))
        # the slots of every listed range, concatenated without a loop
        ends = np.cumsum(lengths)
        slots = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)
        # a lower bound of each candidate's distance: its chunk's plus its side word's
        sides, sides2 = _query_side_words(query_chunks[0])
        per_probe = len(flips)
        bound = np.bitwise_count(self._side[slots] ^ np.repeat(sides.repeat(per_probe), lengths))
        bound += np.bitwise_count(self._side2[slots] ^ np.repeat(sides2.repeat(per_probe), lengths))
        bound += np.repeat(np.tile(np.bitwise_count(flips), CHUNKS), lengths)
        candidates = np.unique(self._order[slots[bound <= max_distance]]).astype(np.intp)
        distances = distances_to(self.hashes[candidates], query)
        near = distances <= max_distance
        return Found(candidates[near], distances[near])


def _side_words(
    chunks: npt.NDArray[np.uint16],
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32]]:
    """For each hash and chunk j, chunks j+1 to j+4 (round the end) as one
    64-bit word, and chunks j+5 and j+6 as one 32-bit word: two (N, 16)
    arrays. Column by column, so that a big bank's build holds little more."""
    words = np.zeros(chunks.shape, dtype=np.uint64)
    words2 = np.zeros(chunks.shape, dtype=np.uint32)
    for j in range(CHUNKS):
        for step in range(1, 5):
            words[:, j] <<= np.uint64(CHUNK_BITS)
            words[:, j] |= chunks[:, (j + step) % CHUNKS]
        for step in range(5, 7):
            words2[:, j] <<= np.uint32(CHUNK_BITS)
            words2[:, j] |= chunks[:, (j + step) % CHUNKS]
    return words, words2


def _query_side_words(
    chunks: npt.NDArray[np.uint16],
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32]]:
    """:func:`_side_words` of one hash, in Python integers: 16 small numpy
    operations would cost more than the look-up."""
    values = [int(value) for value in chunks]

    def word(j: int, steps: range) -> int:
        found = 0
        for step in steps:
            found = (found << CHUNK_BITS) | values[(j + step) % CHUNKS]
        return found

    return (
        np.array([word(j, range(1, 5)) for j in range(CHUNKS)], dtype=np.uint64),
        np.array([word(j, range(5, 7)) for j in range(CHUNKS)], dtype=np.uint32),
    )
