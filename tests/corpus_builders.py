"""Corpora of recorded responses for the streaming commands' tests (``diff --corpus``,
``evaluate --corpus``), and what a test needs to watch a process pool from outside."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [json.loads(p.read_text()) for p in sorted((ROOT / "examples" / "recordings").glob("*"))]


def response(rng: random.Random) -> dict[str, Any]:
    shape = rng.choice(SHAPES)
    labels = [
        dict(label, Confidence=round(rng.uniform(40, 100), 2))
        for label in shape["ModerationLabels"]
    ]
    return dict(shape, ModerationLabels=labels)


def random_corpus(folder: Path, count: int, seed: int = 12) -> Path:
    """Items in nested folders whose names sort in tricky ways (``a`` before ``a-b``
    and ``a.json``, upper case first, a folder named like a response), lists of
    responses, and files that are not responses."""
    rng = random.Random(seed)
    places = ["", "a", "a-b", "B", "a/x.json", "z/deeper/still"]
    for index in range(count):
        place = folder / rng.choice(places)
        place.mkdir(parents=True, exist_ok=True)
        data: Any = response(rng)
        if index % 17 == 0:
            data = [response(rng), response(rng)]
        name = rng.choice(["", "a", "A", "a-", "_", "."]) + f"{rng.getrandbits(24):06x}.json"
        (place / name).write_text(json.dumps(data), encoding="utf-8")
    (folder / "a" / "notes.txt").write_text("not a response")
    return folder


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def process_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"
