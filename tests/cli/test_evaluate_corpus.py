"""``evaluate --corpus``: each item decided on its own through the process pool, its
record the one ``evaluate --labels`` gives for it alone, in the corpus' order;
located errors; a clean Ctrl-C."""

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
    add_broken_files,
    compiled,
    crash_reading,
    interrupt_pool,
    random_corpus,
    response,
)

from policy_engine.cli.common import installed_registry, read_responses

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "policies" / "general-ugc.yaml"
SET = ROOT / "policies" / "community.set.yaml"


def one_by_one(corpus: Path) -> list[dict[str, Any]]:
    """What ``evaluate --labels FILE`` decides for each file alone, in sorted path order."""
    registry = installed_registry()
    policy = compiled(POLICY, registry)
    files = sorted(p for p in corpus.rglob("*.json") if p.is_file())
    return [
        {
            "input": f.relative_to(corpus).as_posix(),
            **policy.evaluate_results(read_responses(str(f), registry)).to_dict(),
        }
        for f in files
    ]


def records(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def test_each_record_is_what_evaluate_gives_the_file_alone(
    h: Any, tmp_path: Path, small_chunks: None
) -> None:
    corpus = random_corpus(tmp_path / "corpus", 200)
    expected = one_by_one(corpus)
    assert {r["decision"] for r in expected} == {"allow", "review", "block"}
    outputs = []
    for env in (POOL, NO_POOL):
        result = h.run("evaluate", "--policy", POLICY, "--corpus", corpus, env=env)
        assert result.code == 0, result
        assert records(result.out) == expected, env
        outputs.append(result.out)
    assert outputs[0] == outputs[1]  # byte for byte, whatever the pool does


def test_text_through_the_pool_is_the_text_alone(
    h: Any, tmp_path: Path, small_chunks: None
) -> None:
    corpus = random_corpus(tmp_path / "corpus", 120)
    pooled = h.run("evaluate", "--policy", POLICY, "--corpus", corpus, "--format", "text", env=POOL)
    alone = h.run(
        "evaluate", "--policy", POLICY, "--corpus", corpus, "--format", "text", env=NO_POOL
    )
    assert pooled.code == 0 and pooled.out == alone.out, pooled
    first = min(corpus.rglob("*.json")).relative_to(corpus).as_posix()
    assert pooled.out.startswith(f"{first}: ")
    assert pooled.out.count("  (policy general-ugc, sha256:") == 120


def test_json_lines_and_check_records(h: Any, tmp_path: Path, small_chunks: None) -> None:
    rng = random.Random(8)
    block = h.moderation(("Explicit Nudity", "Explicit", 99.0), version="7.0")
    check_record = {
        "input": "cat.jpg",
        "sha256": "0" * 64,
        "decision": "allow",
        "labels": [
            {
                "name": "Explicit Nudity",
                "parent": "Explicit",
                "confidence": 99.0,
                "source": "rekognition-moderation",
            }
        ],
        "dropped": [],
        "errors": [],
        "detectors": {"rekognition-moderation": {"model_version": "7.0"}},
    }
    unreadable = {"input": "gone.jpg", "error": "cannot read"}
    lines = [json.dumps(response(rng)) for _ in range(60)]
    lines[10] = json.dumps(block)
    lines[20] = json.dumps(check_record)
    lines[30] = json.dumps(unreadable)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(lines) + "\n\n", encoding="utf-8")

    pooled = h.run(
        "evaluate", "--policy", POLICY, "--corpus", corpus, "--fail-on", "block", env=POOL
    )
    alone = h.run(
        "evaluate", "--policy", POLICY, "--corpus", corpus, "--fail-on", "block", env=NO_POOL
    )
    assert pooled.code == 1 and pooled.out == alone.out, pooled
    got = records(pooled.out)
    assert len(got) == 59  # the unreadable input of a check record has no decision
    assert [r["input"] for r in got[:11]] == [f"{corpus}:{n}" for n in range(1, 12)]
    assert got[10]["decision"] == "block"
    alone_file = h.run(
        "evaluate", "--policy", POLICY, "--labels", h.write_json(tmp_path / "b.json", block)
    )
    assert {**got[10], "input": None} == {**alone_file.json(), "input": None}
    # a check record is decided again, under this policy, with its recorded metadata
    assert got[20]["input"] == "cat.jpg" and got[20]["decision"] == "block"
    assert got[20]["detectors"] == {"rekognition-moderation": {"model_version": "7.0"}}
    assert [r["input"] for r in got[29:31]] == [f"{corpus}:30", f"{corpus}:32"]


def test_fail_on_is_reached_by_any_item_only(h: Any, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    h.write_json(corpus / "a.json", h.moderation(("Alcohol", "", 91.0)))
    h.write_json(corpus / "b.json", h.moderation(("Smoking", "Drugs & Tobacco", 85.0)))
    review = h.run("evaluate", "--policy", POLICY, "--corpus", corpus, "--fail-on", "review")
    block = h.run("evaluate", "--policy", POLICY, "--corpus", corpus, "--fail-on", "block")
    assert [r["decision"] for r in records(review.out)] == ["allow", "review"]
    assert (review.code, block.code) == (1, 0), (review, block)


def test_an_empty_corpus_decides_nothing(h: Any, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = h.run(
        "evaluate", "--policy", POLICY, "--corpus", tmp_path / "empty", "--fail-on", "review"
    )
    assert (result.code, result.out, result.err) == (0, "", "")


def test_a_bad_file_stops_the_run_located_after_the_items_before_it(
    h: Any, tmp_path: Path, small_chunks: None
) -> None:
    corpus = random_corpus(tmp_path / "corpus", 60)
    before = [r for r in one_by_one(corpus) if Path(r["input"]) < Path("B/m-broken.json")]
    add_broken_files(corpus)
    for env in (POOL, NO_POOL):
        result = h.run("evaluate", "--policy", POLICY, "--corpus", corpus, env=env)
        assert result.code == 2, result
        assert records(result.out) == before
        assert result.err.startswith(f"policy-engine: {corpus}/B/m-broken.json:1:"), result
        assert "not valid JSON" in result.err and "Traceback" not in result.err


def test_a_worker_that_dies_is_a_located_error(
    h: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_chunks: None
) -> None:
    corpus = random_corpus(tmp_path / "corpus", 60)
    crash_reading(monkeypatch, corpus)
    result = h.run("evaluate", "--policy", POLICY, "--corpus", corpus, env=POOL)
    assert result.code == 2, result
    assert f"policy-engine: --corpus {corpus}: a worker process ended unexpectedly" in result.err
    assert "the records before those were written" in result.err
    assert "Traceback" not in result.err
    named = result.err.split("from ")[1].split(";")[0].split(" to ")
    assert Path(named[0]) <= Path("a/crash.json") <= Path(named[1]), result.err
    assert all(Path(r["input"]) < Path(named[0]) for r in records(result.out))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "give --labels FILE... or --corpus DIR|FILE"),
        (("--labels", "x.json"), "give --labels FILE... or --corpus DIR|FILE"),
        (("--replay", "."), "--corpus takes neither --replay nor --context"),
    ],
)
def test_usage_errors(h: Any, tmp_path: Path, extra: tuple[str, ...], message: str) -> None:
    (tmp_path / "corpus").mkdir()
    args: tuple[Any, ...] = ("evaluate", "--policy", POLICY)
    if extra != ():
        args += ("--corpus", tmp_path / "corpus")
    result = h.run(*args, *extra)
    assert result.code == 2 and result.out == "", result
    assert message in result.err and "Traceback" not in result.err


def test_a_policy_set_and_a_missing_corpus_are_refused(h: Any, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    refused = h.run("evaluate", "--policy", SET, "--corpus", corpus)
    assert refused.code == 2 and "is a policy set: --corpus decides with a policy" in refused.err
    missing = h.run("evaluate", "--policy", POLICY, "--corpus", tmp_path / "nowhere")
    assert missing.code == 2, missing
    assert (
        missing.err == f"policy-engine: --corpus {tmp_path / 'nowhere'}: no such file or folder\n"
    )


def test_ctrl_c_stops_the_pool_cleanly(h: Any, tmp_path: Path) -> None:
    """A real process reading a FIFO that never ends: Ctrl-C (SIGINT to the whole
    process group, as a terminal sends it) exits 130, no traceback, no worker left."""
    fifo = tmp_path / "corpus.jsonl"
    command = [sys.executable, "-m", "policy_engine", "evaluate", "--policy", str(POLICY)]
    ended = interrupt_pool([*command, "--corpus", str(fifo)], fifo, h.cli_env(POOL))
    assert ended.returncode == 130, ended.err
    assert b"Traceback" not in ended.err
    for line in ended.out.splitlines():  # what was written before Ctrl-C is whole records
        assert json.loads(line)["input"].startswith(f"{fifo}:")
    assert ended.workers_gone()
