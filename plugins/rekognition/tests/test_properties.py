"""Property tests: any valid response parses back to what was serialised, and
any bad confidence anywhere invalidates the whole result."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from policy_engine.errors import InvalidDetectorResult
from policy_engine.labels import check_confidence
from policy_engine_rekognition.custom_labels import CustomLabelsDetector
from policy_engine_rekognition.moderation import ModerationDetector

names = st.text(min_size=1, max_size=40).filter(lambda name: name.strip() != "")
parents = st.one_of(st.just(""), names)
confidences = st.floats(min_value=0, max_value=100, allow_nan=False, allow_infinity=False)
levels = st.one_of(st.none(), st.integers(min_value=1, max_value=3))
model_versions = st.one_of(st.none(), st.sampled_from(["3.0", "6.1", "7.0", "8.0"]))

moderation_labels = st.lists(
    st.fixed_dictionaries(
        {"Name": names, "ParentName": parents, "Confidence": confidences},
        optional={"TaxonomyLevel": st.integers(min_value=1, max_value=3)},
    ),
    max_size=12,
)
bad_confidences = st.one_of(
    st.just(math.nan),
    st.just(math.inf),
    st.just(-math.inf),
    st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False),
    st.floats(min_value=100.000001, allow_nan=False, allow_infinity=False),
    st.text(),
    st.booleans(),
    st.none(),
)


def _moderation_response(
    entries: list[dict[str, Any]], model_version: str | None
) -> dict[str, Any]:
    response: dict[str, Any] = {"ModerationLabels": entries}
    if model_version is not None:
        response["ModerationModelVersion"] = model_version
    return response


@given(moderation_labels, model_versions, st.booleans())
def test_valid_moderation_labels_parse_back_unchanged(
    entries: list[dict[str, Any]], model_version: str | None, through_json: bool
) -> None:
    response = _moderation_response(entries, model_version)
    if through_json:  # as a recording on disk would
        response = json.loads(json.dumps(response))

    result = ModerationDetector().parse(response)

    assert [(label.name, label.parent, label.confidence) for label in result.labels] == [
        (entry["Name"], entry["ParentName"], entry["Confidence"]) for entry in entries
    ]
    assert [label.extra.get("taxonomy_level") for label in result.labels] == [
        entry.get("TaxonomyLevel") for entry in entries
    ]
    assert all(label.model_version == model_version for label in result.labels)
    assert all(label.source == "rekognition-moderation" for label in result.labels)


@given(st.lists(st.fixed_dictionaries({"Name": names, "Confidence": confidences}), max_size=12))
def test_valid_custom_labels_parse_back_unchanged(entries: list[dict[str, Any]]) -> None:
    result = CustomLabelsDetector().parse({"CustomLabels": entries})
    assert [(label.name, label.parent, label.confidence) for label in result.labels] == [
        (entry["Name"], "", entry["Confidence"]) for entry in entries
    ]


@given(moderation_labels.filter(bool), st.data(), bad_confidences)
def test_one_bad_confidence_anywhere_invalidates_the_result(
    entries: list[dict[str, Any]], data: st.DataObject, bad: object
) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(entries) - 1), label="index")
    entries[index] = {**entries[index], "Confidence": bad}
    try:
        ModerationDetector().parse({"ModerationLabels": entries})
    except InvalidDetectorResult as error:
        assert error.field == f"ModerationLabels[{index}].Confidence"
    else:
        raise AssertionError(f"confidence {bad!r} was accepted")


@given(st.one_of(confidences, bad_confidences))
def test_parse_accepts_exactly_what_check_confidence_accepts(value: object) -> None:
    try:
        expected: float | None = check_confidence(value)
    except InvalidDetectorResult:
        expected = None
    try:
        (label,) = (
            ModerationDetector()
            .parse({"ModerationLabels": [{"Name": "Violence", "Confidence": value}]})
            .labels
        )
        parsed: float | None = label.confidence
    except InvalidDetectorResult:
        parsed = None
    assert parsed == expected
