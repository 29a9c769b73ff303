"""The lossless cascade end to end: ``policy-engine check`` with a local detector
(the stub) before Rekognition (the real boto3 client against
:class:`~policy_engine_rekognition.testing.FakeRekognition`), counting the
requests the fake received."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from policy_engine.cli import main
from policy_engine_rekognition.testing import FakeRekognition

JPEG_MAGIC = b"\xff\xd8\xff\xe0"
BLOCKED_LOCALLY = {"Weapon Violence": ("Violence", 97.0)}


def run_check(*args: str | Path) -> tuple[int, list[dict[str, Any]], str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["check", *(str(a) for a in args)], out, err)
    records = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    return code, records, err.getvalue()


def setup(tmp_path: Path, fake: FakeRekognition, cascade: str = "") -> tuple[Path, list[Path]]:
    """Three images: two the stub's recordings already block (re-uploads of removed
    images, say), one they know nothing of, which Rekognition finds harmless."""
    images = []
    recordings = tmp_path / "known"
    recordings.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        path = tmp_path / name
        path.write_bytes(JPEG_MAGIC + name.encode())
        images.append(path)
        fake.respond(path.read_bytes(), {"ModerationLabels": [], "ModerationModelVersion": "7.0"})
    for path in images[:2]:
        key = hashlib.sha256(path.read_bytes()).hexdigest()
        labels = [
            {"Name": n, "ParentName": p, "Confidence": c} for n, (p, c) in BLOCKED_LOCALLY.items()
        ]
        response = {"ModerationLabels": labels, "ModerationModelVersion": "7.0"}
        (recordings / f"{key}.json").write_text(json.dumps(response))
    settings = f"{{endpoint_url: '{fake.endpoint_url}', retry_mode: standard, max_attempts: 1}}"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nname: cascade\n"
        f"{cascade}"
        "detectors:\n"
        "  stub: {recordings: known, missing: no-labels}\n"
        f"  rekognition-moderation: {settings}\n"
        "rules:\n  - {id: violence, match: {parent: Violence}, review_at: 60, block_at: 90}\n",
        encoding="utf-8",
    )
    return policy, images


def test_a_local_block_saves_the_paid_call(fake: FakeRekognition, tmp_path: Path) -> None:
    policy, images = setup(tmp_path, fake)
    code, records, err = run_check("--policy", policy, "--cost-per-call", "0.001", *images)
    assert code == 0, err
    assert len(fake.calls) == 1  # only the image the local detector knows nothing of
    by_input = {Path(r["input"]).name: r for r in records}
    for name in ("a.jpg", "b.jpg"):
        assert by_input[name]["decision"] == "block"
        assert by_input[name]["skipped"] == [
            {"source": "rekognition-moderation", "reason": "decision already block"}
        ]
        assert "rekognition-moderation" not in by_input[name]["detectors"]
    assert by_input["c.jpg"]["decision"] == "allow" and "skipped" not in by_input["c.jpg"]
    assert "rekognition-moderation" in by_input["c.jpg"]["detectors"]
    assert (
        "detector calls: 1 made, 2 saved (0 from the cache, 0 duplicate image(s), "
        "2 skipped by the cascade)\n" in err
    )
    assert "estimated cost: 1 call(s) x 0.001 = 0.001; the cascade saved 2 call(s) = 0.002" in err


def test_switched_off_every_image_costs_a_call(fake: FakeRekognition, tmp_path: Path) -> None:
    policy, images = setup(tmp_path, fake, cascade="cascade: {skip: false}\n")
    code, records, err = run_check("--policy", policy, *images)
    assert code == 0, err
    assert len(fake.calls) == 3
    assert all("skipped" not in r for r in records)
    decisions = {Path(r["input"]).name: r["decision"] for r in records}
    assert decisions == {"a.jpg": "block", "b.jpg": "block", "c.jpg": "allow"}
    assert "0 skipped by the cascade" in err


def test_a_skipped_detector_is_neither_recorded_nor_cached(
    fake: FakeRekognition, tmp_path: Path
) -> None:
    policy, images = setup(tmp_path, fake)
    store = tmp_path / "rec"
    run_check("--policy", policy, "--record", store, *images)
    recorded = [p for p in store.iterdir() if p.suffix == ".json"]
    assert len(recorded) == 1 and len(fake.calls) == 1  # c.jpg's answer alone
    code, records, err = run_check("--policy", policy, "--cache", store, *images)
    decisions = {Path(r["input"]).name: r["decision"] for r in records}
    assert code == 0 and decisions == {"a.jpg": "block", "b.jpg": "block", "c.jpg": "allow"}
    assert len(fake.calls) == 1, err  # c.jpg from the cache, a and b skipped again
    assert "0 made, 3 saved (1 from the cache, 0 duplicate image(s), 2 skipped" in err
