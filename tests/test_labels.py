"""Label normalisation and confidence validation (POLICY_SPEC 1)."""

from __future__ import annotations

import copy
import math
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy_engine import InvalidDetectorResult, Label, check_confidence
from policy_engine.errors import DetectorError

INVALID_CONFIDENCES = [
    None,
    "90",
    "",
    True,
    False,
    math.nan,
    math.inf,
    -math.inf,
    -0.01,
    100.01,
    -1,
    101,
    [90],
    {"value": 90},
]


@pytest.mark.parametrize("value", INVALID_CONFIDENCES, ids=repr)
def test_check_confidence_rejects_anything_but_a_finite_number_in_range(value: object) -> None:
    with pytest.raises(InvalidDetectorResult):
        check_confidence(value)


@pytest.mark.parametrize("value", INVALID_CONFIDENCES, ids=repr)
def test_label_with_invalid_confidence_is_a_detector_error(value: object) -> None:
    with pytest.raises(DetectorError) as info:
        Label("Weapons", value, "stub")  # type: ignore[arg-type]
    assert isinstance(info.value, InvalidDetectorResult)
    assert info.value.code == "invalid-result"


def test_label_without_confidence_cannot_be_built() -> None:
    with pytest.raises(TypeError):
        Label(name="Weapons", source="stub")  # type: ignore[call-arg]


@pytest.mark.parametrize("value", [0, 0.0, 100, 100.0, 50, 99.99999, 1e-300])
def test_bounds_and_inner_values_are_valid_confidences(value: float) -> None:
    assert check_confidence(value) == float(value)
    assert Label("Weapons", value, "stub").confidence == float(value)


def test_confidence_is_stored_as_float() -> None:
    label = Label("Weapons", 90, "stub")
    assert isinstance(label.confidence, float)


def test_check_confidence_error_names_the_field() -> None:
    with pytest.raises(InvalidDetectorResult) as info:
        check_confidence(math.nan, field="ModerationLabels[2].Confidence")
    assert info.value.field == "ModerationLabels[2].Confidence"
    assert "ModerationLabels[2].Confidence" in str(info.value)


@pytest.mark.parametrize("name", ["", "   ", "\t"])
def test_label_needs_a_non_empty_name(name: str) -> None:
    with pytest.raises(InvalidDetectorResult):
        Label(name, 90, "stub")


def test_label_parent_must_be_a_string() -> None:
    with pytest.raises(InvalidDetectorResult):
        Label("Weapons", 90, "stub", parent=None)  # type: ignore[arg-type]


def test_label_parent_defaults_to_empty() -> None:
    assert Label("Weapons", 90, "stub").parent == ""


def test_extra_is_carried_into_the_record_and_frozen() -> None:
    extra = {"level": 2}
    label = Label("Weapons", 90, "stub", parent="Violence", model_version="7.0", extra=extra)
    extra["level"] = 3  # the caller's dict is copied
    record = label.to_dict()
    assert record == {
        "name": "Weapons",
        "parent": "Violence",
        "source": "stub",
        "confidence": 90.0,
        "model_version": "7.0",
        "level": 2,
    }
    with pytest.raises(TypeError):
        label.extra["level"] = 4  # type: ignore[index]


def test_labels_are_immutable() -> None:
    label = Label("Weapons", 90, "stub")
    with pytest.raises((AttributeError, TypeError)):
        label.confidence = 10  # type: ignore[misc]


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
EXTRAS = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        JSON_SCALARS,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=8,
    ),
    max_size=4,
)


@given(
    name=st.text(min_size=1, max_size=12).filter(str.strip),
    confidence=st.floats(min_value=0, max_value=100),
    parent=st.text(max_size=12),
    model_version=st.none() | st.sampled_from(["6.1", "7.0"]),
    extra=EXTRAS,
)
def test_labels_survive_pickle_and_deepcopy(
    name: str, confidence: float, parent: str, model_version: str | None, extra: dict[str, Any]
) -> None:
    """For multiprocessing and caches: a copy equals the label, extras included,
    and its extras are still read-only."""
    label = Label(name, confidence, "stub", parent=parent, model_version=model_version, extra=extra)
    for copied in (pickle.loads(pickle.dumps(label)), copy.deepcopy(label)):
        assert copied == label and copied.key == label.key
        assert copied.to_dict() == label.to_dict()
        with pytest.raises(TypeError):
            copied.extra["added"] = 1  # type: ignore[index]


@pytest.mark.parametrize("field", ["name", "parent", "source", "model_version"])
def test_a_lone_surrogate_makes_the_label_invalid(field: str) -> None:
    values: dict[str, Any] = {
        "name": "Violence",
        "confidence": 99.0,
        "source": "test",
        "parent": "",
        "model_version": "7.0",
    }
    values[field] = "Violence\ud800"
    with pytest.raises(InvalidDetectorResult, match="lone surrogate") as caught:
        Label(**values)
    assert caught.value.field == field
