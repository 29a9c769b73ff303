"""Corpora of recorded responses for the streaming commands' tests (``diff --corpus``,
``evaluate --corpus``), and what a test needs to watch a process pool from outside."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from policy_engine.cli import common, corpus_items, ordered_pool
from policy_engine.compiler import CompiledPolicy, compile_policy
from policy_engine.loader import check_policy_file
from policy_engine.plugins import DetectorRegistry

ROOT = Path(__file__).resolve().parents[1]
POOL = {ordered_pool.MIN_ITEMS_VARIABLE: "1"}
"""The environment that makes a command use its process pool, however short the corpus."""
NO_POOL = {ordered_pool.MIN_ITEMS_VARIABLE: "1000000"}
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


@dataclass(frozen=True)
class Interrupted:
    """How a command ended after Ctrl-C, and the pool workers it had."""

    returncode: int
    out: bytes
    err: bytes
    workers: list[int]

    def workers_gone(self) -> bool:
        return all(
            not Path(f"/proc/{pid}").exists() or "Z" in process_state(pid) for pid in self.workers
        )


def interrupt_pool(command: list[str], fifo: Path, env: Mapping[str, str]) -> Interrupted:
    """Start ``command`` (which reads the corpus ``fifo``) as a real process, feed it
    600 responses and no end, and once its pool has two workers, press Ctrl-C
    (SIGINT to the whole process group, as a terminal sends it)."""
    os.mkfifo(fifo)
    process = subprocess.Popen(
        command,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        # as a shell starts it: a test runner's worker may ignore SIGINT, which a child inherits
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    rng = random.Random(5)
    with fifo.open("w", encoding="utf-8") as writer:
        writer.write("".join(json.dumps(response(rng)) + "\n" for _ in range(600)))
        writer.flush()
        deadline = time.monotonic() + 30
        while len(workers := children(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) >= 2, "the pool did not start"
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=30)
    return Interrupted(process.returncode, out, err, workers)


def crash_reading(monkeypatch: pytest.MonkeyPatch, corpus: Path) -> None:
    """Add ``a/crash.json`` to ``corpus``: the process that reads it ends at once,
    as a worker killed by the OOM killer would (the patch is inherited by a fork)."""

    def read_or_die(path: str, registry: Any) -> Any:
        if path.endswith("/a/crash.json"):
            os._exit(9)
        return common.read_responses(path, registry)

    (corpus / "a" / "crash.json").write_text(json.dumps(SHAPES[0]))
    monkeypatch.setattr(corpus_items, "read_responses", read_or_die)


def add_broken_files(corpus: Path) -> None:
    """Two files that are not JSON; ``B/m-broken.json`` comes first in the corpus' order."""
    for relative, text in (("B/m-broken.json", '{"ModerationLabels": ['), ("z/broken.json", "[1")):
        (corpus / relative).parent.mkdir(exist_ok=True)
        (corpus / relative).write_text(text, encoding="utf-8")


def compiled(path: Path, registry: DetectorRegistry) -> CompiledPolicy:
    """The policy at ``path``, compiled as the commands compile it."""
    policy = check_policy_file(str(path), registry=registry).policy
    assert policy is not None, path
    return compile_policy(policy, registry)
