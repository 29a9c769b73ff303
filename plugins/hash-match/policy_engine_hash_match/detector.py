"""The ``hash-match`` detector: an image's SHA-256 and PDQ hashes against banks."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from policy_engine import DetectContext, Detector, DetectorError, DetectorResult, Image
from policy_engine.taxonomy import Taxonomy, TaxonomyEntry
from policy_engine_hash_match.settings import PARENT, SETTINGS_SCHEMA, SOURCE, HashMatchSettings

if TYPE_CHECKING:
    from policy_engine_hash_match.matching import BankCache

TAXONOMY = Taxonomy(id=f"{SOURCE}/1", entries=(TaxonomyEntry(PARENT),))
"""Only the parent: bank names are the policy's own (its ``detectors:``
settings), so a rule naming one bank declares it under ``labels:``."""


class HashMatchDetector(Detector):
    """Reports one ``Known Image`` label per bank that holds the image."""

    name: ClassVar[str] = SOURCE
    remote: ClassVar[bool] = False
    settings_schema: ClassVar[Mapping[str, Any]] = SETTINGS_SCHEMA

    @cached_property
    def banks(self) -> BankCache:
        """The banks loaded so far (numpy and Pillow are imported here, on first use)."""
        from policy_engine_hash_match.matching import BankCache

        return BankCache()

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
        from policy_engine_hash_match.bank import described
        from policy_engine_hash_match.hashing import hash_image, pdq_hex
        from policy_engine_hash_match.matching import best_match

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
