"""The ``hash-match`` detector: an image's SHA-256 and PDQ hashes against banks."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from policy_engine import DetectContext, Detector, DetectorError, DetectorResult, Image, Label
from policy_engine.taxonomy import Taxonomy, TaxonomyEntry
from policy_engine_hash_match.bank import Bank, described, file_signature, load_bank
from policy_engine_hash_match.errors import BankError
from policy_engine_hash_match.hashing import DIHEDRAL_VARIANTS, ImageHashes, hash_image, pdq_hex
from policy_engine_hash_match.settings import (
    PARENT,
    SETTINGS_SCHEMA,
    SOURCE,
    BankSource,
    HashMatchSettings,
    confidence,
)

TAXONOMY = Taxonomy(id=f"{SOURCE}/1", entries=(TaxonomyEntry(PARENT),))
"""Only the parent: bank names are the policy's own (its ``detectors:``
settings), so a rule naming one bank declares it under ``labels:``."""


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


class HashMatchDetector(Detector):
    """Reports one ``Known Image`` label per bank that holds the image."""

    name: ClassVar[str] = SOURCE
    remote: ClassVar[bool] = False
    settings_schema: ClassVar[Mapping[str, Any]] = SETTINGS_SCHEMA

    def __init__(self) -> None:
        self.banks = BankCache()

    def taxonomies(self) -> tuple[Taxonomy, ...]:
        return (TAXONOMY,)

    def taxonomy(self, model_version: str | None) -> Taxonomy | None:
        return TAXONOMY

    def preflight(self, context: DetectContext) -> None:
        settings = HashMatchSettings.from_mapping(context.settings, base_dir=context.base_dir)
        self.banks.load_all(settings.banks)

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        settings = HashMatchSettings.from_mapping(context.settings, base_dir=context.base_dir)
        banks = self.banks.load_all(settings.banks)
        if image.data is None:
            raise DetectorError(
                f"{image.name}: hash-match needs the image's bytes (it does not read URIs)",
                code="no-image-bytes",
                sent=False,
            )
        hashes = hash_image(image.data, name=image.name)
        pdq_matched = hashes.quality >= settings.quality_floor
        radius = settings.radius(context.min_confidence) if pdq_matched else None
        matches = [best_match(bank, hashes, radius) for _, bank in banks.values()]
        metadata: dict[str, Any] = {
            "model_version": described({name: bank for name, (_, bank) in banks.items()}),
            "banks": [bank.metadata(source.written) for source, bank in banks.values()],
            "pdq": pdq_hex(hashes.pdq[0]),
            "pdq_quality": hashes.quality,
            "quality_floor": settings.quality_floor,
            "pdq_matched": pdq_matched,
            "max_distance": radius,
        }
        if not pdq_matched:
            metadata["pdq_skipped"] = (
                f"PDQ quality {hashes.quality} is below the floor {settings.quality_floor}: "
                "only exact (SHA-256) copies can match"
            )
        labels = tuple(match.label() for match in matches if match is not None)
        return DetectorResult(source=SOURCE, labels=labels, metadata=metadata, raw=None)
