"""Throwaway detectors and contexts, so these tests need neither the network
nor any other plugin."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from policy_engine.detectors import DetectContext, Detector, DetectorResult
from policy_engine.image import Image
from policy_engine.labels import Label
from policy_engine.plugins import DetectorRegistry, RegisteredDetector


class ListDetector(Detector):
    """Recognises ``{<key>: [{"name", "parent"?, "confidence"}...], "model"?: ...}``."""

    key: ClassVar[str] = ""

    def recognizes(self, raw: Mapping[str, Any]) -> bool:
        return self.key in raw

    def parse(self, raw: Mapping[str, Any]) -> DetectorResult:
        labels = tuple(
            Label(
                name=item["name"],
                parent=item.get("parent", ""),
                confidence=item["confidence"],
                source=self.name,
            )
            for item in raw[self.key]
        )
        metadata = {"model": raw.get("model")}
        if "content_types" in raw:  # as Rekognition's ContentTypes
            metadata["content_types"] = raw["content_types"]
        return DetectorResult(source=self.name, labels=labels, metadata=metadata, raw=raw)


class FakeDetector(ListDetector):
    name = "fake"
    key = "FakeLabels"


class OtherDetector(ListDetector):
    name = "other"
    key = "OtherLabels"


@pytest.fixture
def registry() -> DetectorRegistry:
    return DetectorRegistry(
        [RegisteredDetector(FakeDetector(), "test"), RegisteredDetector(OtherDetector(), "test")]
    )


ContextFactory = Callable[..., DetectContext]


@pytest.fixture
def context_for(registry: DetectorRegistry, tmp_path: Path) -> ContextFactory:
    """``context_for(settings, base_dir=tmp_path)``: what the engine would pass."""

    def make(settings: Mapping[str, Any], base_dir: Path = tmp_path) -> DetectContext:
        return DetectContext(
            settings=settings,
            min_confidence=50.0,
            base_dir=str(base_dir),
            parse_response=registry.parse_response,
        )

    return make


@pytest.fixture
def image() -> Image:
    return Image(name="uploads/cat.png", data=b"not really a png, but distinct bytes")
