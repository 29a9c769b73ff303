"""A bank: a named file, or folder of files, of hashes (see :mod:`.hash_lists`),
loaded into a PDQ index and a set of SHA-256 digests."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policy_engine_hash_match.errors import BankError
from policy_engine_hash_match.hash_lists import ListedHash, parse_hash_list, read_file
from policy_engine_hash_match.hashing import HASH_BYTES
from policy_engine_hash_match.index import MultiIndex

BANK_SUFFIXES = (".txt", ".csv")
"""The files a folder bank reads (others, a README say, are left alone)."""
FOLDER_BANK_FILE = "bank.txt"
"""The file ``bank add`` and ``bank import`` write in a folder bank."""


def bank_files(path: Path) -> tuple[Path, ...]:
    """The files of the bank at ``path``: the file itself, or a folder's
    ``*.txt`` and ``*.csv`` files (not hidden, not in subfolders), sorted."""
    if path.is_dir():
        return tuple(
            sorted(
                child
                for child in path.iterdir()
                if child.suffix.lower() in BANK_SUFFIXES
                and not child.name.startswith(".")
                and child.is_file()
            )
        )
    if path.is_file():
        return (path,)
    if path.exists():  # a FIFO or a device: reading it could block for ever
        raise BankError("not a regular file or folder (a FIFO, a device?)", path=path)
    raise BankError("no such bank file or folder", path=path)


def bank_name(path: Path) -> str:
    """A bank's default name: a file's stem, a folder's name."""
    return path.name if path.is_dir() else path.stem


@dataclass(frozen=True, slots=True, eq=False)
class Bank:
    name: str
    path: Path
    digest: str
    """SHA-256 over the bank's files (names and bytes): its version."""
    index: MultiIndex
    sha256: frozenset[bytes]

    @property
    def pdq_count(self) -> int:
        return len(self.index)

    def metadata(self, written: str | None = None) -> dict[str, Any]:
        """What a record says of this bank: name, path as written, digest, sizes."""
        return {
            "name": self.name,
            "path": written if written is not None else str(self.path),
            "digest": self.digest,
            "pdq": self.pdq_count,
            "sha256": len(self.sha256),
        }


def load_bank(path: Path, name: str | None = None, *, allow_empty: bool = False) -> Bank:
    """The bank at ``path`` (a file, or a folder of files) named ``name`` or
    after the path. Any unreadable file or malformed line is a
    :class:`BankError` at its place; so is a bank with no hashes, unless
    ``allow_empty`` (a bank that matches nothing is likelier a mistake)."""
    files = bank_files(path)
    digest = hashlib.sha256()
    listed: list[ListedHash] = []
    for file in files:
        data = read_file(file)  # once: the digest names exactly the hashes loaded
        hash_list = parse_hash_list(data, file)
        if hash_list.others:
            raise BankError(
                f"{hash_list.others[0]}; a bank holds pdq and sha256 hashes only "
                "(`policy-engine bank import` leaves other signal types out, each said)",
            )
        listed.extend(hash_list.hashes)
        digest.update(file.name.encode() + b"\0" + data + b"\0")
    if not listed and not allow_empty:
        raise BankError(
            "the bank holds no hashes (a folder bank reads *.txt and *.csv files)", path=path
        )
    pdq = [entry.digest for entry in listed if entry.kind == "pdq"]
    rows = np.frombuffer(b"".join(dict.fromkeys(pdq)), dtype=np.uint8).reshape(-1, HASH_BYTES)
    return Bank(
        name=name if name is not None else bank_name(path),
        path=path,
        digest=digest.hexdigest(),
        index=MultiIndex(rows),
        sha256=frozenset(entry.digest for entry in listed if entry.kind == "sha256"),
    )


def file_signature(path: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a bank's files change (names, sizes, modification
    times): a loaded bank is reused until it does."""
    try:
        found = bank_files(path)
        return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in found)
    except OSError as exc:
        raise BankError(f"cannot read: {exc.strerror or exc}", path=path) from exc


def described(banks: Mapping[str, Bank]) -> str:
    """``name@digest12`` of each bank, sorted: the banks' version in one string."""
    return ",".join(f"{name}@{banks[name].digest[:12]}" for name in sorted(banks))
