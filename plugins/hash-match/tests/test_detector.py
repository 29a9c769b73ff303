from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hash_match_helpers import encoded, picture
from PIL import Image as PILImage

from policy_engine import DetectContext, DetectorError, DetectorResult, Image
from policy_engine_hash_match.detector import HashMatchDetector
from policy_engine_hash_match.errors import BankError
from policy_engine_hash_match.hashing import hash_image

ROTATED = PILImage.Transpose.ROTATE_90


def context(base: Path, min_confidence: float = 50, **settings: Any) -> DetectContext:
    def no_parse(raw: Mapping[str, Any]) -> DetectorResult:
        raise AssertionError("hash-match never replays")

    return DetectContext(settings, min_confidence, str(base), no_parse)


def bank_of(path: Path, *images: PILImage.Image, exact: bool = True, pdq: bool = True) -> Path:
    lines = []
    for image in images:
        hashes = hash_image(encoded(image))
        if exact:
            lines.append(f"sha256 {hashes.sha256}")
        if pdq:
            lines.append(f"pdq {bytes(hashes.pdq[0]).hex()}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def detect(base: Path, image: PILImage.Image | bytes, **settings: Any) -> DetectorResult:
    data = image if isinstance(image, bytes) else encoded(image)
    return HashMatchDetector().detect(Image("upload.png", data), context(base, **settings))


def test_one_label_per_matching_bank_named_after_it(tmp_path: Path) -> None:
    bank_of(tmp_path / "removed.txt", picture(1))
    bank_of(tmp_path / "shared.txt", picture(1), picture(2))
    bank_of(tmp_path / "other.txt", picture(3))
    result = detect(tmp_path, picture(1), banks=["removed.txt", "shared.txt", "other.txt"])
    assert [(x.name, x.parent, x.confidence, x.source) for x in result.labels] == [
        ("removed", "Known Image", 100.0, "hash-match"),
        ("shared", "Known Image", 100.0, "hash-match"),
    ]
    assert result.labels[0].extra["match"] == "sha256"  # the exact copy


def test_a_rotated_copy_matches_through_pdq_with_confidence_100_minus_distance(
    tmp_path: Path,
) -> None:
    bank_of(tmp_path / "removed.txt", picture(1), exact=False)
    result = detect(tmp_path, picture(1).transpose(ROTATED), banks=["removed.txt"])
    (label,) = result.labels
    assert label.extra["match"] == "pdq" and label.extra["variant"] != "original"
    assert label.confidence == 100 - label.extra["distance"]
    assert detect(tmp_path, picture(2), banks=["removed.txt"]).labels == ()


def test_a_re_encoded_copy_matches_at_its_distance_within_max_distance(tmp_path: Path) -> None:
    bank_of(tmp_path / "removed.txt", picture(1), exact=False)
    jpeg = encoded(picture(1), "JPEG")
    (label,) = detect(tmp_path, jpeg, banks=["removed.txt"]).labels
    distance = label.extra["distance"]
    assert 0 < distance <= 31 and label.confidence == 100 - distance
    narrow = detect(tmp_path, jpeg, banks=["removed.txt"], max_distance=distance - 1)
    assert narrow.labels == ()
    # the policy's floor narrows the search too: confidence 100 - d below it is never reported
    assert detect(tmp_path, jpeg, banks=["removed.txt"], min_confidence=101 - distance).labels == ()


def test_below_the_quality_floor_only_exact_copies_match_and_the_record_says_so(
    tmp_path: Path,
) -> None:
    flat = PILImage.new("RGB", (64, 64), "grey")
    bank_of(tmp_path / "flat.txt", flat)
    exact = detect(tmp_path, flat, banks=["flat.txt"])
    assert [label.extra["match"] for label in exact.labels] == ["sha256"]
    assert (
        exact.metadata["pdq_matched"] is False
        and "below the floor" in exact.metadata["pdq_skipped"]
    )
    bank_of(tmp_path / "flat-pdq.txt", flat, exact=False)
    assert detect(tmp_path, flat, banks=["flat-pdq.txt"]).labels == ()
    # with the floor at 0, the same image is PDQ-matched
    assert len(detect(tmp_path, flat, banks=["flat-pdq.txt"], quality_floor=0).labels) == 1


def test_the_metadata_names_each_bank_its_digest_and_size(tmp_path: Path) -> None:
    bank_of(tmp_path / "removed.txt", picture(1), picture(2))
    result = detect(tmp_path, picture(3), banks=[{"path": "removed.txt", "name": "Removed"}])
    (bank,) = result.metadata["banks"]
    assert bank["name"] == "Removed" and bank["path"] == "removed.txt"
    assert (bank["pdq"], bank["sha256"]) == (2, 2)
    assert result.metadata["model_version"] == f"Removed@{bank['digest'][:12]}"
    assert result.metadata["pdq_quality"] >= 50 and result.metadata["max_distance"] == 31


def test_a_bank_that_fails_to_load_fails_the_detector_and_its_preflight(tmp_path: Path) -> None:
    (tmp_path / "removed.txt").write_text("not-a-hash\n", encoding="utf-8")
    with pytest.raises(BankError, match=r"removed.txt:1: not a pdq hash"):
        detect(tmp_path, picture(1), banks=["removed.txt"])
    with pytest.raises(BankError, match="no such bank"):
        HashMatchDetector().preflight(context(tmp_path, banks=["missing.txt"]))


def test_two_banks_of_one_name_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    bank_of(tmp_path / "removed.txt", picture(1))
    bank_of(tmp_path / "a" / "removed.txt", picture(2))
    with pytest.raises(BankError, match="two banks are named 'removed'"):
        detect(tmp_path, picture(1), banks=["removed.txt", "a/removed.txt"])
    with pytest.raises(BankError, match="cannot be named 'Known Image'"):
        detect(tmp_path, picture(1), banks=[{"path": "removed.txt", "name": "known image"}])


def test_an_image_that_does_not_decode_or_has_no_bytes_is_a_detector_error(
    tmp_path: Path,
) -> None:
    bank_of(tmp_path / "removed.txt", picture(1))
    with pytest.raises(DetectorError, match="cannot decode") as info:
        detect(tmp_path, b"GIF89a truncated", banks=["removed.txt"])
    assert info.value.code == "undecodable-image"
    with pytest.raises(DetectorError) as uri_only:
        HashMatchDetector().detect(
            Image("s3://b/k", uri="s3://b/k"), context(tmp_path, banks=["removed.txt"])
        )
    assert uri_only.value.code == "no-image-bytes"


def test_a_bank_is_reloaded_when_its_file_changes(tmp_path: Path) -> None:
    detector = HashMatchDetector()
    path = bank_of(tmp_path / "removed.txt", picture(1))
    settings = context(tmp_path, banks=["removed.txt"])
    image = Image("upload.png", encoded(picture(2)))
    assert detector.detect(image, settings).labels == ()
    path.write_text(
        path.read_text() + "# grew\n" + bank_of(tmp_path / "x.txt", picture(2)).read_text()
    )
    assert [label.name for label in detector.detect(image, settings).labels] == ["removed"]


def test_the_taxonomy_knows_known_image_only() -> None:
    (taxonomy,) = HashMatchDetector().taxonomies()
    assert list(taxonomy.keys()) == ["known image"]
    assert HashMatchDetector().taxonomy(None) is taxonomy
