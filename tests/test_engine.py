"""The engine's guards around detectors: a time limit per call, and images
refused before any detector (empty, or refused by a replayed detector's own
checks), each a failure that the policy's ``on_error`` decides, never allow."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from policy_engine import DetectContext, Detector, DetectorResult, Image, Label, parse_policy
from policy_engine.engine import DETECTOR_THREAD_PREFIX, Engine
from policy_engine.errors import DetectorError
from policy_engine.image import DEFAULT_MAX_IMAGE_BYTES
from policy_engine.plugins import DetectorRegistry, RegisteredDetector

RULES = "rules:\n  - id: violence\n    match: {name: Violence}\n    block_at: 90\n"


class Hanging(Detector):
    """Answers Violence 99, or hangs (until released) for an image named 'hang'."""

    name: ClassVar[str] = "hanging"
    remote: ClassVar[bool] = False

    def __init__(self) -> None:
        self.release = threading.Event()

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        if image.name == "hang":
            self.release.wait(30)
        return DetectorResult(self.name, (Label("Violence", 99.0, self.name),))


class Picky(Detector):
    """Refuses any image whose bytes do not start with b'IMG' before a call; limits size."""

    name: ClassVar[str] = "picky"
    settings_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "properties": {"max": {"type": "integer"}},
        "additionalProperties": False,
    }

    def max_image_bytes(self, settings: Mapping[str, Any]) -> int | None:
        return int(settings.get("max", 1000))

    def precheck(self, image: Image, context: DetectContext) -> None:
        if not (image.data or b"").startswith(b"IMG"):
            raise DetectorError("not an IMG", code="unsupported-image-format")

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        raise AssertionError("a replayed detector is never called")


class Replayer(Detector):
    """Stands in for the policy's detectors: always Violence 99."""

    name: ClassVar[str] = "replayer"
    remote: ClassVar[bool] = False

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        return DetectorResult(self.name, (Label("Violence", 99.0, self.name),))


def _registry(*detectors: Detector) -> DetectorRegistry:
    return DetectorRegistry([RegisteredDetector(d, "test") for d in detectors])


def _engine(declared: str, *installed: Detector, **options: Any) -> Engine:
    registry = _registry(*installed)
    policy = parse_policy(
        f"version: 1\nname: t\ndetectors: {declared}\n" + RULES, registry=registry
    )
    return Engine(policy, registry, **options)


def test_a_hanging_detector_fails_with_timeout_and_on_error_decides() -> None:
    hanging = Hanging()
    engine = _engine("{hanging: {}}", hanging, detector_timeout=0.2)
    try:
        started = time.monotonic()
        decision = engine.check(Image("hang", b"x"))
        assert time.monotonic() - started < 5
    finally:
        hanging.release.set()
    assert decision.verdict.value == "review"  # on_error's default, never allow
    (failure,) = decision.failures
    assert failure.code == "timeout" and failure.retryable
    assert "within 0.2 s" in failure.error
    # the engine goes on deciding other images
    assert engine.check(Image("fine", b"x")).verdict.value == "block"


def test_a_timed_out_call_runs_on_a_daemon_thread() -> None:
    hanging = Hanging()
    engine = _engine("{hanging: {}}", hanging, detector_timeout=0.05)
    try:
        engine.check(Image("hang", b"x"))
        stuck = [t for t in threading.enumerate() if t.name.startswith(DETECTOR_THREAD_PREFIX)]
        assert stuck and all(t.daemon for t in stuck)  # never holds up the process's exit
    finally:
        hanging.release.set()


def test_an_exception_in_a_timed_call_is_still_that_detectors_failure() -> None:
    class Broken(Replayer):
        name: ClassVar[str] = "broken"

        def detect(self, image: Image, context: DetectContext) -> DetectorResult:
            raise DetectorError("service says no", code="access-denied")

    decision = _engine("{broken: {}}", Broken()).check(Image("a", b"x"))
    assert [(f.source, f.code) for f in decision.failures] == [("broken", "access-denied")]


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), float("inf"), 1e300])
def test_the_time_limit_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match="detector_timeout"):
        _engine("{hanging: {}}", Hanging(), detector_timeout=timeout)


def test_an_empty_image_is_refused_before_any_detector() -> None:
    decision = _engine("{replayer: {}}", Replayer()).check(Image("empty.png", b""))
    assert decision.verdict.value == "review"
    assert [(f.source, f.code) for f in decision.failures] == [("replayer", "empty-image")]
    assert decision.labels == ()


def test_a_replay_keeps_the_policys_own_detectors_checks_and_limits() -> None:
    # the policy names `picky`; the run replays with `replayer` in its place
    engine = _engine("{picky: {max: 10}}", Picky(), Replayer(), detectors={"replayer": {}})
    refused = engine.check(Image("text.png", b"hello"))
    assert [(f.source, f.code) for f in refused.failures] == [("picky", "unsupported-image-format")]
    assert refused.verdict.value == "review"
    assert engine.check(Image("ok.png", b"IMG...")).verdict.value == "block"
    assert engine.max_image_bytes == 10  # what a live run would read


def test_without_a_limit_of_their_own_files_are_read_up_to_the_default_cap() -> None:
    assert _engine("{replayer: {}}", Replayer()).max_image_bytes == DEFAULT_MAX_IMAGE_BYTES


def test_an_answer_the_record_store_cannot_keep_is_counted_and_the_decision_stands() -> None:
    class Remote(Replayer):
        name: ClassVar[str] = "remote"
        remote: ClassVar[bool] = True

        def detect(self, image: Image, context: DetectContext) -> DetectorResult:
            label = Label("Violence", 99.0, self.name)
            return DetectorResult(self.name, (label,), raw={"Violence": 99.0})

    class FullStore:
        def lookup(self, key: str, detector: str, settings: str) -> None:
            return None

        def record(self, key: str, detector: str, settings: str, response: Any) -> None:
            raise OSError(28, "No space left on device")

    engine = _engine("{remote: {}}", Remote(), record=FullStore())
    assert engine.check(Image("a", b"x")).verdict.value == "block"
    assert engine.counter.unrecorded == 1 and engine.counter.calls == 1
