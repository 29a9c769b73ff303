"""examples/known-images decides as its README says, and its banks are what
``bank add`` and ``bank import`` make of its sources."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from policy_engine_hash_match.bank import load_bank

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "known-images"
IMAGES = ROOT / "examples" / "images"


def test_the_example_decides_as_its_readme_says(cli: Callable[..., object]) -> None:
    inputs = [
        IMAGES / "explicit.png",
        EXAMPLE / "reupload-mirrored.png",
        IMAGES / "party-smoking.png",
        IMAGES / "landscape.png",
    ]
    run = cli("check", "--policy", EXAMPLE / "policy.yaml", *inputs)
    assert run.code == 0, run.err
    decided = {Path(r["input"]).name: r for r in map(json.loads, run.out.splitlines())}
    assert {name: r["decision"] for name, r in decided.items()} == {
        "explicit.png": "block",
        "reupload-mirrored.png": "block",
        "party-smoking.png": "block",
        "landscape.png": "allow",
    }
    readme = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    for name, record in decided.items():
        reasons = record["reasons"]
        rule = f"(`{reasons[0]['rule']}`)" if reasons else ""
        assert f"| `{name}` |" in readme and f"| {record['decision']} {rule}".rstrip() in readme


def test_the_example_banks_are_what_the_commands_make(
    cli: Callable[..., object], tmp_path: Path
) -> None:
    removed, shared = tmp_path / "removed.txt", tmp_path / "shared"
    shared.mkdir()
    assert cli("bank", "add", removed, IMAGES / "explicit.png").code == 0
    assert cli("bank", "import", shared, EXAMPLE / "shared-list.csv").code == 0
    for made, shipped in ((removed, "banks/removed.txt"), (shared, "banks/shared")):
        ours = load_bank(made)
        theirs = load_bank(EXAMPLE / shipped)
        assert set(map(bytes, ours.index.hashes)) == set(map(bytes, theirs.index.hashes))
        assert ours.sha256 == theirs.sha256
    assert cli("validate", EXAMPLE / "policy.yaml").code == 0
