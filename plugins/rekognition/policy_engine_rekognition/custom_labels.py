"""The ``rekognition-custom-labels`` detector: Amazon Rekognition DetectCustomLabels."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from policy_engine import DetectContext, DetectorError, DetectorResult, Label, Taxonomy
from policy_engine.json_types import plain
from policy_engine_rekognition.client import (
    ClientSettings,
    settings_schema,
)
from policy_engine_rekognition.convert import CONVERT_SETTING
from policy_engine_rekognition.detector_base import RekognitionDetector
from policy_engine_rekognition.images import CUSTOM_LABELS_LIMITS, ImageLimits
from policy_engine_rekognition.response_fields import (
    optional_object,
    require_confidence,
    require_list,
    require_name,
    require_object,
)
from policy_engine_rekognition.s3_screen import SCREEN_S3_SETTING

OPERATION = "DetectCustomLabels"
MAX_IMAGE_BYTES = CUSTOM_LABELS_LIMITS.max_bytes
# The min_confidence setting that leaves each label's trained threshold in charge.
MODEL_THRESHOLDS = "model"

SETTINGS_SCHEMA: Mapping[str, Any] = settings_schema(
    {
        "project_version_arn": {
            "type": "string",
            "minLength": 20,
            "maxLength": 2048,
            "description": "ARN of the trained model version to call (ProjectVersionArn). "
            "The model must be running.",
        },
        "max_results": {
            "type": "integer",
            "minimum": 0,
            "description": "At most this many labels, highest confidence first (MaxResults). "
            "Unset: all of them.",
        },
        "min_confidence": {
            "oneOf": [
                {"type": "number", "minimum": 0, "maximum": 100},
                {"const": MODEL_THRESHOLDS},
            ],
            "description": "Lowest confidence to ask for (MinConfidence), 0 to 100; or "
            '"model" to omit MinConfidence so that each label\'s own trained threshold '
            "applies. Unset: the policy's min_confidence. Labels under the policy's "
            "min_confidence are dropped either way.",
        },
        **CONVERT_SETTING,
        **SCREEN_S3_SETTING,
    },
    required=("project_version_arn",),
)


@dataclass(frozen=True, slots=True)
class CustomLabelsSettings:
    client: ClientSettings
    project_version_arn: str
    max_results: int | None = None
    # None: the policy's floor; "model": the model's own thresholds.
    min_confidence: float | Literal["model"] | None = None
    convert: bool = False
    screen_s3: bool = True

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, concurrency: int = 1
    ) -> CustomLabelsSettings:
        arn = settings.get("project_version_arn")
        if not isinstance(arn, str) or not arn:
            # The engine validates settings against the schema; this guards direct use.
            raise DetectorError(
                "rekognition-custom-labels needs `project_version_arn` in its settings "
                "(the ARN of the model version to call)",
                code="invalid-settings",
            )
        return cls(
            client=ClientSettings.from_settings(settings, concurrency=concurrency),
            project_version_arn=arn,
            max_results=settings.get("max_results"),
            min_confidence=settings.get("min_confidence"),
            convert=settings.get("convert") is True,
            screen_s3=settings.get("screen_s3") is not False,
        )

    def request(self, image: Mapping[str, Any], policy_min_confidence: float) -> dict[str, Any]:
        """The request for ``image``, the request's ``Image`` (``Bytes`` or ``S3Object``)."""
        request: dict[str, Any] = {
            "ProjectVersionArn": self.project_version_arn,
            "Image": dict(image),
        }
        if self.max_results is not None:
            request["MaxResults"] = self.max_results
        if self.min_confidence is None:
            request["MinConfidence"] = float(policy_min_confidence)
        elif self.min_confidence != MODEL_THRESHOLDS:
            request["MinConfidence"] = float(self.min_confidence)
        return request


class CustomLabelsDetector(RekognitionDetector):
    """Labels from an Amazon Rekognition Custom Labels model of your own.

    Custom labels have no parents and no taxonomy: place them under categories
    of your own with the policy's ``labels:`` section. ``client_factory`` is
    as for :class:`~policy_engine_rekognition.detector_base.RekognitionDetector`.
    """

    name: ClassVar[str] = "rekognition-custom-labels"
    settings_schema: ClassVar[Mapping[str, Any]] = SETTINGS_SCHEMA
    operation: ClassVar[str] = OPERATION
    limits: ClassVar[ImageLimits] = CUSTOM_LABELS_LIMITS

    def taxonomies(self) -> tuple[Taxonomy, ...]:
        return ()

    def taxonomy(self, model_version: str | None) -> Taxonomy | None:
        return None

    def recognizes(self, raw: Mapping[str, Any]) -> bool:
        return isinstance(raw, Mapping) and "CustomLabels" in raw

    def parse(self, raw: Mapping[str, Any]) -> DetectorResult:
        """Labels from a DetectCustomLabels response. The response does not say
        which model made it, so the metadata of an offline parse is empty."""
        response = require_object(raw, "response")
        entries = require_list(response, "CustomLabels", "CustomLabels")
        labels = tuple(
            self._label(entry, f"CustomLabels[{index}]") for index, entry in enumerate(entries)
        )
        return DetectorResult(source=self.name, labels=labels, raw=raw)

    def _label(self, entry: object, field: str) -> Label:
        item = require_object(entry, field)
        name = require_name(item, f"{field}.Name")
        confidence = require_confidence(item, f"{field}.Confidence")
        geometry = optional_object(item, "Geometry", f"{field}.Geometry")
        return Label(
            name=name,
            confidence=confidence,
            source=self.name,
            extra={} if geometry is None else {"geometry": plain(geometry)},
        )

    def from_stored(self, raw: Mapping[str, Any], context: DetectContext) -> DetectorResult:
        # The response does not name its model; the settings that asked for it do.
        arn = context.settings.get("project_version_arn")
        return dataclasses.replace(self.parse(raw), metadata={"project_version_arn": arn})

    def call_settings(self, context: DetectContext) -> CustomLabelsSettings:
        return CustomLabelsSettings.from_settings(context.settings, concurrency=context.concurrency)
