"""Running a policy's detectors over an image and deciding it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policy_engine.compiler import CompiledPolicy
from policy_engine.decision import Decision, DetectorFailure
from policy_engine.detectors import DetectContext, Detector, DetectorResult
from policy_engine.errors import DetectorError, InvalidDetectorResult, PolicyEngineError
from policy_engine.image import Image
from policy_engine.labels import Label
from policy_engine.loader import load_policy
from policy_engine.model import Policy
from policy_engine.plugins import DetectorRegistry


class NoDetectorsError(PolicyEngineError):
    """The policy names no detectors, so there is nothing to run over an image."""


@dataclass(frozen=True, slots=True)
class _Configured:
    detector: Detector
    context: DetectContext


def _check_result(result: object) -> None:
    """A plugin's result is checked as strictly as a raw response: anything else
    is that detector's failure, never a crash of the whole check."""
    if not isinstance(result, DetectorResult):
        raise InvalidDetectorResult(
            f"the detector returned {type(result).__name__}, not a DetectorResult"
        )
    for index, label in enumerate(result.labels):
        if not isinstance(label, Label):
            raise InvalidDetectorResult(
                f"labels[{index}] is a {type(label).__name__}, not a Label", field="labels"
            )


class Engine:
    """A compiled policy with its detectors: ``check(image)`` gives a :class:`Decision`.

    Build it once and share it: compiling and client set-up happen here, not
    per image. Each detector call is isolated: an exception in one becomes
    that detector's failure (the policy's ``on_error`` verdict), and the other
    detectors' labels still count (POLICY_SPEC section 6).
    """

    def __init__(
        self,
        policy: Policy,
        registry: DetectorRegistry,
        *,
        detectors: Mapping[str, Mapping[str, Any]] | None = None,
        base_dir: str | None = None,
    ) -> None:
        """``detectors`` overrides the policy's ``detectors:`` (e.g. to replay
        recordings); its relative paths resolve against ``base_dir``."""
        self.policy = policy
        self.registry = registry
        self.compiled = CompiledPolicy(policy, registry.taxonomy_for)
        chosen = policy.detectors if detectors is None else detectors
        if not chosen:
            raise NoDetectorsError(
                f"policy {policy.name!r} names no detectors: add e.g. "
                "'detectors: {rekognition-moderation: {}}', or replay recordings with --replay"
            )
        directory = base_dir if base_dir is not None else policy.base_dir
        self._configured = tuple(
            _Configured(
                registry.get(name),
                DetectContext(
                    settings=settings,
                    min_confidence=policy.min_confidence,
                    base_dir=directory,
                    parse_response=registry.parse_response,
                ),
            )
            for name, settings in sorted(chosen.items())
        )

    @classmethod
    def from_policy_file(
        cls, path: str | os.PathLike[str], registry: DetectorRegistry | None = None
    ) -> Engine:
        registry = registry if registry is not None else DetectorRegistry.installed()
        return cls(load_policy(path, registry=registry), registry)

    def detect(self, image: Image) -> tuple[list[DetectorResult], list[DetectorFailure]]:
        """Run every detector over ``image``; failures are collected, never raised."""
        results: list[DetectorResult] = []
        failures: list[DetectorFailure] = []
        for configured in self._configured:
            name = configured.detector.name
            try:
                result = configured.detector.detect(image, configured.context)
                _check_result(result)
            except DetectorError as exc:
                failures.append(DetectorFailure(name, str(exc), exc.code, exc.retryable))
            except Exception as exc:  # a plugin's bug must not crash the others
                failures.append(
                    DetectorFailure(name, f"{type(exc).__name__}: {exc}", "plugin-exception")
                )
            else:
                results.append(result)
        return results, failures

    def decide(self, results: list[DetectorResult], failures: list[DetectorFailure]) -> Decision:
        labels = [label for result in results for label in result.labels]
        metadata = {result.source: result.metadata for result in results if result.metadata}
        return self.compiled.evaluate(labels, failures, metadata)

    def check(self, image: Image) -> Decision:
        return self.decide(*self.detect(image))

    def check_file(self, path: str | os.PathLike[str]) -> Decision:
        return self.check(Image(str(path), Path(path).read_bytes()))
