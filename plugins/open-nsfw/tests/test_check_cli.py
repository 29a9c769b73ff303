"""``policy-engine check`` end to end with the real model: the offline example
policy (examples/open-nsfw), several images at once (micro-batched), and an
undecodable file that the policy's ``on_error`` reviews, never allows."""

from __future__ import annotations

import io
import json
import re
import shlex
from pathlib import Path

import pytest

from policy_engine.cli import main

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "open-nsfw"


@pytest.mark.usefixtures("registered")
def test_check_decides_each_image_from_its_own_score(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    inputs = [
        EXAMPLE / "images" / "abstract-skin-tones.png",
        EXAMPLE / "images" / "flat-skin-tone.png",
        ROOT / "examples" / "images" / "beach.png",
        ROOT / "examples" / "images" / "landscape.png",
        broken,
    ]
    out, err = io.StringIO(), io.StringIO()

    code = main(
        [
            "check",
            "--policy",
            str(EXAMPLE / "policy.yaml"),
            "--concurrency",
            "4",
            *map(str, inputs),
        ],
        out,
        err,
    )

    records = {Path(r["input"]).name: r for r in map(json.loads, out.getvalue().splitlines())}
    assert {name: r["decision"] for name, r in records.items()} == {
        "abstract-skin-tones.png": "block",
        "flat-skin-tone.png": "review",
        "beach.png": "allow",
        "landscape.png": "allow",
        "broken.png": "review",
    }
    assert code == 3, err.getvalue()  # a detector error: the run says so in its exit code
    (error,) = records["broken.png"]["errors"]
    assert (error["source"], error["code"]) == ("open-nsfw", "undecodable-image")
    assert "broken.png" in error["error"]
    blocked = records["abstract-skin-tones.png"]
    (reason,) = blocked["reasons"]
    assert (reason["label"], reason["source"], reason["rule"]) == (
        "Sexual Content",
        "open-nsfw",
        "sexual-content",
    )
    assert reason["confidence"] >= 90
    score = blocked["detectors"]["open-nsfw"]["nsfw_score"]
    assert reason["confidence"] == pytest.approx(100 * score)
    assert "0 made" in err.getvalue()  # a local detector: no paid call counted


@pytest.mark.usefixtures("registered")
def test_the_example_readme_shows_what_check_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    (commands,) = re.findall(r"```sh\n(.*?)```", readme, re.S)
    (shown,) = re.findall(r"```text\n(.*?)```", readme, re.S)
    (check,) = [c for c in commands.replace("\\\n", " ").splitlines() if " check " in c]
    monkeypatch.chdir(ROOT)
    out, err = io.StringIO(), io.StringIO()

    code = main(shlex.split(check)[1:], out, err)

    assert code == 0, err.getvalue()  # without --fail-on, decisions are not failures
    assert out.getvalue() == shown
