"""Peak memory of ``check`` against the number of inputs.

    python bench/bench_batch_memory.py [--counts 10000,100000] [--folder DIR]

For each count, that many distinct tiny image files (kept in ``--folder``,
default a folder under the system's temporary one, and reused by later runs),
listed on stdin (``-``), are checked with the ``stub`` detector (fixed
labels: no network), ``--concurrency 16``, records to /dev/null. Printed:
each run's peak memory (the ``check`` process's own peak RSS, VmHWM), its images per
second, and the ratio of the largest count's peak to the smallest's (the
baseline, measured in the same run). Target: at most 1.2x. Exits 1 when
missed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PER_FOLDER = 1000
POLICY = (
    "version: 1\nname: memory\n"
    "detectors:\n  stub:\n    labels: [{name: Violence, confidence: 70}]\n"
    "rules:\n  - {id: violence, match: {name: Violence}, review_at: 60, block_at: 90}\n"
)
# The peak is VmHWM, this process's own: its ru_maxrss also counts the parent's
# peak (exec hands it down), which made a million names listed here look like
# check's memory. ru_maxrss only where there is no /proc.
PROBE = (
    "import resource, sys\n"
    "from policy_engine.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "try:\n"
    "    with open('/proc/self/status') as status:\n"
    "        peak = next(int(l.split()[1]) for l in status if l.startswith('VmHWM:'))\n"
    "except (OSError, StopIteration):\n"
    "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "print(peak, file=sys.stderr)\n"
    "raise SystemExit(code)\n"
)


def ensure_images(folder: Path, count: int) -> Path:
    """``count`` distinct files under ``folder`` and a list of their names, made once."""
    listing = folder / f"list-{count}.txt"
    if listing.exists():
        return listing
    partial = listing.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as names:  # written as made, not held
        for index in range(count):
            sub = folder / f"{index // PER_FOLDER:05d}"
            path = sub / f"{index:07d}.png"
            if not path.exists():
                sub.mkdir(parents=True, exist_ok=True)
                path.write_bytes(PNG_SIGNATURE + index.to_bytes(8, "big"))
            names.write(f"{path}\n")
    partial.replace(listing)
    return listing


def run(policy: Path, listing: Path) -> tuple[int, float]:
    command = [
        sys.executable,
        "-c",
        PROBE,
        "check",
        "--policy",
        str(policy),
        "-",
        "--concurrency",
        "16",
        "--output",
        os.devnull,
    ]
    started = time.perf_counter()
    with listing.open("rb") as names:
        done = subprocess.run(command, stdin=names, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"check failed ({done.returncode}):\n{done.stderr}")
    return int(done.stderr.strip().splitlines()[-1]), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="10000,100000")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "pe-memory")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    args.folder.mkdir(parents=True, exist_ok=True)
    policy = args.folder / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    peaks = []
    for count in counts:
        listing = ensure_images(args.folder, count)
        peak, seconds = run(policy, listing)
        peaks.append(peak)
        print(
            f"{count:>9} inputs: peak {peak / 1024:7.1f} MiB, {count / seconds:7.0f} images/s "
            f"({seconds:.1f} s)",
            flush=True,
        )
    growth = peaks[-1] / peaks[0]
    ok = growth <= 1.2
    print(f"peak at {counts[-1]} / peak at {counts[0]}: {growth:.2f}x")
    print(f"target: peak memory flat (at most 1.2x) ... {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
