"""``policy-engine evaluate --corpus DIR``: time and peak memory against a plain loop.

The corpora of ``bench_corpus_diff.py`` (generated once under ``--tmp``, shared
with it: recorded Rekognition responses, 1,000 files a sub-folder). For each
size, best of ``--repeat``:

- the floor: a plain loop that reads and ``json.loads`` every file, in one process;
- ``policy-engine evaluate --policy policies/general-ugc.yaml --corpus DIR``
  (one JSON Lines record per file) as a subprocess: wall time and peak RSS.

Prints the time ratio to the floor and the memory ratio of each size to the
smallest (target: at most 1.2x; the time target of ``diff --corpus``, at most
2x, is printed beside it: ``evaluate`` also writes a record of every item).

    python bench/bench_evaluate_stream.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench_corpus_diff import ROOT, floor_seconds, generate, run_measured

POLICY = ROOT / "policies" / "general-ugc.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tmp", type=Path, default=Path("/tmp/bench-corpus-diff"))
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set for the evaluate runs (e.g. POLICY_ENGINE_POOL_MIN_ITEMS=100000000: no pool)",
    )
    args = parser.parse_args()
    os.environ.update(pair.split("=", 1) for pair in args.env)
    print(f"cores: {os.cpu_count()}  load: {os.getloadavg()[0]:.2f}")
    peaks: list[int] = []
    missed = False
    for size in args.sizes:
        folder = args.tmp / f"{size}"
        generate(folder, size)
        floors = [floor_seconds(folder) for _ in range(args.repeat)]
        floor, floor_cpu = min(f[0] for f in floors), min(f[1] for f in floors)
        command = ["evaluate", "--policy", str(POLICY), "--corpus", str(folder)]
        output = args.tmp / "evaluate-out.jsonl"
        runs = [run_measured(command, output, ROOT) for _ in range(args.repeat)]
        seconds, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        peak = max(r[2] for r in runs)
        peaks.append(peak)
        ratio, grown = seconds / floor, peak / peaks[0]
        missed |= grown > 1.2
        print(
            f"{size:>9,} items: read+json.loads loop {floor:6.2f} s   evaluate {seconds:6.2f} s "
            f"= {ratio:4.2f}x   peak RSS {peak / 1024:6.1f} MiB = {grown:4.2f}x of "
            f"{args.sizes[0]:,}   output {output.stat().st_size / 2**20:.0f} MiB"
        )
        cores = os.cpu_count() or 1
        print(
            f"{'':>9}        CPU: loop {floor_cpu:6.2f} s   evaluate {cpu:6.2f} s; "
            f"evaluate / {cores} cores = {cpu / cores / floor_cpu:4.2f}x the loop"
        )
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print("target: peak RSS <= 1.2x the smallest ..... " + ("MISSED" if missed else "met"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
