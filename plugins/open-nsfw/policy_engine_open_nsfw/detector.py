"""The ``open-nsfw`` detector: one label, ``Sexual Content``, at 100 x P(NSFW)."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from policy_engine import (
    DetectContext,
    Detector,
    DetectorResult,
    Image,
    Label,
    Taxonomy,
)
from policy_engine_open_nsfw.batching import MicroBatcher
from policy_engine_open_nsfw.images import model_input, opened
from policy_engine_open_nsfw.labels import LABEL, SOURCE, TAXONOMY
from policy_engine_open_nsfw.model import MODEL_PACKAGE, MODEL_SHA256, shared_model
from policy_engine_open_nsfw.settings import SETTINGS_SCHEMA, OpenNsfwSettings

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Scorer = MicroBatcher[npt.NDArray[np.float32], float]

MODEL_METADATA: Mapping[str, Any] = {
    "model": "open_nsfw (Yahoo, resnet_50_1by2_nsfw)",
    "weights": MODEL_PACKAGE,
    "weights_sha256": MODEL_SHA256,
}


class OpenNsfwDetector(Detector):
    """Scores each image with open_nsfw on this machine: no network, no cost.

    Concurrent calls (a ``check`` run's threads) are scored together in one
    model run (:class:`~policy_engine_open_nsfw.batching.MicroBatcher`), on
    one ONNX Runtime session shared by the whole process.
    """

    name: ClassVar[str] = SOURCE
    remote: ClassVar[bool] = False
    settings_schema: ClassVar[Mapping[str, Any]] = SETTINGS_SCHEMA

    def __init__(self) -> None:
        self._forget_scorers()
        _instances.add(self)

    def _forget_scorers(self) -> None:
        self._scorers: dict[tuple[int, int, float], Scorer] = {}
        self._lock = threading.Lock()

    def taxonomies(self) -> tuple[Taxonomy, ...]:
        return (TAXONOMY,)

    def taxonomy(self, model_version: str | None) -> Taxonomy | None:
        return TAXONOMY

    def preflight(self, context: DetectContext) -> None:
        # loads (and checks) the model once, so a missing or changed one stops
        # the run with one error instead of failing every image
        self._scorer(context)

    def prepare(self, context: DetectContext) -> None:
        self._scorer(context)

    def precheck(self, image: Image, context: DetectContext) -> None:
        opened(image)

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        scorer = self._scorer(context)
        score = scorer.submit(model_input(image))
        label = Label(name=LABEL, confidence=100.0 * score, source=SOURCE)
        metadata = {**MODEL_METADATA, "nsfw_score": score}
        return DetectorResult(source=SOURCE, labels=(label,), metadata=metadata)

    def _scorer(self, context: DetectContext) -> Scorer:
        settings = OpenNsfwSettings.from_mapping(context.settings)
        # a batch never waits for more images than the run checks at once
        batch = max(1, min(settings.batch_size, context.concurrency))
        key = (settings.threads, batch, settings.batch_wait)
        with self._lock:
            scorer = self._scorers.get(key)
            if scorer is None:
                model = shared_model(settings.threads)
                scorer = self._scorers[key] = MicroBatcher(
                    model.scores, max_batch=batch, max_wait=settings.batch_wait
                )
            return scorer


_instances: weakref.WeakSet[OpenNsfwDetector] = weakref.WeakSet()


def _after_fork() -> None:
    # a batcher's lock may have been held by a thread the child does not have
    for detector in list(_instances):
        detector._forget_scorers()


os.register_at_fork(after_in_child=_after_fork)
