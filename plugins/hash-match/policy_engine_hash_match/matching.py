"""Matching one image's hashes against loaded banks, and the cache of loaded
banks: imported when the detector first runs, so that registering it (every
start of policy-engine) imports neither numpy nor Pillow."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from policy_engine import Label
from policy_engine_hash_match.bank import Bank, file_signature, load_bank
from policy_engine_hash_match.errors import BankError
from policy_engine_hash_match.hashing import DIHEDRAL_VARIANTS, ImageHashes, pdq_hex
from policy_engine_hash_match.settings import PARENT, SOURCE, BankSource, confidence


@dataclass(frozen=True, slots=True)
class BankMatch:
    """The best match of an image in one bank."""

    bank: Bank
    kind: str
    distance: int
    hash: str
    variant: str | None

    def label(self) -> Label:
        extra: dict[str, Any] = {"match": self.kind, "distance": self.distance, "hash": self.hash}
        if self.variant is not None:
            extra["variant"] = self.variant
        return Label(
            name=self.bank.name,
            parent=PARENT,
            confidence=confidence(self.distance),
            source=SOURCE,
            extra=extra,
        )


def best_match(bank: Bank, hashes: ImageHashes, radius: int | None) -> BankMatch | None:
    """The closest hash of ``bank`` to the image: an exact SHA-256 match first,
    else the nearest PDQ hash over the dihedral variants within ``radius``
    (None: PDQ not matched)."""
    digest = bytes.fromhex(hashes.sha256)
    if digest in bank.sha256:
        return BankMatch(bank, "sha256", 0, hashes.sha256, None)
    best: BankMatch | None = None
    if radius is None or radius < 0:
        return None
    for variant, query in zip(DIHEDRAL_VARIANTS, hashes.pdq, strict=True):
        found = bank.index.search(query, radius)
        if len(found.positions) and (best is None or found.distances.min() < best.distance):
            nearest = int(np.argmin(found.distances))
            row = bank.index.hashes[found.positions[nearest]]
            best = BankMatch(bank, "pdq", int(found.distances[nearest]), pdq_hex(row), variant)
    return best


class BankCache:
    """Loaded banks, reused while their files stay the same (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str | None], tuple[object, Bank]] = {}

    def load(self, source: BankSource) -> Bank:
        key = (str(source.path), source.name)
        signature = file_signature(source.path)
        with self._lock:
            cached = self._loaded.get(key)
            if cached is not None and cached[0] == signature:
                return cached[1]
            bank = load_bank(source.path, source.name)
            self._loaded[key] = (signature, bank)
            return bank

    def load_all(self, sources: tuple[BankSource, ...]) -> dict[str, tuple[BankSource, Bank]]:
        """Every bank by name; two of one name (or one named ``Known Image``) is an error."""
        banks: dict[str, tuple[BankSource, Bank]] = {}
        for source in sources:
            bank = self.load(source)
            if bank.name.strip().casefold() == PARENT.casefold():
                raise BankError(f"a bank cannot be named {PARENT!r}", path=source.path)
            if bank.name in banks:
                raise BankError(
                    f"two banks are named {bank.name!r}: {banks[bank.name][0].written} and "
                    f"{source.written} (give one a `name:`)"
                )
            banks[bank.name] = (source, bank)
        return banks
