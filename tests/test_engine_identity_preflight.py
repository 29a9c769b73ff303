"""The engine's bookkeeping around a remote detector call: an image known by
URI only is cached and recorded under what identifies its bytes or not at
all; ``Engine.preflight`` stops a run that cannot call a detector before the
first image; and only requests that were sent count as calls. Throwaway
detectors only: no network."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from policy_engine import DetectContext, Detector, DetectorError, DetectorResult, Image, Label
from policy_engine.engine import Engine
from policy_engine.errors import DetectorUnavailableError
from policy_engine.loader import parse_policy
from policy_engine.plugins import DetectorRegistry, RegisteredDetector
from policy_engine.ratelimit import RateLimiter
from policy_engine.recordings import RecordingStore

POLICY = (
    "version: 1\nname: identity\ndetectors: {remote: {}}\n"
    "rules:\n  - {id: violence, match: {name: Violence}, review_at: 50, block_at: 90}\n"
)


class RemoteDetector(Detector):
    """Violence 95 for an image whose URI or bytes say "fight", else 10; the
    object behind a URI is what ``objects`` holds now (a stand-in for S3)."""

    name: ClassVar[str] = "remote"

    def __init__(self, *, identifies: bool = True) -> None:
        self.identifies = identifies
        self.objects: dict[str, bytes] = {}
        self.sent: list[Image] = []
        self.identified = 0
        self.preflight_error: Exception | None = None
        self.lock = threading.Lock()

    def preflight(self, context: DetectContext) -> None:
        if self.preflight_error is not None:
            raise self.preflight_error

    def identify(self, image: Image, context: DetectContext) -> Image:
        with self.lock:
            self.identified += 1
        if not self.identifies:
            return image
        assert image.uri is not None
        if image.uri not in self.objects:
            raise DetectorError(f"no object {image.uri}")
        etag = str(hash(self.objects[image.uri]))
        return dataclasses.replace(image, version=etag)

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        with self.lock:
            self.sent.append(image)
        if image.data == b"unsent":
            raise DetectorError("refused before sending", code="refused", sent=False)
        if image.data == b"failed":
            raise DetectorError("the service failed", code="InternalServerError")
        data = image.data if image.data is not None else self.objects.get(image.uri or "", b"")
        confidence = 95.0 if b"fight" in data else 10.0
        label = Label("Violence", confidence, self.name)
        return DetectorResult(self.name, (label,), raw={"Violence": confidence})

    def parse(self, raw: object) -> DetectorResult:  # type: ignore[override]
        assert isinstance(raw, dict)
        return DetectorResult(self.name, (Label("Violence", raw["Violence"], self.name),), raw=raw)

    def recognizes(self, raw: object) -> bool:  # type: ignore[override]
        return isinstance(raw, dict) and "Violence" in raw


def engine_for(detector: Detector, store: Path | None = None, **options: object) -> Engine:
    registry = DetectorRegistry([RegisteredDetector(detector, "test")])
    policy = parse_policy(POLICY, registry=registry)
    recordings = RecordingStore(store) if store is not None else None
    return Engine(policy, registry, cache=recordings, record=recordings, **options)  # type: ignore[arg-type]


URI = "s3://bucket/upload.jpg"


# --- item 3: a cached answer is keyed by what identifies the bytes -----------------------------


def test_an_overwritten_object_is_never_answered_from_the_stale_cache(tmp_path: Path) -> None:
    detector = RemoteDetector()
    engine = engine_for(detector, tmp_path / "rec")
    detector.objects[URI] = b"calm"
    assert engine.check(Image(URI, uri=URI)).verdict == "allow"

    detector.objects[URI] = b"fight"  # overwritten: same URI, other bytes

    assert engine.check(Image(URI, uri=URI)).verdict == "block"
    assert len(detector.sent) == 2
    # the same bytes again: now the cache may answer
    assert engine.check(Image(URI, uri=URI)).verdict == "block"
    assert len(detector.sent) == 2 and engine.counter.cached == 1


def test_the_detector_is_sent_the_image_it_identified(tmp_path: Path) -> None:
    detector = RemoteDetector()
    engine = engine_for(detector, tmp_path / "rec")
    detector.objects[URI] = b"calm"

    engine.check(Image(URI, uri=URI))

    (sent,) = detector.sent
    assert sent.version == str(hash(b"calm"))  # what the record was keyed by


def test_an_image_no_detector_can_identify_is_neither_cached_nor_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    detector = RemoteDetector(identifies=False)
    engine = engine_for(detector, tmp_path / "rec")
    detector.objects[URI] = b"calm"
    engine.check(Image(URI, uri=URI))
    detector.objects[URI] = b"fight"

    assert engine.check(Image(URI, uri=URI)).verdict == "block"

    assert len(detector.sent) == 2 and engine.counter.cached == 0
    assert not (tmp_path / "rec").exists() or list((tmp_path / "rec").iterdir()) == []
    assert "neither answered from the cache nor recorded" in caplog.text


def test_an_identify_that_fails_leaves_the_call_uncached(tmp_path: Path) -> None:
    detector = RemoteDetector()
    engine = engine_for(detector, tmp_path / "rec")

    decision = engine.check(Image(URI, uri=URI))  # no such object: identify raises

    assert decision.failures == () and len(detector.sent) == 1
    assert detector.sent[0].version is None
    assert not (tmp_path / "rec").exists() or list((tmp_path / "rec").iterdir()) == []


def test_identify_is_asked_only_for_uri_images_and_only_when_a_store_is_used(
    tmp_path: Path,
) -> None:
    detector = RemoteDetector()
    detector.objects[URI] = b"calm"
    engine_for(detector, tmp_path / "rec").check(Image("bytes", b"calm"))
    assert detector.identified == 0
    engine_for(detector).check(Image(URI, uri=URI))  # no cache, no record: no request
    assert detector.identified == 0
    engine_for(detector, tmp_path / "rec").check(Image(URI, uri=URI))
    assert detector.identified == 1


def test_an_image_given_with_a_version_is_cached_by_it(tmp_path: Path) -> None:
    detector = RemoteDetector(identifies=False)
    engine = engine_for(detector, tmp_path / "rec")
    detector.objects[URI] = b"fight"

    for _ in range(2):
        assert engine.check(Image(URI, uri=URI, version='"e1"')).verdict == "block"

    assert len(detector.sent) == 1 and engine.counter.cached == 1


# --- item 15: preflight, and counting only what was sent ----------------------------------------


def test_preflight_names_the_detector_and_keeps_its_code() -> None:
    detector = RemoteDetector()
    detector.preflight_error = DetectorError("no AWS region: set `region`", code="no-region")
    engine = engine_for(detector)

    with pytest.raises(DetectorUnavailableError) as raised:
        engine.preflight()

    assert raised.value.code == "no-region" and raised.value.detector == "remote"
    assert str(raised.value) == "detector 'remote' cannot be called: no AWS region: set `region`"
    assert detector.sent == []


def test_a_preflight_that_crashes_is_a_clear_error_too() -> None:
    detector = RemoteDetector()
    detector.preflight_error = KeyError("boom")
    with pytest.raises(DetectorUnavailableError) as raised:
        engine_for(detector).preflight()
    assert raised.value.code == "plugin-exception" and "KeyError" in str(raised.value)


def test_preflight_checks_nothing_by_default() -> None:
    class Plain(RemoteDetector):
        preflight = Detector.preflight  # type: ignore[assignment]

    engine_for(Plain()).preflight()


@pytest.mark.parametrize("rate", [None, 1000.0])
def test_only_requests_that_were_sent_count_as_calls(rate: float | None) -> None:
    detector = RemoteDetector()
    limiter = RateLimiter(rate) if rate is not None else None
    engine = engine_for(detector, rate_limit=limiter)

    refused = engine.check(Image("a", b"unsent"))
    failed = engine.check(Image("b", b"failed"))
    engine.check(Image("c", b"calm"))

    assert [f.code for f in refused.failures] == ["refused"]
    assert [f.code for f in failed.failures] == ["InternalServerError"]
    assert engine.counter.calls == 2  # the failed call went out; the refused one did not
