from __future__ import annotations

from pathlib import Path

import pytest

from policy_engine_hash_match.errors import BankError
from policy_engine_hash_match.hash_lists import read_hash_list

PDQ = "f" * 8 + "0" * 56
SHA = "ab" * 32


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_text_lists_take_bare_hashes_kinds_and_comments(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "list.txt",
        f"# removed on review\n\n{PDQ.upper()}\npdq {PDQ[::-1]}  # rotated\nsha256 {SHA}\n",
    )
    listed = read_hash_list(path)
    assert [(h.kind, h.digest.hex(), h.line) for h in listed.hashes] == [
        ("pdq", PDQ, 3),
        ("pdq", PDQ[::-1], 4),
        ("sha256", SHA, 5),
    ]
    assert next(h.kind for h in read_hash_list(path, default_kind="sha256").hashes) == "sha256"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("abc", "not a pdq hash: 'abc'"),
        (PDQ[:-1] + "g", "64 hex digits expected"),
        (f"md5 {PDQ}", "expected HEX or 'pdq HEX'"),
        (f"pdq {PDQ} extra", "expected HEX or 'pdq HEX'"),
    ],
)
def test_a_malformed_line_is_an_error_at_its_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    path = write(tmp_path, "list.txt", f"{PDQ}\n{line}\n")
    with pytest.raises(BankError) as info:
        read_hash_list(path)
    assert str(info.value).startswith(f"{path}:2: ") and message in str(info.value)
    assert info.value.line == 2 and info.value.code == "bad-bank"


def test_a_csv_with_a_header_finds_the_hash_and_type_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "export.csv",
        "signal_id,signal_type,signal_value,tags\n"
        f"1,pdq,{PDQ},spam\n"
        f"2,video_md5,{'0' * 32},x\n"
        f"3,sha256,{SHA},\n"
        f'4,,"{PDQ[::-1]}",\n',
    )
    listed = read_hash_list(path)
    assert [(h.kind, h.digest.hex(), h.line) for h in listed.hashes] == [
        ("pdq", PDQ, 2),
        ("sha256", SHA, 4),
        ("pdq", PDQ[::-1], 5),
    ]
    assert [str(other) for other in listed.others] == [
        f"{path}:3: signal type 'video_md5' is not pdq or sha256"
    ]


def test_a_headerless_csv_reads_hashes_from_its_first_column(tmp_path: Path) -> None:
    # HMA 1.0's .pdq.te files: hash,id,timestamp,tags
    path = write(tmp_path, "group.csv", f"{PDQ},123,1600000000,a b\n{SHA},124,1600000001,\n")
    assert [h.digest.hex() for h in read_hash_list(path).hashes] == [PDQ, SHA]


def test_a_csv_without_a_hash_column_says_what_it_looks_for(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.csv", "id,value\n1,2\n")
    with pytest.raises(BankError, match=r"bad.csv:1: a CSV hash list needs a header naming"):
        read_hash_list(path)


def test_a_bad_hash_in_a_csv_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.csv", f"hash,id\n{PDQ},1\nnope,2\n")
    with pytest.raises(BankError, match=r"bad.csv:3: not a pdq hash: 'nope'"):
        read_hash_list(path)


def test_unreadable_and_non_utf8_files_are_bank_errors(tmp_path: Path) -> None:
    with pytest.raises(BankError, match="cannot read"):
        read_hash_list(tmp_path / "missing.txt")
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\xff\xd8\xff\xe0 not text")
    with pytest.raises(BankError, match="not UTF-8 text"):
        read_hash_list(binary)


def test_a_csv_hash_with_spaces_inside_is_an_error_not_a_shorter_digest(tmp_path: Path) -> None:
    # bytes.fromhex skips spaces: 62 digits and 2 spaces are 64 characters but 31 bytes,
    # which would shift every later hash of the bank by a byte (or never match, as SHA-256)
    spaced = f"{PDQ[:2]} {PDQ[2:4]} {PDQ[4:62]}"
    assert len(spaced) == 64
    path = write(tmp_path, "spaced.csv", f'hash,type\n"{spaced}",sha256\n')
    with pytest.raises(BankError, match=r"spaced.csv:2: not a sha256 hash"):
        read_hash_list(path)


@pytest.mark.parametrize("text", [PDQ, PDQ.upper(), SHA])
def test_parse_hex_takes_64_hex_digits_of_either_case(text: str) -> None:
    from policy_engine_hash_match.hashing import parse_hex

    assert parse_hex(text) == bytes.fromhex(text)


@pytest.mark.parametrize(
    "text", [f"{PDQ[:2]} {PDQ[2:4]} {PDQ[4:62]}", f"{PDQ[:62]}\t\n", f"{PDQ[:63]}\u0660", ""]
)
def test_parse_hex_refuses_anything_but_64_hex_digits(text: str) -> None:
    from policy_engine_hash_match.hashing import parse_hex

    assert parse_hex(text) is None


def test_a_csv_row_whose_first_cell_starts_with_a_hash_sign_keeps_its_hash(
    tmp_path: Path,
) -> None:
    # an id "#12" or tags "#spam, #x" first: the row was taken for a comment, its hash lost
    path = write(
        tmp_path,
        "export.csv",
        "# exported 2026-01-01\n"
        "tags,signal_type,signal_value\n"
        f'"#spam, #x",sha256,{SHA}\n'
        "# a comment row, no hash\n"
        f"#12,pdq,{PDQ}\n",
    )
    listed = read_hash_list(path)
    assert [(h.kind, h.digest.hex(), h.line) for h in listed.hashes] == [
        ("sha256", SHA, 3),
        ("pdq", PDQ, 5),
    ]
    headerless = write(tmp_path, "group.csv", f"# comment\n{PDQ},1\n#{PDQ[1:]},2\n")
    assert [h.line for h in read_hash_list(headerless).hashes] == [2]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        # an unclosed quote made one cell of every later row: their hashes were lost silently
        (f'hash,notes\n{PDQ},"seen twice\n{SHA},x\n{SHA[::-1]},y\n', 2, "unexpected end of data"),
        # a cell over the csv module's limit was a csv.Error traceback
        (f'hash,notes\n{PDQ},x\n{SHA},"{"n" * 200_000}"\n', 3, "field larger than field limit"),
    ],
    ids=["unclosed-quote", "huge-cell"],
)
def test_a_csv_the_csv_module_cannot_read_is_an_error_at_its_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, "export.csv", text)
    with pytest.raises(BankError) as info:
        read_hash_list(path)
    assert str(info.value).startswith(f"{path}:{line}: not readable as CSV: ")
    assert message in str(info.value)


def test_a_quoted_cell_may_span_lines_and_later_rows_keep_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "export.csv", f'hash,notes\n{PDQ},"two\nlines"\n{SHA},x\n')
    assert [(h.digest.hex(), h.line) for h in read_hash_list(path).hashes] == [(PDQ, 2), (SHA, 4)]
