"""bench/bench_cascade_savings.py on a corpus of eight: the run with the
cascade makes the same decisions as the run calling every detector, and
saves exactly the Rekognition calls of the images a local detector blocks."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_cascade_savings.py"


def bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_cascade_savings", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_cascade_saves_the_calls_local_detectors_make_needless(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench = bench_module()
    args = ["--images", "8", "--banked", "0.25", "--classified", "0.25", "--latency", "0"]

    assert bench.main(args) == 0

    out = capsys.readouterr().out
    assert "decisions compared: 8, differing: 0" in out
    assert "2 of 2 re-uploads (hash-match), 2 of 2 skin tones" in out
    saved = re.search(r"calls saved: (\d+) of (\d+)", out)
    assert saved is not None and saved.groups() == ("4", "8")
