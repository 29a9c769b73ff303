"""Running a policy's detectors over an image and deciding it."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policy_engine.call_threads import run_on_call_thread
from policy_engine.cascade import Deciders, Judge, judge_for, skipped_into
from policy_engine.compiler import CompiledPolicy
from policy_engine.decision import Decision, DetectorFailure, SkippedDetector
from policy_engine.detectors import DetectContext, Detector, DetectorResult, detector_cost
from policy_engine.errors import (
    DetectorError,
    DetectorUnavailableError,
    InvalidDetectorResult,
    NoDetectorsError,
    PolicyDetectorsError,
    RunStopped,
)
from policy_engine.events import DetectorCall
from policy_engine.image import DEFAULT_MAX_IMAGE_BYTES, Image
from policy_engine.labels import Label
from policy_engine.loader import UNKNOWN_NAME_CODES, load_policy, registry_errors
from policy_engine.log_fields import error_fields, fields
from policy_engine.model import Policy
from policy_engine.plugins import DetectorRegistry
from policy_engine.ratelimit import RateLimiter
from policy_engine.recordings import ResponseStore, settings_digest
from policy_engine.redaction import loggable

if TYPE_CHECKING:
    from policy_engine.policy_set import CompiledPolicySet, PolicySet, SetDecision

logger = logging.getLogger(__name__)


DEFAULT_DETECTOR_TIMEOUT = 120.0
"""Seconds one detector call may take by default: above a Rekognition call's
own retries at botocore's default settings in all but the worst case, far
below forever."""

DETECTOR_THREAD_PREFIX = "policy-engine-detector-"


@dataclass(frozen=True, slots=True)
class _Configured:
    detector: Detector
    context: DetectContext
    settings_digest: str
    # a detector warms up alone (see Engine._paced)
    warmed: threading.Event = field(default_factory=threading.Event)
    warming: threading.Lock = field(default_factory=threading.Lock)
    prepared: threading.Event = field(default_factory=threading.Event)


class _Trace:
    """What happened in one detector's turn for one image (one thread's, never shared)."""

    __slots__ = ("cached", "called", "seconds")

    def __init__(self) -> None:
        self.cached = False
        self.called = False
        self.seconds: float | None = None
        """How long the detector's own call took, when one was made."""


@dataclass(frozen=True, slots=True)
class Detection:
    """What :meth:`Engine.detection` found for one image: each detector's
    result or failure, and what asking each one cost."""

    results: tuple[DetectorResult, ...]
    failures: tuple[DetectorFailure, ...]
    calls: tuple[DetectorCall, ...]
    skipped: tuple[SkippedDetector, ...] = ()
    """The detectors the cascade did not call, each with why."""


class CallCounter:
    """How many detector calls a run made, how many the cache saved, and how many
    answers could not be recorded (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.cached = 0
        self.unrecorded = 0
        """Answers that a ``record`` store failed to keep."""
        self.skipped = 0
        """Calls of remote detectors the cascade saved (their answer could not matter)."""

    def add(
        self, *, calls: int = 0, cached: int = 0, unrecorded: int = 0, skipped: int = 0
    ) -> None:
        with self._lock:
            self.calls += calls
            self.cached += cached
            self.unrecorded += unrecorded
            self.skipped += skipped


def _answer_digest(detector: Detector, settings: Mapping[str, Any], min_confidence: float) -> str:
    """What a detector's answers are recorded and cached under: its settings
    without those that only change how it reaches its service."""
    asked = {k: v for k, v in settings.items() if k not in detector.transport_settings}
    return settings_digest(detector.name, asked, min_confidence)


def _failure_of(detector: str, exc: Exception) -> DetectorFailure:
    """A detector's exception as its failure: a :class:`DetectorError` keeps its
    code; anything else is a plugin's bug, named by its type."""
    if isinstance(exc, DetectorError):
        return DetectorFailure(detector, str(exc), exc.code, exc.retryable)
    return DetectorFailure(detector, f"{type(exc).__name__}: {exc}", "plugin-exception")


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
    """What the loader checks when given a registry, checked again against this
    one by the loader's own checks (:func:`~policy_engine.loader.registry_errors`):
    a policy loaded without it must not run with settings a detector refuses
    (the stub with no recordings would allow everything)."""
    for name in sorted(chosen):
        registry.get(name)  # UnknownDetectorError first, as for a detector asked for by name
    errors = registry_errors(policy, registry, chosen)
    if errors:
        hint = ""
        if any(d.code in UNKNOWN_NAME_CODES for d in errors):
            hint = (
                "\n(load the policy with the registry to acknowledge a name with an ignore comment)"
            )
        raise PolicyDetectorsError(
            f"policy {policy.name!r} does not fit the installed detectors:\n"
            + "\n".join(d.render() for d in errors)
            + hint,
            errors,
        )


class Engine:
    """A compiled policy with its detectors: ``check(image)`` gives a :class:`Decision`.

    Build it once and share it across threads: compiling and client set-up
    happen here, not per image. Each detector call is isolated: an exception
    in one becomes that detector's failure (the policy's ``on_error``
    verdict), and the other detectors' labels still count (POLICY_SPEC
    section 6).

    ``cache`` answers a remote detector from recorded responses (same image,
    detector, settings and floor) instead of calling it; ``record`` stores
    every response a remote detector returns. Both key an image by its bytes,
    or, for one known by URI only, by the version the detector identifies
    (:meth:`Detector.identify`); an image without one is neither answered from
    the cache nor recorded. ``rate_limit`` spaces remote
    calls across all threads; ``concurrency`` tells detectors how many images
    will be checked at once (for their connection pools).
    """

    def __init__(
        self,
        policy: Policy | PolicySet,
        registry: DetectorRegistry,
        *,
        detectors: Mapping[str, Mapping[str, Any]] | None = None,
        base_dir: str | None = None,
        cache: ResponseStore | None = None,
        record: ResponseStore | None = None,
        rate_limit: RateLimiter | None = None,
        concurrency: int = 1,
        detector_timeout: float | None = DEFAULT_DETECTOR_TIMEOUT,
    ) -> None:
        """``detectors`` overrides the policy's ``detectors:`` (e.g. to replay
        recordings); its relative paths resolve against ``base_dir``.
        ``detector_timeout`` is how many seconds one detector call may take
        before it fails with code ``timeout`` (None: no limit)."""
        if detector_timeout is not None and not 0 < detector_timeout <= threading.TIMEOUT_MAX:
            raise ValueError(
                f"detector_timeout must be a positive number of seconds (at most "
                f"{threading.TIMEOUT_MAX:g}), or None for no limit; got {detector_timeout!r}"
            )
        self.detector_timeout = detector_timeout
        from policy_engine.policy_set import CompiledPolicySet, PolicySet

        self.policy_set: PolicySet | None = None
        self.compiled_set: CompiledPolicySet | None = None
        policies: tuple[Policy, ...]
        if isinstance(policy, PolicySet):
            # a set: every routed policy's detectors are called once per image,
            # at the lowest floor, and the compiled set routes and decides
            self.policy_set = policy
            self.compiled_set = CompiledPolicySet(policy, registry)
            policies = policy.policies()
            first = policies[0]
            self._policy: Policy | None = None
            self.compiled = self.compiled_set.compiled(policy.routes[0])
            name, own_detectors = policy.name, policy.detectors
            floor, policy_dir = policy.min_confidence, first.base_dir
        else:
            policies = (policy,)
            self._policy = policy
            self.compiled = CompiledPolicy(policy, registry.taxonomy_for)
            name, own_detectors = policy.name, policy.detectors
            floor, policy_dir = policy.min_confidence, policy.base_dir
        self.name = name
        self.registry = registry
        self.cache = cache
        self.record = record
        self.rate_limit = rate_limit
        self.counter = CallCounter()
        chosen = own_detectors if detectors is None else detectors
        if not chosen:
            raise NoDetectorsError(
                f"policy {name!r} names no detectors: name those it runs under "
                f"detectors: (installed: {', '.join(registry.names()) or 'none'}), or replay "
                "recordings with --replay"
            )
        for each in policies:  # each routed policy against the detectors it runs with
            mine = {k: v for k, v in chosen.items() if k in each.detectors}
            _verify(each, registry, mine if detectors is None else chosen)

        def directory_of(detector: str) -> str:
            # an entry a base wrote resolves its relative paths in the base's folder
            if base_dir is not None:
                return base_dir
            for each in policies:
                if detector in each.detectors:
                    return each.directory_of(detector)
            return policy_dir

        def context(name: str, settings: Mapping[str, Any]) -> DetectContext:
            return DetectContext(
                settings=settings,
                min_confidence=floor,
                base_dir=directory_of(name),
                parse_response=registry.parse_response,
                concurrency=concurrency,
            )

        self._configured = tuple(
            _Configured(
                registry.get(detector),
                context(detector, settings),
                _answer_digest(registry.get(detector), settings, floor),
            )
            for detector, settings in sorted(chosen.items())
        )
        self._cascade(policies, detectors is None)
        # Replaying in place of the policy's own detectors: theirs still check
        # each image first, so a replay refuses what a live run would.
        installed = set(registry.names())
        self._stand_ins = tuple(
            (registry.get(detector), context(detector, settings))
            for detector, settings in sorted(own_detectors.items())
            if detectors is not None and detector not in chosen and detector in installed
        )
        # what a live run would read: the policy's own detectors decide, replayed or not
        readers = self._stand_ins or tuple((c.detector, c.context) for c in self._configured)
        limits = [
            detector.max_image_bytes(ctx.settings) or DEFAULT_MAX_IMAGE_BYTES
            for detector, ctx in readers
        ]
        self.max_image_bytes = max(limits)
        """The most bytes of one local image file worth reading for this policy."""

    def _cascade(self, policies: tuple[Policy, ...], own_detectors: bool) -> None:
        """Order the detectors cheapest first (a policy's ``cascade: costs:`` over
        the plugin's; for a set, the highest any routed policy gives), and judge
        what each image still needs unless a policy turns skipping off. A replay
        (detectors given in place of the policy's) calls every stand-in: one
        replays what several detectors said, so no bound holds for it."""

        def cost(configured: _Configured) -> float:
            name = configured.detector.name
            given = [p.cascade.costs[name] for p in policies if name in p.cascade.costs]
            return max(given) if given else detector_cost(configured.detector)

        by_cost = tuple(sorted(self._configured, key=cost))  # stable: by name within a cost
        # the same tuple where the order is the usual one: nothing to put back per image
        self._by_cost = self._configured if by_cost == self._configured else by_cost
        self._positions = {c.detector.name: i for i, c in enumerate(self._configured)}
        self._judge: Judge | None = None
        self._shadow_judges: dict[int, tuple[object, Judge]] = {}
        if own_detectors and all(p.cascade.skip for p in policies):
            deciding = self.compiled_set if self.compiled_set is not None else self.compiled
            self._judge = judge_for(deciding, [c.detector for c in self._configured])

    def _deciders(self, shadow: CompiledPolicy | CompiledPolicySet | None) -> Deciders | None:
        if self._judge is None:
            return None
        if shadow is None:
            return Deciders(self._judge)
        if not _skipping_allowed(shadow):
            return None  # the candidate wants full records too
        kept = self._shadow_judges.get(id(shadow))
        if kept is None or kept[0] is not shadow:
            if len(self._shadow_judges) >= 4:  # a reloaded candidate replaces the old ones
                self._shadow_judges.clear()
            kept = (shadow, judge_for(shadow, [c.detector for c in self._configured]))
            self._shadow_judges[id(shadow)] = kept
        return Deciders(self._judge, kept[1])

    @property
    def digest(self) -> str:
        """The policy's digest, or the set's (which covers every routed policy)."""
        return self.compiled_set.digest if self.compiled_set is not None else self.compiled.digest

    @property
    def policy(self) -> Policy:
        """The policy this engine decides with; a set's engine has none (see
        :attr:`policy_set`): its routed policies are in the set."""
        if self._policy is None:
            raise TypeError(f"engine of policy set {self.name!r} has no single policy")
        return self._policy

    @classmethod
    def from_policy_file(
        cls, path: str | os.PathLike[str], registry: DetectorRegistry | None = None
    ) -> Engine:
        """Load, check and compile the policy file at ``path`` for the detectors of
        ``registry`` (default: every installed plugin's). Raises
        :class:`~policy_engine.errors.PolicyLoadError` (with ``diagnostics``) for
        a policy that does not load, and another
        :class:`~policy_engine.errors.PolicyEngineError` for detectors that do
        not fit the installed plugins."""
        registry = registry if registry is not None else DetectorRegistry.installed()
        return cls(load_policy(path, registry=registry), registry)

    def preflight(self) -> None:
        """Check once, before the first image, that every detector can be called
        at all (:meth:`Detector.preflight`; nothing is sent), so that a run
        without credentials or a region stops with one clear error instead of
        deciding every image on a detector failure.

        Raises :class:`~policy_engine.errors.DetectorUnavailableError` for the
        first detector that cannot be called."""
        for configured in self._configured:
            detector = configured.detector
            try:
                detector.preflight(configured.context)
            except DetectorError as exc:
                raise DetectorUnavailableError(detector.name, str(exc), code=exc.code) from exc
            except Exception as exc:  # a plugin's bug: said as clearly, never a traceback
                raise DetectorUnavailableError(
                    detector.name,
                    f"its preflight check failed: {type(exc).__name__}: {exc}",
                    code="plugin-exception",
                ) from exc

    def _run_one(self, configured: _Configured, image: Image, trace: _Trace) -> DetectorResult:
        detector = configured.detector
        if not detector.remote:
            detector.precheck(image, configured.context)
            return self._timed_call(configured, image, trace)
        image, keyed = self._identified(configured, image)
        cached = self._cached(configured, image) if keyed else None
        if cached is not None:
            trace.cached = True
            return cached
        detector.precheck(image, configured.context)  # a refused image costs no call
        result = self._paced(configured, image, trace)
        raw = result.raw if isinstance(result, DetectorResult) else None
        if keyed and self.record is not None and raw is not None:
            try:
                self.record.record(image.key, detector.name, configured.settings_digest, raw)
            except Exception as exc:  # a store that fails to write never undoes a good answer
                self.counter.add(unrecorded=1)
                logger.warning(
                    "could not record %s's response for %s: %s",
                    detector.name,
                    loggable(image.name),
                    loggable(exc),
                    extra=fields(
                        "response-not-recorded",
                        detector=detector.name,
                        input=loggable(image.name),
                        **error_fields(exc),
                    ),
                )
        return result

    def _identified(self, configured: _Configured, image: Image) -> tuple[Image, bool]:
        """The image to send and whether a cache may answer it and a record keep
        its answer: only when its key names its bytes. An image known by URI only
        is first identified by the detector (its version: an ETag, a version id
        in the URI), which then reads that version; one it cannot identify is
        sent as it is, never answered from the cache nor recorded, since the
        object behind the URI may have been overwritten since."""
        if self.cache is None and self.record is None:
            return image, False
        if image.data is not None:
            return image, True
        detector = configured.detector
        try:
            found = detector.identify(image, configured.context)
            if type(found) is not Image:
                raise TypeError(f"identify returned {type(found).__name__}, not an Image")
        except Exception as exc:
            logger.warning(
                "%s could not identify %s, so it is neither answered from the cache nor "
                "recorded: %s",
                detector.name,
                loggable(image.name),
                exc,
                extra=fields(
                    "image-not-identified",
                    detector=detector.name,
                    input=loggable(image.name),
                    **error_fields(exc),
                ),
            )
            return image, False
        if not found.identified:
            logger.warning(
                "%s has no version for %s (known by URI only), so it is neither answered "
                "from the cache nor recorded",
                detector.name,
                loggable(image.name),
                extra=fields(
                    "image-without-version", detector=detector.name, input=loggable(image.name)
                ),
            )
        return found, found.identified

    def _cached(self, configured: _Configured, image: Image) -> DetectorResult | None:
        """The cached answer, if the cache has a usable one: a cache only saves
        calls, so an entry it cannot read or parse is a miss, never a failure."""
        if self.cache is None:
            return None
        detector = configured.detector
        try:
            raw = self.cache.lookup(image.key, detector.name, configured.settings_digest)
            result = detector.from_stored(raw, configured.context) if raw is not None else None
        except Exception as exc:
            logger.warning(
                "ignoring an unusable cached %s response for %s",
                detector.name,
                loggable(image.name),
                extra=fields(
                    "cached-response-unusable",
                    detector=detector.name,
                    input=loggable(image.name),
                    **error_fields(exc),
                ),
            )
            return None
        if result is None:
            return None
        self.counter.add(cached=1)
        # the record says so: a cached answer has no request id of its own
        return dataclasses.replace(result, metadata={**result.metadata, "from_cache": True})

    def _paced(self, configured: _Configured, image: Image, trace: _Trace) -> DetectorResult:
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
            return self._send(configured, image, trace)
        if not configured.warmed.is_set():
            with configured.warming:
                if not configured.warmed.is_set():
                    return self._warm_up(configured, image, limiter, trace)
        limiter.acquire()
        return self._send(configured, image, trace)

    def _send(self, configured: _Configured, image: Image, trace: _Trace) -> DetectorResult:
        """Call the detector, counted as a call when it goes out, and uncounted
        when the detector says that nothing was sent (``DetectorError.sent``:
        no credentials, an image refused before the request)."""
        self.counter.add(calls=1)
        try:
            return self._timed_call(configured, image, trace)
        except DetectorError as exc:
            if not exc.sent:
                self.counter.add(calls=-1)
                trace.called = False
            raise

    def _warm_up(
        self, configured: _Configured, image: Image, limiter: RateLimiter, trace: _Trace
    ) -> DetectorResult:
        detector = configured.detector
        if not configured.prepared.is_set():
            configured.prepared.set()
            try:
                detector.prepare(configured.context)
            except Exception as exc:  # the call itself will report it
                logger.debug(
                    "prepare failed for %s",
                    detector.name,
                    extra=fields("prepare-failed", detector=detector.name, **error_fields(exc)),
                )
        limiter.acquire()
        try:
            result = self._send(configured, image, trace)
        finally:
            limiter.defer_next()
        configured.warmed.set()
        return result

    def _timed_call(self, configured: _Configured, image: Image, trace: _Trace) -> DetectorResult:
        """:meth:`_call`, timed alone: a rate limit's wait is not the detector's latency."""
        trace.called = True
        started = time.perf_counter()
        try:
            return self._call(configured, image)
        finally:
            trace.seconds = time.perf_counter() - started

    def _call(self, configured: _Configured, image: Image) -> DetectorResult:
        """The detector's ``detect``, within :attr:`detector_timeout`.

        A call runs on a thread of its own (reused from call to call: see
        :mod:`~policy_engine.call_threads`), so a detector that hangs costs its
        image a ``timeout`` failure (the policy's ``on_error``), not the run.
        Python cannot stop a thread: a call past its time goes on in the
        background (a daemon, so it never holds up exit) and its answer is
        dropped."""
        detector = configured.detector
        timeout = self.detector_timeout
        if timeout is None:
            return detector.detect(image, configured.context)
        outcome: list[DetectorResult | BaseException] = []
        done = threading.Event()

        def call() -> None:
            try:
                outcome.append(detector.detect(image, configured.context))
            except BaseException as exc:  # handed to the caller's thread below
                outcome.append(exc)
            finally:
                done.set()

        run_on_call_thread(call, f"{DETECTOR_THREAD_PREFIX}{detector.name}")
        if not done.wait(timeout):
            raise DetectorError(
                f"{detector.name} gave no answer within {timeout:g} s "
                "(the engine's detector time limit)",
                code="timeout",
                retryable=True,
            )
        found = outcome[0]
        if isinstance(found, BaseException):
            raise found
        return found

    def _refusals(self, image: Image) -> list[DetectorFailure]:
        """Why ``image`` is refused before any detector is called: a replayed
        detector's own checks, then emptiness, which no detector can look at."""
        failures: list[DetectorFailure] = []
        for detector, context in self._stand_ins:
            try:
                detector.precheck(image, context)
            except Exception as exc:  # its detector's failure, as in a live run
                failures.append(_failure_of(detector.name, exc))
        if not failures and image.data == b"":
            failures = [
                DetectorFailure(c.detector.name, f"image {image.name!r} is empty", "empty-image")
                for c in self._configured
            ]
        return failures

    def detect(self, image: Image) -> tuple[list[DetectorResult], list[DetectorFailure]]:
        """Run every detector over ``image`` (none skipped: a caller may decide the
        answers in any context, under any policy); failures are collected, never raised."""
        found = self.detection(image, skip=False)
        return list(found.results), list(found.failures)

    def detection(
        self,
        image: Image,
        *,
        context: Mapping[str, Any] | None = None,
        shadow: CompiledPolicy | CompiledPolicySet | None = None,
        skip: bool = True,
    ) -> Detection:
        """:meth:`detect`, with what asking each detector cost (its time, whether
        the cache answered, whether a call went out), for the decision hook.

        Detectors are called cheapest first, and one whose every possible answer
        can no longer change the decision (of a set in ``context``, and of the
        ``shadow`` candidate too) is skipped (:mod:`policy_engine.cascade`),
        unless the policy turns skipping off or ``skip`` is False (the answers
        are then good for any context and any candidate). Results, failures and
        calls are listed in the detectors' usual order (by name) whatever the
        calling order."""
        results: list[DetectorResult] = []
        failures = self._refusals(image)
        if failures:
            refused = tuple(DetectorCall(f.source, 0.0, error_code=f.code) for f in failures)
            return Detection((), tuple(failures), refused)
        calls: list[DetectorCall] = []
        skipped: list[SkippedDetector] = []
        deciders = self._deciders(shadow) if skip else None
        for configured in self._by_cost:
            name = configured.detector.name
            if deciders is not None:
                reason = deciders.why(results, failures, context)(name)
                if reason is not None:
                    skipped.append(SkippedDetector(name, reason))
                    if configured.detector.remote:
                        self.counter.add(skipped=1)
                    continue
            trace = _Trace()
            started = time.perf_counter()
            failure: DetectorFailure | None = None
            try:
                result = self._run_one(configured, image, trace)
                _check_result(result)
                for label in result.labels:
                    # a plugin's taxonomy look-up fails here, as this detector's error
                    self.compiled.resolve(label)
                    if label.source != name and not configured.detector.reports_other_sources:
                        # the cascade bounds a detector's answer by its own name's rules
                        raise InvalidDetectorResult(
                            f"a label from {name} has source {label.source!r}; a detector "
                            "reports its own name (or sets reports_other_sources)",
                            field="labels",
                        )
            except RunStopped as exc:
                if not (results or failures):
                    raise  # nothing of this image was asked: it is dropped, undecided
                # another detector's call went out (paid for): decide and keep the image
                failure = DetectorFailure(name, str(exc), "stopped", retryable=True)
            except Exception as exc:  # a plugin's bug must not crash the others
                failure = _failure_of(name, exc)
            else:
                results.append(result)
            if failure is not None:
                failures.append(failure)
            seconds = trace.seconds if trace.seconds is not None else time.perf_counter() - started
            code = failure.code if failure is not None else None
            calls.append(DetectorCall(name, seconds, trace.cached, trace.called, code))
        if self._by_cost is not self._configured:  # back in the usual order, for the record
            at = self._positions
            results.sort(key=lambda r: at.get(r.source, -1))
            failures.sort(key=lambda f: at.get(f.source, -1))
            calls.sort(key=lambda c: at.get(c.detector, -1))
        return Detection(tuple(results), tuple(failures), tuple(calls), tuple(skipped))

    def decide(self, results: list[DetectorResult], failures: list[DetectorFailure]) -> Decision:
        """What the policy decides for one image from what :meth:`detect` found:
        every detector's labels pooled (their order never matters), the
        failures under ``on_error``, and each detector's metadata for the
        record. Calls no detector. A set's engine decides in the set's default
        context (see :meth:`decide_in`)."""
        if self.compiled_set is not None:
            return self.compiled_set.decide_results(results, failures, {}).decision
        return self.compiled.evaluate_results(results, failures)

    def check(self, image: Image) -> Decision:
        """Decide ``image``: run every detector (:meth:`detect`), then
        :meth:`decide`. Never raises for a detector's failure: it is part of the
        decision, under the policy's ``on_error`` (POLICY_SPEC section 6)."""
        found = self.detection(image)
        decided = self.decide(list(found.results), list(found.failures))
        return skipped_into(decided, found.skipped)

    def decide_in(
        self,
        results: list[DetectorResult],
        failures: list[DetectorFailure],
        context: Mapping[str, Any] | None = None,
    ) -> Decision | SetDecision:
        """:meth:`decide` in a caller's ``context``: a set routes by it (raising
        :class:`~policy_engine.errors.ContextError` for a dimension missing
        without a default or an unknown value: never an allow) and gives a
        :class:`~policy_engine.policy_set.SetDecision`; a policy ignores it."""
        if self.compiled_set is None:
            return self.decide(results, failures)
        return self.compiled_set.decide_results(results, failures, context or {})

    def check_in(
        self, image: Image, context: Mapping[str, Any] | None = None
    ) -> Decision | SetDecision:
        """:meth:`check` in a caller's ``context`` (see :meth:`decide_in`). A set's
        context is resolved before any detector is called: a bad one costs no call."""
        if self.policy_set is not None:
            self.policy_set.resolve_context(dict(context or {}))
        found = self.detection(image, context=context)
        return with_skipped(
            self.decide_in(list(found.results), list(found.failures), context=context),
            found.skipped,
        )


def with_skipped(
    decided: Decision | SetDecision, skipped: tuple[SkippedDetector, ...]
) -> Decision | SetDecision:
    """A decision (a set's too) with the detectors the cascade skipped, for its record."""
    if not skipped:
        return decided
    if isinstance(decided, Decision):
        return skipped_into(decided, skipped)
    from policy_engine.sets.deciding import _set_decision

    return _set_decision(skipped_into(decided.decision, skipped), decided.routing)


def _skipping_allowed(compiled: CompiledPolicy | CompiledPolicySet) -> bool:
    """Whether a policy, or every policy a set routes to, leaves skipping on
    (the rule :meth:`Engine._cascade` applies to the serving policy)."""
    if isinstance(compiled, CompiledPolicy):
        return compiled.policy.cascade.skip
    return all(policy.cascade.skip for policy in compiled.policy_set.policies())
