"""The end-to-end path: a policy blocking ``Known Image`` matches, run by
``policy-engine check`` and by the embedding API, with its audit log."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hash_match_helpers import Pictures, picture
from PIL import Image as PILImage

from policy_engine import Moderator

POLICY = """\
version: 1
name: known-images
on_error: review
detectors:
  hash-match:
    banks: [banks/removed.txt]
rules:
  - id: known
    match: {parent: Known Image}
    block_at: 69
"""


def policy_with_bank(cli: Callable[..., object], pictures: Pictures, tmp_path: Path) -> Path:
    (tmp_path / "banks").mkdir()
    removed = pictures.save("removed.png", picture(1))
    assert cli("bank", "add", tmp_path / "banks" / "removed.txt", removed).code == 0
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    return policy


def records(out: str) -> dict[str, dict[str, object]]:
    found = {}
    for line in out.splitlines():
        record = json.loads(line)
        found[Path(str(record["input"])).name] = record
    return found


def test_check_blocks_re_uploads_and_allows_other_images(
    cli: Callable[..., object], pictures: Pictures, tmp_path: Path
) -> None:
    policy = policy_with_bank(cli, pictures, tmp_path)
    inputs = [
        pictures.folder / "removed.png",
        pictures.save("mirrored.png", picture(1).transpose(PILImage.Transpose.FLIP_LEFT_RIGHT)),
        pictures.save("reencoded.jpg", picture(1), "JPEG"),
        pictures.save("other.png", picture(2)),
    ]
    run = cli("check", "--policy", policy, *inputs)
    assert run.code == 0, run.err
    decided = records(run.out)
    assert {name: r["decision"] for name, r in decided.items()} == {
        "removed.png": "block",
        "mirrored.png": "block",
        "reencoded.jpg": "block",
        "other.png": "allow",
    }
    (bank,) = decided["removed.png"]["detectors"]["hash-match"]["banks"]  # type: ignore[index]
    assert bank["name"] == "removed" and bank["path"] == "banks/removed.txt"


def test_a_broken_bank_never_allows(
    cli: Callable[..., object], pictures: Pictures, tmp_path: Path
) -> None:
    policy = policy_with_bank(cli, pictures, tmp_path)
    other = pictures.save("other.png", picture(2))
    moderator = Moderator.from_policy_file(policy)  # its preflight loaded the bank
    bank = tmp_path / "banks" / "removed.txt"
    bank.write_text("pdq 1234\n", encoding="utf-8")
    # broken before a run: the run stops at once, no image checked
    run = cli("check", "--policy", policy, other)
    assert run.code == 2 and "removed.txt:1: not a pdq hash: '1234'" in run.err
    assert run.out == ""
    # broken during a run: each image gets the policy's on_error, with the error
    decision = moderator.check(other)
    assert decision.verdict.value == "review"
    (failure,) = decision.failures
    assert "removed.txt:1: not a pdq hash" in str(failure)


def test_an_undecodable_image_is_a_detector_error_decided_by_on_error(
    cli: Callable[..., object], pictures: Pictures, tmp_path: Path
) -> None:
    policy = policy_with_bank(cli, pictures, tmp_path)
    broken = pictures.folder / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    run = cli("check", "--policy", policy, broken)
    (record,) = records(run.out).values()
    assert run.code == 3 and record["decision"] == "review"
    assert "undecodable-image" in json.dumps(record["errors"])


def test_the_banks_reach_the_decision_and_the_audit_log(
    cli: Callable[..., object], pictures: Pictures, tmp_path: Path
) -> None:
    policy = policy_with_bank(cli, pictures, tmp_path)
    audit = tmp_path / "audit.jsonl"
    moderator = Moderator.from_policy_file(policy, audit_log=audit)
    decision = moderator.check(pictures.folder / "removed.png")
    metadata = decision.detectors["hash-match"]
    (bank,) = metadata["banks"]
    (line,) = audit.read_text(encoding="utf-8").splitlines()
    logged = json.loads(line)
    assert logged["decision"] == "block"
    assert logged["detectors"]["hash-match"]["model_version"] == f"removed@{bank['digest'][:12]}"
