"""``diff --corpus`` streamed through a process pool: the same report, byte for byte,
as deciding the whole corpus in memory; located errors; a clean Ctrl-C."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from corpus_builders import (
    NO_POOL,
    POOL,
    SHAPES,
    add_broken_files,
    compiled,
    crash_reading,
    interrupt_pool,
    random_corpus,
    response,
)

from policy_engine.cli.common import installed_registry, read_responses
from policy_engine.cli.diff_cmd import RENDERERS, DiffResult
from policy_engine.review.diff import CorpusItem, corpus_diff, diff_policies
from policy_engine.review.strictness import compare_policies

ROOT = Path(__file__).resolve().parents[2]
OLD = ROOT / "policies" / "general-ugc.yaml"
NEW = ROOT / "policies" / "marketplace.yaml"


def in_memory_report(format_name: str, corpus: Path) -> str:
    """The report as ``diff`` made it before streaming: every item read, sorted, in memory."""
    registry = installed_registry()
    old, new = (compiled(p, registry) for p in (OLD, NEW))
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
    add_broken_files(corpus)
    result = h.run("diff", OLD, NEW, "--corpus", corpus, env=POOL)
    # the first bad file in the corpus' order, as reading it all first would say
    assert result.code == 2 and result.out == "", result
    assert result.err.startswith(f"policy-engine: {corpus}/B/m-broken.json:1:"), result
    assert "not valid JSON" in result.err and "Traceback" not in result.err


def test_a_worker_that_dies_is_a_located_error(
    h: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_chunks: None
) -> None:
    corpus = random_corpus(tmp_path / "corpus", 60)
    crash_reading(monkeypatch, corpus)
    result = h.run("diff", OLD, NEW, "--corpus", corpus, env=POOL)
    assert result.code == 2 and result.out == "", result
    assert "a worker process ended unexpectedly while deciding " in result.err, result
    assert "Traceback" not in result.err


def test_ctrl_c_stops_the_pool_cleanly(h: Any, tmp_path: Path) -> None:
    """A real process reading a FIFO that never ends: Ctrl-C (SIGINT to the whole
    process group, as a terminal sends it) exits 130, no traceback, no worker left."""
    fifo = tmp_path / "corpus.jsonl"
    command = [sys.executable, "-m", "policy_engine", "diff", str(OLD), str(NEW)]
    ended = interrupt_pool([*command, "--corpus", str(fifo)], fifo, h.cli_env(POOL))
    assert ended.returncode == 130, ended.err
    assert b"Traceback" not in ended.err and ended.out == b""
    assert ended.workers_gone()
