from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine_hash_match.index import MultiIndex, brute_force


def near(rng: np.random.Generator, row: np.ndarray, flips: int) -> np.ndarray:
    bits = np.unpackbits(row)
    bits[rng.choice(256, flips, replace=False)] ^= 1
    return np.packbits(bits)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(0, 300),
    max_distance=st.integers(0, 70),
    flips=st.integers(0, 80),
)
def test_the_index_finds_exactly_what_brute_force_finds(
    seed: int, size: int, max_distance: int, flips: int
) -> None:
    rng = np.random.default_rng(seed)
    bank = rng.integers(0, 256, (size, 32), dtype=np.uint8)
    # near neighbours of one another, so that queries have matches at many distances
    if size > 1:
        bank[size // 2 :] = [
            near(rng, bank[0], int(rng.integers(0, 64))) for _ in bank[size // 2 :]
        ]
    index = MultiIndex(bank, scan_below=0)  # the tables, however small the bank
    queries = [near(rng, bank[i], flips) for i in rng.integers(0, size, 3)] if size else []
    queries.append(rng.integers(0, 256, 32, dtype=np.uint8))
    for query in queries:
        found, expected = index.search(query, max_distance), brute_force(bank, query, max_distance)
        assert found.positions.tolist() == expected.positions.tolist()
        assert found.distances.tolist() == expected.distances.tolist()


def test_distances_are_hamming_distances() -> None:
    bank = np.zeros((2, 32), dtype=np.uint8)
    bank[1, 0] = 0b1011_0000
    query = np.zeros(32, dtype=np.uint8)
    query[31] = 1
    found = brute_force(bank, query, 256)
    assert found.positions.tolist() == [0, 1] and found.distances.tolist() == [1, 4]
    assert MultiIndex(bank, scan_below=0).search(query, 1).positions.tolist() == [0]


def test_a_small_bank_is_scanned_without_tables() -> None:
    bank = np.random.default_rng(0).integers(0, 256, (10, 32), dtype=np.uint8)
    assert MultiIndex(bank).nbytes == bank.nbytes
    assert MultiIndex(bank).search(bank[3], 0).positions.tolist() == [3]
