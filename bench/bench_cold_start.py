"""Cold start: what a new Lambda container or a pre-commit run pays before its
first decision, against a bare ``import boto3`` measured in the same run.

Our start is: import the library, discover the installed plugins (one
entry-point scan), then load and compile ``policies/general-ugc.yaml`` with
them. Each sample is a fresh ``python -c`` process; the two scenarios
alternate so load on a shared machine moves both alike. A warm-up run of each
first makes sure byte-code caches are written on both sides.

Three figures per scenario: the CPU time and the wall time the scenario's own
code takes inside the process (the interpreter's start-up, the same on both
sides, left out), and the wall time of the whole process. The target (issue
12) is on the first, which other work on a shared machine moves least: our
start at most 1.0x a bare ``import boto3``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "policies" / "general-ugc.yaml"

TIMED = """\
import time
_start, _cpu = time.perf_counter(), time.process_time()
{body}
print(time.perf_counter() - _start, time.process_time() - _cpu)
"""

BOTO3 = "import boto3"
OURS = f"""\
from policy_engine import DetectorRegistry, compile_policy, load_policy
registry = DetectorRegistry.installed()
compiled = compile_policy(load_policy({str(POLICY)!r}, registry=registry), registry)
assert compiled.policy.name == "general-ugc"
"""
SCENARIOS = {"import boto3": BOTO3, "policy-engine start": OURS}
TARGET = 1.0

# Byte-code caches warm on both sides: a deployed package has its .pyc files
# (pip writes them), so the children write theirs in the warm-up run, under a
# prefix of their own (nothing written beside the sources).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "policy-engine-bench-pycache")


FIGURES = ("in-process CPU", "in-process wall", "whole process wall")


def sample(body: str, cwd: str) -> tuple[float, float, float]:
    """Seconds of one fresh run: CPU and wall time of the scenario's own code,
    wall time of the whole process (the interpreter's start-up included)."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", TIMED.format(body=body)],
        capture_output=True,
        text=True,
        check=False,
        env=ENV,
        cwd=cwd,  # an empty folder: the code imported is the installed (or PYTHONPATH) one
    )
    whole = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"scenario failed:\n{body}\n{completed.stderr}")
    wall, cpu = map(float, completed.stdout.split())
    return cpu, wall, whole


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=30, help="fresh processes per scenario")
    args = parser.parse_args()

    cwd = tempfile.mkdtemp(prefix="bench-cold-start-")
    for body in SCENARIOS.values():  # warm-up: .pyc files written, file cache warm
        sample(body, cwd)
    names = list(SCENARIOS)
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names if round_ % 2 == 0 else reversed(names):
            samples[name].append(sample(SCENARIOS[name], cwd))

    print(
        f"python {sys.version.split()[0]}, {args.rounds} fresh processes per scenario, "
        f"load average {os.getloadavg()[0]:.2f} (best / median)"
    )
    print(f"{'':22}" + "".join(f"{figure:>26}" for figure in FIGURES))
    for name in names:
        cells = []
        for i in range(len(FIGURES)):
            values = [s[i] * 1e3 for s in samples[name]]
            cells.append(f"{min(values):11.1f} / {statistics.median(values):6.1f} ms")
        print(f"{name:22}" + "".join(f"{cell:>26}" for cell in cells))
    base, ours = names
    ratios = []
    for i in range(len(FIGURES)):
        best = min(s[i] for s in samples[ours]) / min(s[i] for s in samples[base])
        median = statistics.median(s[i] for s in samples[ours]) / statistics.median(
            s[i] for s in samples[base]
        )
        ratios.append(best)
        print(f"start / import boto3, {FIGURES[i]}: best {best:.2f}x, median {median:.2f}x")
    met = ratios[0] <= TARGET
    print(
        f"target: start <= {TARGET:.1f}x import boto3 (best, in-process CPU) ..... "
        f"{'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
