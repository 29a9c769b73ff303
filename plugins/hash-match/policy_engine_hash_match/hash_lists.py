"""Reading lists of hashes: this plugin's bank files and the formats hash
exchanges share (see the README's "Formats accepted").

- Text, one hash per line: ``HEX`` or ``KIND HEX`` (``pdq`` or ``sha256``,
  python-threatexchange's local-file form ``signal_type signal``); ``#``
  starts a comment, blank lines are skipped.
- CSV with a header row naming the hash column (``hash``, ``signal``,
  ``signal_value``, ``signal_str``, ``pdq``, ``pdq_hash``, ``hash_value``,
  ``indicator``) and optionally a type column (``signal_type``,
  ``hash_type``, ``type``, ``indicator_type``); other columns are ignored.
  Without a header, a first column of hashes (HMA 1.0's ``.pdq.te`` files:
  ``hash,id,timestamp,tags``).
  A row whose first cell starts with ``#`` is a comment, unless its hash
  column holds a hash.

A line that is not one of these is a :class:`BankError` at its ``file:line``,
never dropped: a bank must not lose a hash silently.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from policy_engine_hash_match.errors import BankError
from policy_engine_hash_match.hashing import HEX_DIGITS, parse_hex

Kind = Literal["pdq", "sha256"]
KINDS: tuple[Kind, ...] = ("pdq", "sha256")

HASH_COLUMNS = (
    "hash",
    "signal",
    "signal_value",
    "signal_str",
    "pdq",
    "pdq_hash",
    "hash_value",
    "indicator",
)
TYPE_COLUMNS = ("signal_type", "hash_type", "type", "indicator_type")
_KIND_NAMES: dict[str, Kind] = {
    "pdq": "pdq",
    "pdq_hash": "pdq",
    "hash_pdq": "pdq",
    "photo_pdq": "pdq",
    "sha256": "sha256",
    "sha-256": "sha256",
    "hash_sha256": "sha256",
}
"""Spellings of the two kinds in type columns and line prefixes (lower case):
ours, python-threatexchange's signal types, ThreatExchange's indicator types."""


@dataclass(frozen=True, slots=True)
class ListedHash:
    kind: Kind
    digest: bytes
    path: Path
    line: int
    typed: bool = True
    """Whether the list named the kind (False: the reader's default)."""


@dataclass(frozen=True, slots=True)
class OtherSignal:
    """A CSV row of a signal type this plugin does not match (``video_md5``, say)."""

    signal_type: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: signal type {self.signal_type!r} is not pdq or sha256"


@dataclass(frozen=True, slots=True)
class HashList:
    hashes: tuple[ListedHash, ...]
    others: tuple[OtherSignal, ...] = ()


def kind_of(name: str) -> Kind | None:
    return _KIND_NAMES.get(name.strip().lower())


def read_hash_list(path: Path, *, default_kind: Kind = "pdq") -> HashList:
    """The hashes in the file at ``path``: CSV where its name ends ``.csv``,
    text otherwise. A hash given without a kind is ``default_kind``."""
    return parse_hash_list(read_file(path), path, default_kind=default_kind)


def read_file(path: Path) -> bytes:
    """The bytes of the hash list at ``path``, or a :class:`BankError` saying why not."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BankError(f"cannot read: {exc.strerror or exc}", path=path) from exc


def parse_hash_list(data: bytes, path: Path, *, default_kind: Kind = "pdq") -> HashList:
    """The hashes in ``data``, the contents of the file at ``path`` (read once by
    the caller, so that what is parsed is what the caller digests)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BankError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path) from exc
    if path.suffix.lower() == ".csv":
        return read_csv(text, path, default_kind)
    return HashList(tuple(read_text(text, path, default_kind)))


def _hash(text: str, kind: Kind, path: Path, line: int, *, typed: bool = True) -> ListedHash:
    digest = parse_hex(text)
    if digest is None:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise BankError(
            f"not a {kind} hash: {shown!r} ({HEX_DIGITS} hex digits expected)",
            path=path,
            line=line,
        )
    return ListedHash(kind, digest, path, line, typed)


def read_text(text: str, path: Path, default_kind: Kind) -> Iterator[ListedHash]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) == 1:
            yield _hash(parts[0], default_kind, path, number, typed=False)
            continue
        kind = kind_of(parts[0])
        if kind is None or len(parts) != 2:
            raise BankError(
                f"expected HEX or 'pdq HEX' or 'sha256 HEX', got {line[:80]!r}",
                path=path,
                line=number,
            )
        yield _hash(parts[1], kind, path, number)


def _column(header: Sequence[str], names: Sequence[str]) -> int | None:
    lowered = [cell.strip().lower() for cell in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def _commented(row: Sequence[str]) -> bool:
    return row[0].lstrip().startswith("#")


def read_csv(text: str, path: Path, default_kind: Kind) -> HashList:
    rows: list[tuple[int, list[str]]] = []
    # strict: an unclosed quote is an error, not a cell swallowing every later row
    reader = csv.reader(io.StringIO(text), strict=True)
    start = 1  # the line a row starts on (a quoted cell may span lines)
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise BankError(f"not readable as CSV: {exc}", path=path, line=start) from exc
    # a row starting with # before the header is a comment
    while rows and _commented(rows[0][1]):
        rows = rows[1:]
    if not rows:
        return HashList(())
    first_line, header = rows[0]
    hash_column = _column(header, HASH_COLUMNS)
    type_column = _column(header, TYPE_COLUMNS)
    if hash_column is None:
        if parse_hex(header[0].strip()) is None:
            raise BankError(
                "a CSV hash list needs a header naming its hash column "
                f"({', '.join(HASH_COLUMNS)}) or a hash in its first column",
                path=path,
                line=first_line,
            )
        hash_column, type_column = 0, None
    else:
        rows = rows[1:]
    hashes: list[ListedHash] = []
    others: list[OtherSignal] = []
    for number, row in rows:
        if _commented(row) and (
            hash_column >= len(row) or parse_hex(row[hash_column].strip()) is None
        ):
            # a comment; but a row whose hash column holds a hash is data, whatever its
            # first cell says (an id "#12", tags "#spam"): no hash is dropped silently
            continue
        kind, typed = default_kind, False
        if type_column is not None and type_column < len(row) and row[type_column].strip():
            named = kind_of(row[type_column])
            if named is None:
                others.append(OtherSignal(row[type_column].strip(), path, number))
                continue
            kind, typed = named, True
        if hash_column >= len(row):
            raise BankError(f"no column {hash_column + 1} (the hash)", path=path, line=number)
        hashes.append(_hash(row[hash_column].strip(), kind, path, number, typed=typed))
    return HashList(tuple(hashes), tuple(others))
