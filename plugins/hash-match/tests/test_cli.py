from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hash_match_helpers import Pictures, picture
from PIL import Image as PILImage

from policy_engine_hash_match.bank import load_bank

Cli = Callable[..., object]
PDQ = "f" * 8 + "0" * 56


def test_bank_add_hashes_images_once_and_list_shows_the_bank(
    cli: Callable[..., object], pictures: Pictures, tmp_path: Path
) -> None:
    one, two = pictures.save("one.png", picture(1)), pictures.save("two.png", picture(2))
    bank = tmp_path / "removed.txt"
    added = cli("bank", "add", bank, one, two, "--json")
    assert added.code == 0, added.err
    report = json.loads(added.out)
    assert [entry["added"] for entry in report["images"]] == [["sha256", "pdq"]] * 2
    again = cli("bank", "add", bank, one)
    assert again.code == 0 and "already in the bank" in again.out
    assert (load_bank(bank).pdq_count, len(load_bank(bank).sha256)) == (2, 2)
    listed = cli("bank", "list", bank, "--json")
    (entry,) = json.loads(listed.out)
    assert (entry["name"], entry["pdq"], entry["sha256"]) == ("removed", 2, 2)
    assert cli("bank", "list", bank).out.startswith("removed: 2 PDQ, 2 SHA-256, digest ")


def test_bank_list_lists_a_policys_banks(cli: Callable[..., object], tmp_path: Path) -> None:
    (tmp_path / "removed.txt").write_text(f"{PDQ}\n", encoding="utf-8")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nname: p\ndetectors:\n  hash-match:\n"
        "    banks: [{path: removed.txt, name: Removed}]\nrules: []\n",
        encoding="utf-8",
    )
    run = cli("bank", "list", "--policy", policy, "--json")
    assert run.code == 0, run.err
    assert [(b["name"], b["pdq"]) for b in json.loads(run.out)] == [("Removed", 1)]
    assert cli("bank", "list").code == 2
    policy.write_text("version: 1\nname: p\nrules: []\n", encoding="utf-8")
    assert "does not run hash-match" in cli("bank", "list", "--policy", policy).err


def test_bank_add_into_a_folder_writes_its_bank_file(
    cli: Callable[..., object], pictures: Pictures, tmp_path: Path
) -> None:
    folder = tmp_path / "removed"
    folder.mkdir()
    assert cli("bank", "add", folder, pictures.save("one.png", picture(1))).code == 0
    assert (folder / "bank.txt").is_file() and load_bank(folder).name == "removed"


def test_bank_add_keeps_low_quality_images_to_their_exact_hash(
    cli: Callable[..., object], pictures: Pictures, tmp_path: Path
) -> None:
    flat = pictures.save("flat.png", PILImage.new("RGB", (64, 64), "white"))
    run = cli("bank", "add", tmp_path / "b.txt", flat, "--json")
    (entry,) = json.loads(run.out)["images"]
    assert entry["added"] == ["sha256"] and entry["pdq_below_floor"] is True


def test_bank_check_gives_the_nearest_match_and_its_distance(
    cli: Callable[..., object], pictures: Pictures, tmp_path: Path
) -> None:
    bank = tmp_path / "removed.txt"
    cli("bank", "add", bank, pictures.save("one.png", picture(1)))
    rotated = pictures.save("rotated.png", picture(1).transpose(PILImage.Transpose.ROTATE_270))
    found = json.loads(cli("bank", "check", bank, rotated, "--json").out)
    assert found["matched"] is True and found["exact"] is False
    assert found["nearest"]["distance"] <= 8 and found["nearest"]["variant"] != "original"
    other = cli("bank", "check", bank, pictures.save("other.png", picture(2)))
    assert other.code == 0 and "does not match bank removed" in other.out
    assert "nearest PDQ" in other.out


def test_bank_import_reads_text_and_csv_and_says_what_it_skipped(
    cli: Callable[..., object], tmp_path: Path
) -> None:
    bank = tmp_path / "shared.txt"
    text = tmp_path / "list.txt"
    text.write_text(f"# shared\n{PDQ}\n{PDQ}\n", encoding="utf-8")
    first = json.loads(cli("bank", "import", bank, text, "--json").out)
    assert (first["read"], first["added"], first["duplicates"]) == (2, 1, 1)
    export = tmp_path / "export.csv"
    export.write_text(
        f"signal_type,signal_value\npdq,{PDQ}\nvideo_md5,{'0' * 32}\nsha256,{'ab' * 32}\n",
        encoding="utf-8",
    )
    run = cli("bank", "import", bank, export)
    assert run.code == 0 and "1 hashes added of 2 read" in run.out
    assert "export.csv:3: signal type 'video_md5'" in run.err
    bank_now = load_bank(bank)
    assert (bank_now.pdq_count, len(bank_now.sha256)) == (1, 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "{bank}", "{missing}"), "cannot read image"),
        (("add", "{bank}", "{garbage}"), "cannot decode the image"),
        (("check", "{bad}", "{image}"), "bad.txt:2: not a pdq hash"),
        (("list", "{missing}"), "no such bank file or folder"),
        (("import", "{bank}", "{bad}"), "bad.txt:2: not a pdq hash"),
        (("import", "{bank}", "{garbage}"), "not UTF-8 text"),
        (("check", "{bank}", "{image}", "--max-distance", "-1"), "-1 is not from 0 to 63"),
        (("check", "{bank}", "{image}", "--max-distance", "64"), "64 is not from 0 to 63"),
        (("add", "{bank}", "{image}", "--quality-floor", "101"), "101 is not from 0 to 100"),
        (("add", "{bank}", "{image}", "--quality-floor", "x"), "not a whole number: 'x'"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_writes_nothing(
    cli: Callable[..., object],
    pictures: Pictures,
    tmp_path: Path,
    args: tuple[str, ...],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{PDQ}\nzz\n", encoding="utf-8")
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\xff\x00 not an image")
    paths = {
        "bank": tmp_path / "removed.txt",
        "missing": tmp_path / "missing.png",
        "garbage": garbage,
        "bad": bad,
        "image": pictures.save("one.png", picture(1)),
    }
    run = cli("bank", *(arg.format(**paths) for arg in args))
    err = run.err + capsys.readouterr().err  # argparse's usage errors go to sys.stderr
    assert run.code == 2 and message in err and "Traceback" not in err
    assert not paths["bank"].exists()


def test_the_bank_command_is_in_the_top_level_help(
    cli: Callable[..., object], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("--help").code == 0
    assert "bank " in capsys.readouterr().out
    assert cli("bank").code == 2  # an action is required: argparse's usage error


@pytest.mark.parametrize("action", ["add", "import"])
def test_bank_add_and_import_refuse_to_write_text_lines_into_a_csv_bank(
    cli: Callable[..., object], pictures: Pictures, tmp_path: Path, action: str
) -> None:
    # they write the text form: appended to a CSV, it made the bank fail to load (every
    # image then got the policy's on_error), after a run that said it had added hashes
    bank = tmp_path / "shared.csv"
    bank.write_text(f"hash,signal_type\n{PDQ},pdq\n", encoding="utf-8")
    listed = tmp_path / "more.txt"
    listed.write_text(f"{PDQ[::-1]}\n", encoding="utf-8")
    source = pictures.save("one.png", picture(1)) if action == "add" else listed
    run = cli("bank", action, bank, source)
    assert run.code == 2 and "write a text bank" in run.err and str(bank) in run.err
    assert bank.read_text(encoding="utf-8") == f"hash,signal_type\n{PDQ},pdq\n"
    assert not (tmp_path / "new.csv").exists()
    assert cli("bank", action, tmp_path / "new.csv", source).code == 2
    assert not (tmp_path / "new.csv").exists()


def test_bank_add_keeps_the_bank_files_permissions_and_its_symlink(
    cli: Callable[..., object], pictures: Pictures, tmp_path: Path
) -> None:
    # a replace through mkstemp left every bank 0600: a service reading banks as another
    # user could no longer load it; a symlinked bank was replaced by a copy, the list it
    # points at never updated
    shared = tmp_path / "shared.txt"
    shared.write_text(f"{PDQ}\n", encoding="utf-8")
    shared.chmod(0o644)
    link = tmp_path / "removed.txt"
    link.symlink_to(shared)
    assert cli("bank", "add", link, pictures.save("one.png", picture(1))).code == 0
    assert link.is_symlink() and (shared.stat().st_mode & 0o777) == 0o644
    assert len(load_bank(shared).sha256) == 1
    fresh = tmp_path / "fresh.txt"
    assert cli("bank", "add", fresh, pictures.save("two.png", picture(2))).code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask


def test_bank_import_says_when_bare_hashes_were_read_as_pdq(
    cli: Callable[..., object], tmp_path: Path
) -> None:
    # a SHA-256 list looks like a PDQ list (64 hex digits): imported as PDQ, its
    # exact copies would never match, so the default is said, never silent
    sha_list = tmp_path / "sha.txt"
    sha_list.write_text(f"{'ab' * 32}\nsha256 {'cd' * 32}\n", encoding="utf-8")

    guessed = cli("bank", "import", tmp_path / "a.txt", sha_list, "--json")
    chosen = cli("bank", "import", tmp_path / "b.txt", sha_list, "--kind", "sha256")

    assert guessed.code == 0 and json.loads(guessed.out)["untyped"] == 1
    assert "1 hash(es) without a type read as pdq" in guessed.err
    assert "--kind sha256" in guessed.err
    assert chosen.code == 0 and chosen.err == ""
    assert len(load_bank(tmp_path / "b.txt").sha256) == 2
