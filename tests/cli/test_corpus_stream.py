"""``diff --corpus`` streamed through a process pool: the same report, byte for byte,
as deciding the whole corpus in memory; located errors; a clean Ctrl-C."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from corpus_builders import SHAPES, children, process_state, random_corpus, response

from policy_engine.cli import corpus_items, ordered_pool
from policy_engine.cli.common import installed_registry, read_responses
from policy_engine.cli.diff_cmd import RENDERERS, DiffResult
from policy_engine.compiler import compile_policy
from policy_engine.loader import check_policy_file
from policy_engine.review.diff import CorpusItem, corpus_diff, diff_policies
from policy_engine.review.strictness import compare_policies

ROOT = Path(__file__).resolve().parents[2]
OLD = ROOT / "policies" / "general-ugc.yaml"
NEW = ROOT / "policies" / "marketplace.yaml"
POOL = {ordered_pool.MIN_ITEMS_VARIABLE: "1"}
NO_POOL = {ordered_pool.MIN_ITEMS_VARIABLE: "1000000"}


def in_memory_report(format_name: str, corpus: Path) -> str:
    """The report as ``diff`` made it before streaming: every item read, sorted, in memory."""
    registry = installed_registry()
    old, new = (
        compile_policy(check_policy_file(str(p), registry=registry).policy, registry)  # type: ignore[arg-type]
        for p in (OLD, NEW)
    )
    files = sorted(p for p in corpus.rglob("*.json") if p.is_file())
    items = [
        CorpusItem(
            f.relative_to(corpus).as_posix(),
            tuple(lab for r in read_responses(str(f), registry) for lab in r.labels),
        )
        for f in files
    ]
    result = DiffResult(
        diff_policies(old, new, registry),
        corpus_diff(old, new, items),
        str(OLD),
        str(NEW),
        compare_policies(new, old, registry),
    )
    return RENDERERS[format_name](result)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many chunks from a small corpus, so the order of results is put to the test."""
    monkeypatch.setattr(ordered_pool, "CHUNK_ITEMS", 7)


@pytest.mark.parametrize("format_name", ["text", "markdown", "json"])
def test_pool_writes_the_in_memory_report(
    h: Any, tmp_path: Path, format_name: str, small_chunks: None
) -> None:
    corpus = random_corpus(tmp_path / "corpus", 240)
    expected = in_memory_report(format_name, corpus)
    assert "decision(s) change" in expected or '"changed"' in expected
    for env in (POOL, NO_POOL):
        result = h.run("diff", OLD, NEW, "--corpus", corpus, "--format", format_name, env=env)
        assert result.code == 0, result
        assert result.out == expected, env


def test_no_change_and_one_item_stay_exact(h: Any, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "only.json").write_text(json.dumps(SHAPES[0]))
    for format_name in ("text", "markdown", "json"):
        expected = in_memory_report(format_name, corpus)
        result = h.run("diff", OLD, NEW, "--corpus", corpus, "--format", format_name, env=POOL)
        assert result.out == expected


def test_json_lines_through_the_pool(h: Any, tmp_path: Path, small_chunks: None) -> None:
    rng = random.Random(3)
    lines = tmp_path / "corpus.jsonl"
    lines.write_text(
        "".join(json.dumps(response(rng)) + ("\n\n" if i % 9 == 0 else "\n") for i in range(120)),
        encoding="utf-8",
    )
    pooled = h.run("diff", OLD, NEW, "--corpus", lines, "--format", "json", env=POOL)
    alone = h.run("diff", OLD, NEW, "--corpus", lines, "--format", "json", env=NO_POOL)
    assert pooled.code == 0 and pooled.out == alone.out, pooled
    corpus = pooled.json()["corpus"]
    assert corpus["items"] == 120 and corpus["changed"] > 0
    assert all(c["item"].startswith(f"{lines}:") for c in corpus["changes"])


def test_a_bad_file_is_a_located_error(h: Any, tmp_path: Path, small_chunks: None) -> None:
    corpus = random_corpus(tmp_path / "corpus", 60)
    (corpus / "B" / "m-broken.json").parent.mkdir(exist_ok=True)
    (corpus / "B" / "m-broken.json").write_text('{"ModerationLabels": [', encoding="utf-8")
    (corpus / "z" / "broken.json").parent.mkdir(exist_ok=True)
    (corpus / "z" / "broken.json").write_text("[1", encoding="utf-8")
    result = h.run("diff", OLD, NEW, "--corpus", corpus, env=POOL)
    # the first bad file in the corpus' order, as reading it all first would say
    assert result.code == 2 and result.out == "", result
    assert result.err.startswith(f"policy-engine: {corpus}/B/m-broken.json:1:"), result
    assert "not valid JSON" in result.err and "Traceback" not in result.err


def test_a_worker_that_dies_is_a_located_error(
    h: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_chunks: None
) -> None:
    corpus = random_corpus(tmp_path / "corpus", 60)
    real = read_responses

    def read_or_die(path: str, registry: Any) -> Any:
        if path.endswith("/a/crash.json"):
            os._exit(9)  # as a worker killed by the OOM killer would end
        return real(path, registry)

    (corpus / "a" / "crash.json").write_text(json.dumps(SHAPES[0]))
    monkeypatch.setattr(corpus_items, "read_responses", read_or_die)  # inherited by the fork
    result = h.run("diff", OLD, NEW, "--corpus", corpus, env=POOL)
    assert result.code == 2 and result.out == "", result
    assert "a worker process ended unexpectedly while deciding " in result.err, result
    assert "Traceback" not in result.err


def test_ctrl_c_stops_the_pool_cleanly(h: Any, tmp_path: Path) -> None:
    """A real process reading a FIFO that never ends: Ctrl-C (SIGINT to the whole
    process group, as a terminal sends it) exits 130, no traceback, no worker left."""
    fifo = tmp_path / "corpus.jsonl"
    os.mkfifo(fifo)
    command = [sys.executable, "-m", "policy_engine", "diff", str(OLD), str(NEW)]
    process = subprocess.Popen(
        [*command, "--corpus", str(fifo)],
        env=h.cli_env(POOL),
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
    assert process.returncode == 130, err
    assert b"Traceback" not in err and out == b""
    for worker in workers:
        assert not Path(f"/proc/{worker}").exists() or "Z" in process_state(worker)
