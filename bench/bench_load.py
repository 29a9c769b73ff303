"""Composing a 1 MiB policy: ``parse_document`` against libyaml alone (issue 12).

The floor is what libyaml's own composer takes for the same text
(``yaml.compose(text, Loader=yaml.CSafeLoader)``), measured in the same run,
in interleaved rounds (best of each), so load on a shared machine moves all
candidates together. ``parse_document`` does more than the floor: it builds
the plain values, the source map of every value's and key's position, and the
checks (duplicate keys, tags, numbers, alias expansion, nesting depth).

    python bench/bench_load.py [--rounds 7] [--rules 4400] [--labels 6000]

Exits 1 when ``parse_document`` takes more than the floor.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from big_policy import big_policy_text

from policy_engine import source

TARGET = 1.0
"""parse_document at most this many times the floor."""


@contextmanager
def _collector_paused() -> Any:
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _floor_without_collector(text: str) -> Callable[[], object]:
    def run() -> object:
        with _collector_paused():
            return yaml.compose(text, Loader=yaml.CSafeLoader)

    return run


def _pure_parser(text: str) -> Callable[[], object]:
    def run() -> object:
        kept = getattr(source, "FAST_LOADER", None)
        source.FAST_LOADER = None  # as if PyYAML had been built without libyaml
        try:
            return source.parse_document(text, "big.yaml")
        finally:
            source.FAST_LOADER = kept

    return run


def best_times(candidates: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """The best wall time of each candidate over interleaved rounds."""
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(rounds):
        for name, run in candidates.items():
            gc.collect()  # each starts with no garbage left by the one before
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rules", type=int, default=4400)
    parser.add_argument("--labels", type=int, default=6000)
    parser.add_argument(
        "--pure", action="store_true", help="also time parse_document without libyaml (slow)"
    )
    options = parser.parse_args()
    text = big_policy_text(options.rules, options.labels)
    candidates: dict[str, Callable[[], object]] = {
        "floor": lambda: yaml.compose(text, Loader=yaml.CSafeLoader),
        "floor, collector paused": _floor_without_collector(text),
        "parse_document": lambda: source.parse_document(text, "big.yaml"),
    }
    if options.pure:
        candidates["parse_document, no libyaml"] = _pure_parser(text)
    best = best_times(candidates, options.rounds)
    floor = best["floor"]
    print(
        f"python {sys.version.split()[0]}, PyYAML {yaml.__version__}; policy of "
        f"{len(text.encode()):,} bytes ({options.rules:,} rules, {options.labels:,} labels: "
        f"entries); best of {options.rounds}"
    )
    labels = {
        "floor": "libyaml compose (yaml.compose, CSafeLoader):",
        "floor, collector paused": "the same, garbage collector paused:",
        "parse_document": "parse_document (values, positions, checks):",
        "parse_document, no libyaml": "parse_document without libyaml:",
    }
    for name, seconds in best.items():
        print(f"{labels[name]:48s} {seconds:7.3f} s  {seconds / floor:5.2f}x floor")
    ratio = best["parse_document"] / floor
    met = ratio <= TARGET
    verdict = "met" if met else "MISSED"
    print(f"target: parse_document <= {TARGET:.1f}x the libyaml floor ... {verdict}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
