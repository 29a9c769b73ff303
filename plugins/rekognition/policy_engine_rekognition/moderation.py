"""The ``rekognition-moderation`` detector: Amazon Rekognition DetectModerationLabels."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from policy_engine import DetectContext, DetectorResult, Label, Taxonomy
from policy_engine.json_types import plain
from policy_engine_rekognition.client import (
    ClientSettings,
    settings_schema,
)
from policy_engine_rekognition.convert import CONVERT_SETTING
from policy_engine_rekognition.detector_base import RekognitionDetector
from policy_engine_rekognition.images import MODERATION_LIMITS, ImageLimits
from policy_engine_rekognition.response_fields import (
    optional_positive_int,
    optional_string,
    require_confidence,
    require_list,
    require_name,
    require_object,
)
from policy_engine_rekognition.s3_screen import SCREEN_S3_SETTING
from policy_engine_rekognition.taxonomies import (
    V6_ID,
    V7_ID,
    moderation_taxonomies,
    moderation_taxonomy,
    v6_to_v7_names,
)

OPERATION = "DetectModerationLabels"
MAX_IMAGE_BYTES = MODERATION_LIMITS.max_bytes
ADAPTER_NOT_USED = (
    "the adapter in adapter_arn was not used: the response names no ProjectVersion, so "
    "Rekognition answered with the base moderation model (the adapter has likely expired; "
    "check it with `aws rekognition describe-project-versions`)"
)

_HUMAN_LOOP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["HumanLoopName", "FlowDefinitionArn"],
    "description": "Sent as HumanLoopConfig, to start an Amazon Augmented AI human review "
    "when the flow's conditions hold. A2I is closed to new customers: route reviews "
    "through policy-engine instead where you can.",
    "properties": {
        "HumanLoopName": {
            "type": "string",
            "minLength": 1,
            "maxLength": 63,
            "pattern": "^[a-z0-9](-*[a-z0-9])*$",
            "description": "Name of the human loop, unique within the region.",
        },
        "FlowDefinitionArn": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "description": "ARN of the SageMaker flow definition the image is sent to.",
        },
        "DataAttributes": {
            "type": "object",
            "additionalProperties": False,
            "description": "Attributes of the input data.",
            "properties": {
                "ContentClassifiers": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": {
                        "enum": ["FreeOfPersonallyIdentifiableInformation", "FreeOfAdultContent"]
                    },
                    "description": "Declarations about the image required by some workforces.",
                }
            },
        },
    },
}

SETTINGS_SCHEMA: Mapping[str, Any] = settings_schema(
    {
        "adapter_arn": {
            "type": "string",
            "minLength": 20,
            "maxLength": 2048,
            "description": "ARN of a Custom Moderation adapter, sent as ProjectVersion. "
            "Unset: the base moderation model.",
        },
        "human_loop": _HUMAN_LOOP_SCHEMA,
        **CONVERT_SETTING,
        **SCREEN_S3_SETTING,
    }
)


@dataclass(frozen=True, slots=True)
class ModerationSettings:
    client: ClientSettings
    adapter_arn: str | None = None
    human_loop: Mapping[str, Any] | None = None
    convert: bool = False
    screen_s3: bool = True

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, concurrency: int = 1
    ) -> ModerationSettings:
        return cls(
            client=ClientSettings.from_settings(settings, concurrency=concurrency),
            adapter_arn=settings.get("adapter_arn"),
            human_loop=settings.get("human_loop"),
            convert=settings.get("convert") is True,
            screen_s3=settings.get("screen_s3") is not False,
        )

    def request(self, image: Mapping[str, Any], min_confidence: float) -> dict[str, Any]:
        """The request for ``image``, the request's ``Image`` (``Bytes`` or ``S3Object``)."""
        request: dict[str, Any] = {
            "Image": dict(image),
            "MinConfidence": float(min_confidence),
        }
        if self.adapter_arn is not None:
            request["ProjectVersion"] = self.adapter_arn
        if self.human_loop is not None:
            request["HumanLoopConfig"] = plain(self.human_loop)
        return request


class ModerationDetector(RekognitionDetector):
    """Unsafe-content labels from Amazon Rekognition's moderation model
    (``client_factory``: see
    :class:`~policy_engine_rekognition.detector_base.RekognitionDetector`)."""

    name: ClassVar[str] = "rekognition-moderation"
    settings_schema: ClassVar[Mapping[str, Any]] = SETTINGS_SCHEMA
    operation: ClassVar[str] = OPERATION
    limits: ClassVar[ImageLimits] = MODERATION_LIMITS

    def taxonomy_migration(
        self, old: Taxonomy, new: Taxonomy
    ) -> Mapping[str, tuple[str, ...]] | None:
        """Model 6 names to model 7 names, from AWS's migration table (both levels)."""
        if (old.id, new.id) != (V6_ID, V7_ID):
            return None
        return {
            name: tuple(new_names)
            for level in v6_to_v7_names().values()
            for name, new_names in level.items()
        }

    def taxonomies(self) -> tuple[Taxonomy, ...]:
        return moderation_taxonomies()

    def taxonomy(self, model_version: str | None) -> Taxonomy | None:
        """v7 for model 7.x, for no version, and for an unknown future major
        (8.0); v6 for older versions (3.0 to 6.1). See
        :func:`policy_engine_rekognition.taxonomies.moderation_taxonomy`."""
        return moderation_taxonomy(model_version)

    def recognizes(self, raw: Mapping[str, Any]) -> bool:
        return isinstance(raw, Mapping) and "ModerationLabels" in raw

    def parse(self, raw: Mapping[str, Any]) -> DetectorResult:
        response = require_object(raw, "response")
        model_version = optional_string(
            response, "ModerationModelVersion", "ModerationModelVersion"
        )
        entries = require_list(response, "ModerationLabels", "ModerationLabels")
        labels = tuple(
            self._label(entry, f"ModerationLabels[{index}]", model_version)
            for index, entry in enumerate(entries)
        )
        return DetectorResult(
            source=self.name, labels=labels, metadata=_metadata(response, model_version), raw=raw
        )

    def _label(self, entry: object, field: str, model_version: str | None) -> Label:
        item = require_object(entry, field)
        name = require_name(item, f"{field}.Name")
        confidence = require_confidence(item, f"{field}.Confidence")
        parent = optional_string(item, "ParentName", f"{field}.ParentName") or ""
        level = optional_positive_int(item, "TaxonomyLevel", f"{field}.TaxonomyLevel")
        return Label(
            name=name,
            confidence=confidence,
            source=self.name,
            parent=parent,
            model_version=model_version,
            extra={} if level is None else {"taxonomy_level": level},
        )

    def call_settings(self, context: DetectContext) -> ModerationSettings:
        return ModerationSettings.from_settings(context.settings, concurrency=context.concurrency)

    def from_stored(self, raw: Mapping[str, Any], context: DetectContext) -> DetectorResult:
        return self._with_settings(self.parse(raw), self.call_settings(context))

    @staticmethod
    def _with_settings(result: DetectorResult, settings: ModerationSettings) -> DetectorResult:
        """Adds what only the settings tell: an adapter was asked for but the
        response names none (it fell back to the base model)."""
        if settings.adapter_arn is None or result.metadata.get("adapter") is not None:
            return result
        fallback = {"adapter": None, "adapter_requested": settings.adapter_arn}
        return dataclasses.replace(
            result, metadata={**result.metadata, **fallback, "warning": ADAPTER_NOT_USED}
        )


def _metadata(response: Mapping[str, Any], model_version: str | None) -> dict[str, Any]:
    """What the decision record keeps about the call; copied, so that the
    result does not share mutable state with the raw response."""
    metadata: dict[str, Any] = {}
    if model_version is not None:
        metadata["model_version"] = model_version
    for key, meta_key in (
        ("ContentTypes", "content_types"),
        ("ProjectVersion", "adapter"),
        ("HumanLoopActivationOutput", "human_loop"),
    ):
        if response.get(key) is not None:
            metadata[meta_key] = plain(response[key])
    return metadata
