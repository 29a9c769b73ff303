"""Offline parsing of DetectModerationLabels and DetectCustomLabels responses."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from policy_engine.errors import InvalidDetectorResult
from policy_engine_rekognition.custom_labels import CustomLabelsDetector
from policy_engine_rekognition.moderation import ModerationDetector

# AWS's example response from `aws rekognition detect-moderation-labels` (cli-docs).
AWS_EXAMPLE: dict[str, Any] = {
    "ModerationModelVersion": "3.0",
    "ModerationLabels": [
        {"Confidence": 97.29618072509766, "ParentName": "Violence", "Name": "Weapon Violence"},
        {"Confidence": 97.29618072509766, "ParentName": "", "Name": "Violence"},
    ],
}

V7_RESPONSE: dict[str, Any] = {
    "ModerationModelVersion": "7.0",
    "ModerationLabels": [
        {
            "Confidence": 91.5,
            "Name": "Exposed Male Nipple",
            "ParentName": "Non-Explicit Nudity",
            "TaxonomyLevel": 3,
        },
        {
            "Confidence": 91.5,
            "Name": "Non-Explicit Nudity",
            "ParentName": "Non-Explicit Nudity of Intimate parts and Kissing",
            "TaxonomyLevel": 2,
        },
        {
            "Confidence": 91.5,
            "Name": "Non-Explicit Nudity of Intimate parts and Kissing",
            "ParentName": "",
            "TaxonomyLevel": 1,
        },
    ],
    "ContentTypes": [{"Name": "Illustrated", "Confidence": 88.25}],
    "ProjectVersion": "arn:aws:rekognition:us-east-1:123456789012:project/mod/version/mod.1/1",
    "HumanLoopActivationOutput": {
        "HumanLoopArn": "arn:aws:sagemaker:us-east-1:123456789012:human-loop/review-1",
        "HumanLoopActivationReasons": ["ConditionsEvaluation"],
        "HumanLoopActivationConditionsEvaluationResults": '{"Conditions": []}',
    },
}

CUSTOM_LABELS_RESPONSE: dict[str, Any] = {
    "CustomLabels": [
        {
            "Name": "MyLogo",
            "Confidence": 77.7729721069336,
            "Geometry": {
                "BoundingBox": {"Width": 0.19, "Height": 0.31, "Left": 0.07, "Top": 0.40},
                "Polygon": [{"X": 0.07, "Y": 0.40}, {"X": 0.26, "Y": 0.40}, {"X": 0.26, "Y": 0.71}],
            },
        },
        {"Name": "Counterfeit", "Confidence": 55.0},
    ]
}

moderation = ModerationDetector()
custom_labels = CustomLabelsDetector()


def test_aws_example_response_parses_to_its_two_labels_under_model_3() -> None:
    result = moderation.parse(AWS_EXAMPLE)

    assert result.source == "rekognition-moderation"
    assert [(label.name, label.parent, label.confidence) for label in result.labels] == [
        ("Weapon Violence", "Violence", 97.29618072509766),
        ("Violence", "", 97.29618072509766),
    ]
    assert {label.source for label in result.labels} == {"rekognition-moderation"}
    assert {label.model_version for label in result.labels} == {"3.0"}
    assert dict(result.metadata) == {"model_version": "3.0"}
    assert result.raw is AWS_EXAMPLE
    taxonomy = moderation.taxonomy(result.labels[0].model_version)
    assert taxonomy is not None and taxonomy.id == "rekognition-moderation/v6"


def test_v7_response_keeps_levels_content_types_adapter_and_human_loop() -> None:
    result = moderation.parse(V7_RESPONSE)

    assert [label.extra["taxonomy_level"] for label in result.labels] == [3, 2, 1]
    assert result.labels[0].parent == "Non-Explicit Nudity"
    assert result.labels[0].to_dict()["taxonomy_level"] == 3
    assert dict(result.metadata) == {
        "model_version": "7.0",
        "content_types": [{"Name": "Illustrated", "Confidence": 88.25}],
        "adapter": V7_RESPONSE["ProjectVersion"],
        "human_loop": V7_RESPONSE["HumanLoopActivationOutput"],
    }
    taxonomy = moderation.taxonomy(result.labels[0].model_version)
    assert taxonomy is not None and taxonomy.id == "rekognition-moderation/v7"


def test_content_types_are_what_a_policy_set_s_content_type_condition_reads() -> None:
    from policy_engine.policy_set import content_types_of

    result = moderation.parse(V7_RESPONSE)
    metadata = {result.source: result.metadata}
    assert content_types_of(metadata, 88.25) == (frozenset({"illustrated"}), False)
    assert content_types_of(metadata, 88.26) == (frozenset(), False)


def test_metadata_is_a_copy_not_a_view_of_the_response() -> None:
    response = copy.deepcopy(V7_RESPONSE)
    result = moderation.parse(response)
    response["ContentTypes"][0]["Name"] = "changed"
    assert result.metadata["content_types"][0]["Name"] == "Illustrated"


def test_label_without_parent_name_or_level_gets_empty_parent_and_no_level() -> None:
    result = moderation.parse({"ModerationLabels": [{"Name": "Violence", "Confidence": 60}]})
    (label,) = result.labels
    assert label.parent == ""
    assert "taxonomy_level" not in label.extra
    assert label.model_version is None
    assert dict(result.metadata) == {}


def test_empty_label_list_is_a_valid_result_with_no_labels() -> None:
    assert moderation.parse({"ModerationLabels": [], "ModerationModelVersion": "7.0"}).labels == ()


def test_custom_labels_response_carries_geometry_and_has_no_parents_or_metadata() -> None:
    result = custom_labels.parse(CUSTOM_LABELS_RESPONSE)

    assert result.source == "rekognition-custom-labels"
    assert [(label.name, label.parent, label.confidence) for label in result.labels] == [
        ("MyLogo", "", 77.7729721069336),
        ("Counterfeit", "", 55.0),
    ]
    assert (
        result.labels[0].to_dict()["geometry"]
        == CUSTOM_LABELS_RESPONSE["CustomLabels"][0]["Geometry"]
    )
    assert "geometry" not in result.labels[1].extra
    assert dict(result.metadata) == {}
    assert custom_labels.taxonomy(None) is None
    assert custom_labels.taxonomies() == ()


def test_each_detector_recognises_only_its_own_responses() -> None:
    assert moderation.recognizes(AWS_EXAMPLE)
    assert not moderation.recognizes(CUSTOM_LABELS_RESPONSE)
    assert custom_labels.recognizes(CUSTOM_LABELS_RESPONSE)
    assert not custom_labels.recognizes(AWS_EXAMPLE)
    assert not moderation.recognizes({"Labels": []})


def _moderation_with(entry: object) -> dict[str, Any]:
    # The bad entry sits third, so the field must name index 2, not the first entry.
    good = {"Name": "Violence", "ParentName": "", "Confidence": 80.0}
    return {"ModerationModelVersion": "7.0", "ModerationLabels": [good, good, entry]}


INVALID_CONFIDENCES = [
    pytest.param("97.3", id="string"),
    pytest.param(True, id="bool"),
    pytest.param(None, id="null"),
    pytest.param(math.nan, id="nan"),
    pytest.param(math.inf, id="inf"),
    pytest.param(-math.inf, id="-inf"),
    pytest.param(-1, id="minus-one"),
    pytest.param(100.0001, id="above-100"),
    pytest.param([90], id="list"),
]


@pytest.mark.parametrize("confidence", INVALID_CONFIDENCES)
def test_invalid_moderation_confidence_invalidates_the_result(confidence: object) -> None:
    entry = {"Name": "Weapon Violence", "ParentName": "Violence", "Confidence": confidence}
    with pytest.raises(InvalidDetectorResult) as raised:
        moderation.parse(_moderation_with(entry))
    assert raised.value.field == "ModerationLabels[2].Confidence"
    assert "ModerationLabels[2].Confidence" in str(raised.value)


def test_missing_moderation_confidence_invalidates_the_result() -> None:
    with pytest.raises(InvalidDetectorResult) as raised:
        moderation.parse(_moderation_with({"Name": "Weapon Violence", "ParentName": "Violence"}))
    assert raised.value.field == "ModerationLabels[2].Confidence"
    assert "missing" in str(raised.value)


@pytest.mark.parametrize("confidence", INVALID_CONFIDENCES)
def test_invalid_custom_label_confidence_invalidates_the_result(confidence: object) -> None:
    response = {
        "CustomLabels": [
            {"Name": "MyLogo", "Confidence": 90},
            {"Name": "X", "Confidence": confidence},
        ]
    }
    with pytest.raises(InvalidDetectorResult) as raised:
        custom_labels.parse(response)
    assert raised.value.field == "CustomLabels[1].Confidence"


def test_missing_custom_label_confidence_invalidates_the_result() -> None:
    with pytest.raises(InvalidDetectorResult) as raised:
        custom_labels.parse({"CustomLabels": [{"Name": "MyLogo"}]})
    assert raised.value.field == "CustomLabels[0].Confidence"


@pytest.mark.parametrize("confidence", [0, 0.0, 100, 100.0, 50])
def test_boundary_confidences_are_valid(confidence: float) -> None:
    (label,) = moderation.parse(
        {"ModerationLabels": [{"Name": "Violence", "Confidence": confidence}]}
    ).labels
    assert label.confidence == confidence


MALFORMED_MODERATION = [
    pytest.param(
        {"ModerationLabels": {"Name": "Violence"}}, "ModerationLabels", id="labels-not-a-list"
    ),
    pytest.param({"ModerationLabels": "Violence"}, "ModerationLabels", id="labels-a-string"),
    pytest.param({"ModerationLabels": None}, "ModerationLabels", id="labels-null"),
    pytest.param({"ModerationModelVersion": "7.0"}, "ModerationLabels", id="labels-missing"),
    pytest.param(_moderation_with("Violence"), "ModerationLabels[2]", id="entry-not-an-object"),
    pytest.param(
        _moderation_with({"Confidence": 90}), "ModerationLabels[2].Name", id="name-missing"
    ),
    pytest.param(
        _moderation_with({"Name": 7, "Confidence": 90}),
        "ModerationLabels[2].Name",
        id="name-not-a-string",
    ),
    pytest.param(
        _moderation_with({"Name": "  ", "Confidence": 90}),
        "ModerationLabels[2].Name",
        id="name-blank",
    ),
    pytest.param(
        _moderation_with({"Name": "Violence", "Confidence": 90, "ParentName": 3}),
        "ModerationLabels[2].ParentName",
        id="parent-not-a-string",
    ),
    pytest.param(
        _moderation_with({"Name": "Violence", "Confidence": 90, "TaxonomyLevel": "1"}),
        "ModerationLabels[2].TaxonomyLevel",
        id="level-a-string",
    ),
    pytest.param(
        _moderation_with({"Name": "Violence", "Confidence": 90, "TaxonomyLevel": True}),
        "ModerationLabels[2].TaxonomyLevel",
        id="level-a-bool",
    ),
    pytest.param(
        {"ModerationLabels": [], "ModerationModelVersion": 7.0},
        "ModerationModelVersion",
        id="model-version-a-number",
    ),
]


@pytest.mark.parametrize(("response", "field"), MALFORMED_MODERATION)
def test_malformed_moderation_response_names_the_bad_field(response: Any, field: str) -> None:
    with pytest.raises(InvalidDetectorResult) as raised:
        moderation.parse(response)
    assert raised.value.field == field


MALFORMED_CUSTOM_LABELS = [
    pytest.param({"CustomLabels": {}}, "CustomLabels", id="labels-not-a-list"),
    pytest.param({"CustomLabels": [42]}, "CustomLabels[0]", id="entry-not-an-object"),
    pytest.param({"CustomLabels": [{"Confidence": 90}]}, "CustomLabels[0].Name", id="name-missing"),
    pytest.param(
        {"CustomLabels": [{"Name": "MyLogo", "Confidence": 90, "Geometry": [1, 2]}]},
        "CustomLabels[0].Geometry",
        id="geometry-not-an-object",
    ),
]


@pytest.mark.parametrize(("response", "field"), MALFORMED_CUSTOM_LABELS)
def test_malformed_custom_labels_response_names_the_bad_field(response: Any, field: str) -> None:
    with pytest.raises(InvalidDetectorResult) as raised:
        custom_labels.parse(response)
    assert raised.value.field == field


def test_a_response_that_is_not_an_object_is_invalid() -> None:
    with pytest.raises(InvalidDetectorResult):
        moderation.parse(["ModerationLabels"])  # type: ignore[arg-type]
