"""Running a policy's detectors over an image and deciding it."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy_engine.compiler import CompiledPolicy, matcher_conflicts
from policy_engine.decision import Decision, DetectorFailure
from policy_engine.detectors import DetectContext, Detector, DetectorResult
from policy_engine.errors import (
    DetectorError,
    InvalidDetectorResult,
    PolicyEngineError,
    RunStopped,
)
from policy_engine.image import Image
from policy_engine.labels import Label
from policy_engine.loader import load_policy
from policy_engine.model import Policy
from policy_engine.plugins import DetectorRegistry
from policy_engine.ratelimit import RateLimiter
from policy_engine.recordings import ResponseStore, settings_digest

logger = logging.getLogger(__name__)


class NoDetectorsError(PolicyEngineError):
    """The policy names no detectors, so there is nothing to run over an image."""


@dataclass(frozen=True, slots=True)
class _Configured:
    detector: Detector
    context: DetectContext
    settings_digest: str
    # a detector warms up alone (see Engine._paced)
    warmed: threading.Event = field(default_factory=threading.Event)
    warming: threading.Lock = field(default_factory=threading.Lock)
    prepared: threading.Event = field(default_factory=threading.Event)


class CallCounter:
    """How many detector calls a run made, and how many the cache saved (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.cached = 0

    def add(self, *, calls: int = 0, cached: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.cached += cached


class PolicyDetectorsError(PolicyEngineError):
    """The policy's detectors do not fit the installed plugins: settings their
    schemas refuse, or rules that are one match under a detector's aliases."""


def _answer_digest(detector: Detector, settings: Mapping[str, Any], min_confidence: float) -> str:
    """What a detector's answers are recorded and cached under: its settings
    without those that only change how it reaches its service."""
    asked = {k: v for k, v in settings.items() if k not in detector.transport_settings}
    return settings_digest(detector.name, asked, min_confidence)


def _check_result(result: object) -> None:
    """A plugin's result is checked as strictly as a raw response: anything else
    is that detector's failure, never a crash of the whole check. Exact types:
    a subclass could skip the checks the values make when they are built."""
    if type(result) is not DetectorResult:
        raise InvalidDetectorResult(
            f"the detector returned {type(result).__name__}, not a DetectorResult"
        )
    for index, label in enumerate(result.labels):
        if type(label) is not Label:
            raise InvalidDetectorResult(
                f"labels[{index}] is a {type(label).__name__}, not a Label", field="labels"
            )


def _verify(
    policy: Policy, registry: DetectorRegistry, chosen: Mapping[str, Mapping[str, Any]]
) -> None:
    """What the loader checks when given a registry, checked again against this one:
    a policy loaded without it must not run with settings a detector refuses
    (the stub with no recordings would allow everything)."""
    from policy_engine.schema import settings_validator

    problems: list[str] = []
    for name, settings in sorted(chosen.items()):
        detector = registry.get(name)
        validator = settings_validator(detector.settings_schema)
        for err in validator.iter_errors(_plain(settings)):
            where = ".".join(str(p) for p in err.absolute_path)
            problems.append(f"detectors.{name}{'.' + where if where else ''}: {err.message}")
        for taxonomy in detector.taxonomies():
            for first, second in matcher_conflicts(policy, taxonomy):
                problems.append(
                    f"rules {first.id!r} and {second.id!r} have the same match under "
                    f"{taxonomy.id}'s aliases ({first.match.describe()} and "
                    f"{second.match.describe()}); merge them"
                )
    if not policy.names_checked:  # loaded without a registry: an unknown name is unseen
        from policy_engine.lint import unknown_name_errors

        problems.extend(
            f"{d.render()} (load the policy with the registry to acknowledge a name with "
            "an ignore comment)"
            for d in unknown_name_errors(policy, registry)
        )
    if problems:
        raise PolicyDetectorsError(
            f"policy {policy.name!r} does not fit the installed detectors: " + "; ".join(problems)
        )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


class Engine:
    """A compiled policy with its detectors: ``check(image)`` gives a :class:`Decision`.

    Build it once and share it across threads: compiling and client set-up
    happen here, not per image. Each detector call is isolated: an exception
    in one becomes that detector's failure (the policy's ``on_error``
    verdict), and the other detectors' labels still count (POLICY_SPEC
    section 6).

    ``cache`` answers a remote detector from recorded responses (same image,
    detector, settings and floor) instead of calling it; ``record`` stores
    every response a remote detector returns; ``rate_limit`` spaces remote
    calls across all threads; ``concurrency`` tells detectors how many images
    will be checked at once (for their connection pools).
    """

    def __init__(
        self,
        policy: Policy,
        registry: DetectorRegistry,
        *,
        detectors: Mapping[str, Mapping[str, Any]] | None = None,
        base_dir: str | None = None,
        cache: ResponseStore | None = None,
        record: ResponseStore | None = None,
        rate_limit: RateLimiter | None = None,
        concurrency: int = 1,
    ) -> None:
        """``detectors`` overrides the policy's ``detectors:`` (e.g. to replay
        recordings); its relative paths resolve against ``base_dir``."""
        self.policy = policy
        self.registry = registry
        self.compiled = CompiledPolicy(policy, registry.taxonomy_for)
        self.cache = cache
        self.record = record
        self.rate_limit = rate_limit
        self.counter = CallCounter()
        chosen = policy.detectors if detectors is None else detectors
        if not chosen:
            raise NoDetectorsError(
                f"policy {policy.name!r} names no detectors: add e.g. "
                "'detectors: {rekognition-moderation: {}}', or replay recordings with --replay"
            )
        _verify(policy, registry, chosen)
        directory = base_dir if base_dir is not None else policy.base_dir
        self._configured = tuple(
            _Configured(
                registry.get(name),
                DetectContext(
                    settings=settings,
                    min_confidence=policy.min_confidence,
                    base_dir=directory,
                    parse_response=registry.parse_response,
                    concurrency=concurrency,
                ),
                _answer_digest(registry.get(name), settings, policy.min_confidence),
            )
            for name, settings in sorted(chosen.items())
        )

    @classmethod
    def from_policy_file(
        cls, path: str | os.PathLike[str], registry: DetectorRegistry | None = None
    ) -> Engine:
        registry = registry if registry is not None else DetectorRegistry.installed()
        return cls(load_policy(path, registry=registry), registry)

    def _run_one(self, configured: _Configured, image: Image) -> DetectorResult:
        detector = configured.detector
        if not detector.remote:
            return detector.detect(image, configured.context)
        cached = self._cached(configured, image)
        if cached is not None:
            return cached
        detector.precheck(image, configured.context)  # a refused image costs no call
        result = self._paced(configured, image)
        raw = result.raw if isinstance(result, DetectorResult) else None
        if self.record is not None and raw is not None:
            try:
                self.record.record(image.key, detector.name, configured.settings_digest, raw)
            except Exception:  # a store that fails to write never undoes a good answer
                logger.warning("could not record %s's response for %s", detector.name, image.name)
        return result

    def _cached(self, configured: _Configured, image: Image) -> DetectorResult | None:
        """The cached answer, if the cache has a usable one: a cache only saves
        calls, so an entry it cannot read or parse is a miss, never a failure."""
        if self.cache is None:
            return None
        detector = configured.detector
        try:
            raw = self.cache.lookup(image.key, detector.name, configured.settings_digest)
            result = detector.from_stored(raw, configured.context) if raw is not None else None
        except Exception:
            logger.warning(
                "ignoring an unusable cached %s response for %s", detector.name, image.name
            )
            return None
        if result is None:
            return None
        self.counter.add(cached=1)
        # the record says so: a cached answer has no request id of its own
        return dataclasses.replace(result, metadata={**result.metadata, "from_cache": True})

    def _paced(self, configured: _Configured, image: Image) -> DetectorResult:
        """Call a remote detector within the rate limit, counting the call when
        it goes out.

        A detector warms up alone: its ``prepare`` builds clients outside the
        rate limit, then its calls run one at a time until one succeeds (a
        detector that builds its client in its first call would otherwise
        hold that call past its slot while the next slots came due, and they
        would go out at once, a burst over the rate); the next slot is then
        counted from when that call returned."""
        limiter = self.rate_limit
        if limiter is None:
            self.counter.add(calls=1)
            return configured.detector.detect(image, configured.context)
        if not configured.warmed.is_set():
            with configured.warming:
                if not configured.warmed.is_set():
                    return self._warm_up(configured, image, limiter)
        limiter.acquire()
        self.counter.add(calls=1)
        return configured.detector.detect(image, configured.context)

    def _warm_up(
        self, configured: _Configured, image: Image, limiter: RateLimiter
    ) -> DetectorResult:
        detector = configured.detector
        if not configured.prepared.is_set():
            configured.prepared.set()
            try:
                detector.prepare(configured.context)
            except Exception:  # the call itself will report it
                logger.debug("prepare failed for %s", detector.name)
        limiter.acquire()
        self.counter.add(calls=1)
        try:
            result = detector.detect(image, configured.context)
        finally:
            limiter.defer_next()
        configured.warmed.set()
        return result

    def detect(self, image: Image) -> tuple[list[DetectorResult], list[DetectorFailure]]:
        """Run every detector over ``image``; failures are collected, never raised."""
        results: list[DetectorResult] = []
        failures: list[DetectorFailure] = []
        for configured in self._configured:
            name = configured.detector.name
            try:
                result = self._run_one(configured, image)
                _check_result(result)
                for label in result.labels:
                    # a plugin's taxonomy look-up fails here, as this detector's error
                    self.compiled.resolve(label)
            except RunStopped as exc:
                if not (results or failures):
                    raise  # nothing of this image was asked: it is dropped, undecided
                # another detector's call went out (paid for): decide and keep the image
                failures.append(DetectorFailure(name, str(exc), "stopped", retryable=True))
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
