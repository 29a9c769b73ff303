from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from policy_engine_hash_match.bank import described, file_signature, load_bank
from policy_engine_hash_match.errors import BankError

PDQ = "f" * 8 + "0" * 56
SHA = "ab" * 32


def test_a_file_bank_is_named_after_its_stem_and_deduplicates(tmp_path: Path) -> None:
    path = tmp_path / "removed.txt"
    path.write_text(f"{PDQ}\npdq {PDQ}\nsha256 {SHA}\n", encoding="utf-8")
    bank = load_bank(path)
    assert (bank.name, bank.pdq_count, len(bank.sha256)) == ("removed", 1, 1)
    assert bank.metadata("removed.txt") == {
        "name": "removed",
        "path": "removed.txt",
        "digest": bank.digest,
        "pdq": 1,
        "sha256": 1,
    }
    assert load_bank(path, "Shared list").name == "Shared list"


def test_a_folder_bank_reads_its_txt_and_csv_files(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "a.txt").write_text(f"{PDQ}\n", encoding="utf-8")
    (folder / "b.csv").write_text(f"hash,signal_type\n{SHA},sha256\n", encoding="utf-8")
    (folder / "README.md").write_text("not hashes", encoding="utf-8")
    bank = load_bank(folder)
    assert (bank.name, bank.pdq_count, len(bank.sha256)) == ("shared", 1, 1)


def test_the_digest_changes_with_the_contents(tmp_path: Path) -> None:
    path = tmp_path / "removed.txt"
    path.write_text(f"{PDQ}\n", encoding="utf-8")
    before, signature = load_bank(path), file_signature(path)
    path.write_text(f"{PDQ}\nsha256 {SHA}\n", encoding="utf-8")
    after = load_bank(path)
    assert before.digest != after.digest and file_signature(path) != signature
    assert described({"removed": after}) == f"removed@{after.digest[:12]}"


def test_a_bank_that_cannot_load_is_an_error_never_an_empty_bank(tmp_path: Path) -> None:
    with pytest.raises(BankError, match="no such bank file or folder"):
        load_bank(tmp_path / "missing.txt")
    fifo = tmp_path / "bank.txt"
    os.mkfifo(fifo)  # never read: no writer would ever come
    with pytest.raises(BankError, match="not a regular file or folder"):
        load_bank(fifo)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(BankError, match="holds no hashes"):
        load_bank(empty)
    assert load_bank(empty, allow_empty=True).pdq_count == 0
    other = tmp_path / "other.csv"
    other.write_text(f"hash,signal_type\n{'0' * 32},video_md5\n", encoding="utf-8")
    with pytest.raises(BankError, match=r"other.csv:2: signal type 'video_md5'"):
        load_bank(other)


def test_a_bank_rewritten_while_it_loads_has_the_digest_of_the_hashes_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a writer replaces the file right after the loader's first read: the
    # digest in records and audit logs must name the hashes actually matched
    path = tmp_path / "removed.txt"
    before, after = f"sha256 {SHA}\n", f"sha256 {'cd' * 32}\n"
    path.write_text(before, encoding="utf-8")
    twin = tmp_path / "twin" / "removed.txt"
    twin.parent.mkdir()
    twin.write_text(before, encoding="utf-8")
    expected = load_bank(twin)
    real_bytes, real_text = Path.read_bytes, Path.read_text

    def rewritten(read: Any) -> Any:
        def reading(self: Path, *args: Any, **kwargs: Any) -> Any:
            got = read(self, *args, **kwargs)
            if self == path:
                path.write_text(after, encoding="utf-8")
            return got

        return reading

    monkeypatch.setattr(Path, "read_bytes", rewritten(real_bytes))
    monkeypatch.setattr(Path, "read_text", rewritten(real_text))
    bank = load_bank(path)

    assert (bank.digest, bank.sha256) == (expected.digest, expected.sha256)
