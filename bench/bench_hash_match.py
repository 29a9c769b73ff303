"""PDQ look-ups in a bank: the hash-match plugin's multi-index against a
brute-force Hamming scan (numpy XOR and popcount over every hash), both
measured in the same run on the same bank and queries.

For each bank size, a bank of random PDQ hashes, a tenth of them near
neighbours of others (a shared list holds many variants of one image), and
queries of which half are near copies of banked hashes (0 to 40 bits
flipped) and half random images. A look-up is one hash against the whole
bank at ``--max-distance``. Each side is timed best-of ``--repeats`` over its
queries (brute force over fewer: it is slow), and their answers are compared.
Memory: what each keeps per bank (the index's tables and hashes; the scan's
hashes), and the index build's peak (tracemalloc).

    PYTHONPATH=.:plugins/hash-match python bench/bench_hash_match.py
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from policy_engine_hash_match.index import MultiIndex, brute_force


def near(rng: np.random.Generator, rows: np.ndarray, most: int) -> np.ndarray:
    """``rows`` with up to ``most`` random bits flipped in each."""
    bits = np.unpackbits(rows, axis=1)
    for row in bits:
        row[rng.choice(256, int(rng.integers(0, most + 1)), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def make_bank(rng: np.random.Generator, size: int) -> np.ndarray:
    bank = rng.integers(0, 256, (size, 32), dtype=np.uint8)
    copies = size // 10
    bank[:copies] = near(rng, bank[copies : 2 * copies], 24)
    return bank


def make_queries(rng: np.random.Generator, bank: np.ndarray, count: int) -> np.ndarray:
    hits = near(rng, bank[rng.integers(0, len(bank), count // 2)], 40)
    misses = rng.integers(0, 256, (count - len(hits), 32), dtype=np.uint8)
    return np.concatenate([hits, misses])


def best_rate(search: object, queries: np.ndarray, repeats: int) -> float:
    """Look-ups per second, best of ``repeats`` passes over ``queries``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for query in queries:
            search(query)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return len(queries) / best


def run(size: int, queries: int, scans: int, repeats: int, max_distance: int) -> None:
    rng = np.random.default_rng(size)
    bank = make_bank(rng, size)
    asked = make_queries(rng, bank, queries)
    tracemalloc.start()
    start = time.perf_counter()
    index = MultiIndex(bank)
    build = time.perf_counter() - start
    _, build_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    scanned = asked[:: max(1, queries // scans)][:scans]
    for query in scanned:  # the same answers, exactly
        found, expected = index.search(query, max_distance), brute_force(bank, query, max_distance)
        assert found.positions.tolist() == expected.positions.tolist()
        assert found.distances.tolist() == expected.distances.tolist()
    matched = sum(len(index.search(q, max_distance).positions) > 0 for q in asked)
    indexed = best_rate(lambda q: index.search(q, max_distance), asked, repeats)
    brute = best_rate(lambda q: brute_force(bank, q, max_distance), scanned, repeats)
    mib = 1 << 20
    print(
        f"bank {size:>9,}: index {indexed:>9,.0f} look-ups/s, brute force {brute:>8,.1f} "
        f"look-ups/s, ratio {indexed / brute:>6.0f}x  (queries {len(asked)}, of which "
        f"{matched} matched; brute force over {len(scanned)}, same answers)"
    )
    print(
        f"{'':16}memory: index {index.nbytes / mib:.1f} MiB (build {build:.2f} s, peak "
        f"{build_peak / mib:.1f} MiB), brute force {bank.nbytes / mib:.1f} MiB (the hashes)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--scans", type=int, default=50, help="brute-force look-ups timed")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-distance", type=int, default=31)
    args = parser.parse_args()
    print(f"max distance {args.max_distance}, best of {args.repeats}")
    for size in args.sizes:
        run(size, args.queries, args.scans, args.repeats, args.max_distance)


if __name__ == "__main__":
    main()
