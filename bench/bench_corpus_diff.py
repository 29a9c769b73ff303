"""``policy-engine diff OLD NEW --corpus DIR``: time and peak memory against a plain loop.

For each corpus size, generates (once, under ``--tmp``) a folder of recorded
Rekognition responses shaped like ``examples/recordings`` (confidences varied,
1,000 files a sub-folder), then measures, best of ``--repeat``:

- the floor: a plain loop that reads and ``json.loads`` every file, in one process;
- ``policy-engine diff policies/general-ugc.yaml policies/marketplace.yaml --corpus DIR``
  as a subprocess: wall time and peak RSS (``ru_maxrss`` of the child).

Prints the time ratio to the floor (target: at most 2x) and the memory ratio of
each size to the smallest (target: at most 1.2x).

    python bench/bench_corpus_diff.py --sizes 10000 100000 300000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted((ROOT / "examples" / "recordings").glob("*.json"))
PER_FOLDER = 1000
OLD = ROOT / "policies" / "general-ugc.yaml"
NEW = ROOT / "policies" / "marketplace.yaml"


def generate(folder: Path, count: int, *, flat: bool = False) -> None:
    """``count`` responses in ``folder`` (skipped when it is already complete)."""
    done = folder / ".complete"
    if done.exists():
        return
    rng = random.Random(count)
    shapes = [json.loads(t.read_text()) for t in TEMPLATES]
    for index in range(count):
        shape = rng.choice(shapes)
        labels = [
            dict(label, Confidence=round(rng.uniform(50, 100), 1))
            for label in shape["ModerationLabels"]
        ]
        sub = folder if flat else folder / f"{index // PER_FOLDER:04d}"
        if index % PER_FOLDER == 0:
            sub.mkdir(parents=True, exist_ok=True)
        name = f"{rng.getrandbits(128):032x}.json"
        (sub / name).write_text(json.dumps(dict(shape, ModerationLabels=labels), indent=2))
    done.touch()


FLOOR = """
import json, sys, time
from pathlib import Path
start, cpu = time.perf_counter(), time.process_time()
for path in sorted(Path(sys.argv[1]).rglob("*.json")):
    json.loads(path.read_bytes())
print(time.perf_counter() - start, time.process_time() - cpu)
"""


def floor_seconds(folder: Path) -> tuple[float, float]:
    """A plain loop: read and json.loads every file of the corpus (walk included).

    In a subprocess, as the diff is: a child forked from a process that grew
    would report the parent's size as its own peak."""
    completed = subprocess.run(
        [sys.executable, "-c", FLOOR, str(folder)], capture_output=True, text=True, check=True
    )
    wall, cpu = completed.stdout.split()
    return float(wall), float(cpu)


def run_diff(folder: Path, output: Path, root: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (its workers' too) and peak RSS (KiB) of one
    ``diff --corpus`` subprocess, run
    with the code of the checkout ``root`` (``python -m`` imports from its folder)."""
    command = ["diff", str(OLD), str(NEW), "--corpus", str(folder), "--format", "json"]
    return run_measured(command, output, root)


def run_measured(arguments: list[str], output: Path, root: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (its workers' too) and peak RSS (KiB) of one
    ``policy-engine ARGUMENTS`` subprocess, its stdout to ``output``, run with the
    code of the checkout ``root`` (``python -m`` imports from its folder)."""
    command = [sys.executable, "-m", "policy_engine", *arguments]
    start = time.perf_counter()
    pid = subprocess.Popen(command, stdout=output.open("wb"), cwd=root).pid
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"failed: {command}")
    return seconds, usage.ru_utime + usage.ru_stime, int(usage.ru_maxrss)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tmp", type=Path, default=Path("/tmp/bench-corpus-diff"))
    parser.add_argument("--flat", action="store_true", help="every file in one folder")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the checkout whose diff is measured (e.g. main)"
    )
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  load: {os.getloadavg()[0]:.2f}")
    peaks: list[int] = []
    missed = False
    for size in args.sizes:
        folder = args.tmp / f"{'flat-' if args.flat else ''}{size}"
        generate(folder, size, flat=args.flat)
        floors = [floor_seconds(folder) for _ in range(args.repeat)]
        floor, floor_cpu = min(f[0] for f in floors), min(f[1] for f in floors)
        runs = [run_diff(folder, args.tmp / "out.json", args.root) for _ in range(args.repeat)]
        seconds, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        peak = max(r[2] for r in runs)
        peaks.append(peak)
        ratio, grown = seconds / floor, peak / peaks[0]
        missed |= ratio > 2 or grown > 1.2
        print(
            f"{size:>9,} items: read+json.loads loop {floor:6.2f} s   diff {seconds:6.2f} s "
            f"= {ratio:4.2f}x   peak RSS {peak / 1024:6.1f} MiB = {grown:4.2f}x of "
            f"{args.sizes[0]:,}"
        )
        # on a loaded machine wall time shows the load: CPU time, divided by the
        # cores, is what the wall time would be with the cores free
        cores = os.cpu_count() or 1
        print(
            f"{'':>9}        CPU: loop {floor_cpu:6.2f} s   diff {cpu:6.2f} s; "
            f"diff / {cores} cores = {cpu / cores / floor_cpu:4.2f}x the loop"
        )
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print(
        "targets: diff <= 2x the loop; peak RSS <= 1.2x the smallest ..... "
        + ("MISSED" if missed else "met")
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
