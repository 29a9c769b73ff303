"""The embedding API: Moderator checks, hot reload, async, decision hooks and shadow
evaluation. Throwaway detectors only: no network."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import re
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from policy_engine import (
    DetectContext,
    Detector,
    DetectorError,
    DetectorResult,
    Image,
    Label,
    Moderator,
    PolicyLoadError,
    ShadowPolicyError,
    Taxonomy,
    TaxonomyEntry,
    hookimpl,
)
from policy_engine.errors import DetectorUnavailableError
from policy_engine.events import DecisionEvent
from policy_engine.moderator import to_image
from policy_engine.plugins import DetectorRegistry, RegisteredDetector, make_plugin_manager

ROOT = Path(__file__).resolve().parent.parent


def policy_text(name: str, block_at: float, *, on_error: str = "review") -> str:
    return (
        f"version: 1\nname: {name}\non_error: {on_error}\ndetectors: {{counting: {{}}}}\n"
        "rules:\n  - id: violence\n    match: {name: Violence}\n"
        f"    review_at: 50\n    block_at: {block_at}\n"
    )


LENIENT = policy_text("lenient", 90)  # Violence 60: review
STRICT = policy_text("strict", 55)  # Violence 60: block


class CountingDetector(Detector):
    """Violence at a confidence chosen by the image: counts every call."""

    name: ClassVar[str] = "counting"

    def __init__(self, delay: threading.Event | None = None) -> None:
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()
        self.delay = delay

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay is not None:
                self.delay.wait(0.01)
            if image.data == b"explode":
                raise DetectorError("service unavailable", code="unavailable", retryable=True)
            if image.uri is not None:
                confidence = 95.0 if "fight" in image.uri else 10.0
            else:
                confidence = {b"calm": 10.0, b"fight": 95.0}.get(image.data or b"", 60.0)
            label = Label("Violence", confidence, self.name, model_version="1.0")
            return DetectorResult(self.name, (label,), metadata={"model_version": "1.0"})
        finally:
            with self.lock:
                self.in_flight -= 1


def registry_with(detector: Detector) -> DetectorRegistry:
    return DetectorRegistry([RegisteredDetector(detector, "test")])


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def moderator_for(
    tmp_path: Path, text: str = LENIENT, detector: Detector | None = None, **options: Any
) -> Moderator:
    detector = detector if detector is not None else CountingDetector()
    return Moderator.from_policy_file(
        write(tmp_path / "policy.yaml", text),
        registry=registry_with(detector),
        plugin_manager=make_plugin_manager(load_entry_points=False),
        **options,
    )


class Recorder:
    def __init__(self) -> None:
        self.events: list[DecisionEvent] = []
        self.lock = threading.Lock()

    @hookimpl
    def policy_engine_decision_made(self, event: DecisionEvent) -> None:
        with self.lock:
            self.events.append(event)


class Exploding:
    @hookimpl
    def policy_engine_decision_made(self, event: DecisionEvent) -> None:
        raise RuntimeError("the hook is broken")


# -- checking -----------------------------------------------------------------


def test_check_takes_bytes_paths_images_and_s3_uris(tmp_path: Path) -> None:
    moderator = moderator_for(tmp_path)
    upload = tmp_path / "upload.png"
    upload.write_bytes(b"fight")

    assert moderator.check(b"calm").verdict == "allow"
    assert moderator.check(bytearray(b"x")).verdict == "review"
    assert moderator.check(upload).verdict == "block"
    assert moderator.check(str(upload)).verdict == "block"
    assert moderator.check(Image("given", b"calm")).verdict == "allow"
    assert moderator.check("s3://bucket/fight.jpg").verdict == "block"
    decision = moderator.check(b"fight")
    assert decision.policy_digest == moderator.policy_digest
    assert decision.policy_name == "lenient" == moderator.policy_name


def test_inputs_become_images_known_by_bytes_path_or_uri(tmp_path: Path) -> None:
    upload = tmp_path / "a.png"
    upload.write_bytes(b"abc")
    assert to_image(b"abc").key == hashlib.sha256(b"abc").hexdigest()
    assert to_image(b"abc", "upload-7").name == "upload-7"
    assert to_image(upload).name == str(upload)
    assert to_image(upload).data == b"abc"
    by_uri = to_image("s3://bucket/key.jpg")
    assert (by_uri.uri, by_uri.data) == ("s3://bucket/key.jpg", None)
    with pytest.raises(FileNotFoundError):
        to_image(str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match="unsupported input"):
        to_image("https://example.com/a.png")
    with pytest.raises(ValueError, match="one object"):
        to_image("s3://bucket/prefix/")
    with pytest.raises(TypeError):
        to_image(42)  # type: ignore[arg-type]


def test_a_failing_detector_is_part_of_the_decision(tmp_path: Path) -> None:
    decision = moderator_for(tmp_path).check(b"explode")
    assert decision.verdict == "review"
    assert [f.code for f in decision.failures] == ["unavailable"]


def test_a_policy_that_does_not_load_raises_with_diagnostics(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError) as info:
        moderator_for(tmp_path, "version: 1\nname: broken\nrules:\n  - id: x\n")
    assert info.value.diagnostics
    assert all(d.file.endswith("policy.yaml") for d in info.value.diagnostics)


class CachableDetector(CountingDetector):
    """Returns its raw answer and parses it back, so that a cache can answer for it."""

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        result = super().detect(image, context)
        raw = {"Violence": result.labels[0].confidence}
        return DetectorResult(self.name, result.labels, result.metadata, raw=raw)

    def parse(self, raw: Any) -> DetectorResult:
        return DetectorResult(self.name, (Label("Violence", raw["Violence"], self.name),))


def test_an_s3_uri_without_a_version_is_never_answered_from_the_cache(tmp_path: Path) -> None:
    # The object behind the URI may be overwritten between two checks: a detector
    # that cannot say which bytes it read (no identify) must be asked every time.
    detector = CachableDetector()
    store = tmp_path / "rec"
    moderator = moderator_for(tmp_path, detector=detector, cache=store, record=store)

    for _ in range(2):
        assert moderator.check("s3://bucket/fight.jpg").verdict == "block"

    assert detector.calls == 2
    assert not store.exists() or list(store.iterdir()) == []
    for _ in range(2):  # bytes name themselves: the cache answers the second
        assert moderator.check(b"fight").verdict == "block"
    assert detector.calls == 3


class UnreachableDetector(CountingDetector):
    """A detector whose service cannot be reached while ``reachable`` is False."""

    reachable = True

    def preflight(self, context: DetectContext) -> None:
        if not self.reachable:
            raise DetectorError("no AWS credentials: set `profile`", code="no-credentials")


def test_a_detector_that_cannot_be_called_fails_the_moderator_at_construction(
    tmp_path: Path,
) -> None:
    detector = UnreachableDetector()
    detector.reachable = False

    with pytest.raises(DetectorUnavailableError) as raised:
        moderator_for(tmp_path, detector=detector)

    assert raised.value.code == "no-credentials" and raised.value.detector == "counting"
    assert detector.calls == 0


def test_a_reload_whose_detector_cannot_be_called_keeps_the_old_policy(tmp_path: Path) -> None:
    detector = UnreachableDetector()
    moderator = moderator_for(tmp_path, detector=detector)
    before = moderator.serving
    detector.reachable = False

    result = moderator.reload(write(tmp_path / "strict.yaml", STRICT))

    assert not result.ok and moderator.serving is before
    assert [d.code for d in result.diagnostics] == ["no-credentials"]
    assert "cannot be called" in (result.error or "")


# -- hot reload ---------------------------------------------------------------


def test_reload_swaps_the_policy_and_names_both_digests(tmp_path: Path) -> None:
    moderator = moderator_for(tmp_path)
    old = moderator.policy_digest
    assert moderator.check(b"x").verdict == "review"

    result = moderator.reload(write(tmp_path / "strict.yaml", STRICT))

    assert result.ok and result.changed
    assert (result.previous_digest, result.digest) == (old, moderator.policy_digest)
    assert result.name == "strict"
    assert moderator.check(b"x").verdict == "block"
    assert moderator.check(b"x").policy_digest == result.digest
    assert result.to_dict()["policy"] == {"name": "strict", "digest": result.digest}


def test_reload_rereads_the_same_file_by_default(tmp_path: Path) -> None:
    moderator = moderator_for(tmp_path)
    unchanged = moderator.reload()
    assert unchanged.ok and not unchanged.changed
    write(tmp_path / "policy.yaml", STRICT)
    assert moderator.reload().changed
    assert moderator.policy_name == "strict"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("version: 1\nname: broken\nrules: [\n", "yaml-syntax"),
        ("version: 1\nname: broken\nrules:\n  - id: x\n", None),
        ("version: 1\nname: nodetectors\nrules: []\n", "no-detectors"),
        ("version: 1\nname: unknown\ndetectors: {nope: {}}\nrules: []\n", "unknown-detector"),
        ('version: 1\nname: lone\ndescription: "\\ud800"\nrules: []\n', "encoding"),
    ],
)
def test_a_reload_that_fails_keeps_the_old_policy_serving(
    tmp_path: Path, text: str, code: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    moderator = moderator_for(tmp_path)
    before = moderator.serving
    broken = write(tmp_path / "broken.yaml", text)

    with caplog.at_level(logging.ERROR, logger="policy_engine.moderator"):
        result = moderator.reload(broken)

    assert not result.ok and not result.changed
    assert result.digest == before.digest == moderator.policy_digest
    assert moderator.serving is before
    assert result.error
    assert result.diagnostics
    assert all(d.severity == "error" and d.file == str(broken) for d in result.diagnostics)
    if code is not None:
        assert code in {d.code for d in result.diagnostics}
    assert "still serving" in caplog.text
    assert moderator.check(b"x").verdict == "review"  # the old policy decides


def test_a_reload_that_fails_unexpectedly_still_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moderator = moderator_for(tmp_path)
    before = moderator.serving

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    monkeypatch.setattr("policy_engine.moderator._load_engine", broken)
    result = moderator.reload()
    assert not result.ok and moderator.serving is before
    assert [d.code for d in result.diagnostics] == ["load-failed"]


def test_check_refuses_a_fifo_and_an_oversized_file_without_reading_them(
    tmp_path: Path,
) -> None:
    import os

    from policy_engine.errors import InputFileError

    moderator = moderator_for(tmp_path)
    fifo = tmp_path / "upload.png"
    os.mkfifo(fifo)
    with pytest.raises(InputFileError, match="FIFO"):
        moderator.check(fifo)
    with pytest.raises(InputFileError, match="character device"):
        moderator.check("/dev/zero")
    big = tmp_path / "big.png"
    with big.open("wb") as stream:
        stream.truncate(moderator.serving.engine.max_image_bytes + 1)
    with pytest.raises(InputFileError, match="over the"):
        moderator.check(big)


def test_reload_of_a_missing_file_keeps_the_old(tmp_path: Path) -> None:
    moderator = moderator_for(tmp_path)
    result = moderator.reload(tmp_path / "missing.yaml")
    assert not result.ok
    assert [d.code for d in result.diagnostics] == ["unreadable"]


def test_concurrent_checks_see_one_policy_or_the_other_never_a_mix(tmp_path: Path) -> None:
    lenient = write(tmp_path / "lenient.yaml", LENIENT)
    strict = write(tmp_path / "strict.yaml", STRICT)
    moderator = moderator_for(tmp_path, LENIENT, detector=CountingDetector(threading.Event()))
    digests = {
        "lenient": moderator.policy_digest,
        "strict": moderator.reload(strict).digest,
    }
    expected = {digests["lenient"]: "review", digests["strict"]: "block"}
    seen: list[tuple[str, str, str]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def checker() -> None:
        try:
            while not stop.is_set():
                decision = moderator.check(b"x")
                seen.append((decision.policy_digest, decision.policy_name, decision.verdict))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=checker) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        for index in range(40):
            result = moderator.reload(lenient if index % 2 else strict)
            assert result.ok
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert errors == []
    assert len(seen) > 8
    assert {digest for digest, _, _ in seen} <= set(expected)
    for digest, name, verdict in seen:
        assert digests[name] == digest  # the record names the policy that decided
        assert expected[digest] == verdict  # and that policy's verdict, never the other's


# -- asyncio ------------------------------------------------------------------


def test_acheck_decides_many_at_once_within_the_concurrency(tmp_path: Path) -> None:
    detector = CountingDetector(threading.Event())
    moderator = moderator_for(tmp_path, detector=detector, concurrency=4)
    inputs = [b"calm", b"fight", b"x"] * 20

    async def check_all() -> list[Any]:
        return await asyncio.gather(
            *(moderator.acheck(data, context={"n": i}) for i, data in enumerate(inputs))
        )

    decisions = asyncio.run(check_all())
    moderator.close()

    expected = {b"calm": "allow", b"fight": "block", b"x": "review"}
    assert [d.verdict for d in decisions] == [expected[data] for data in inputs]
    assert detector.calls == len(inputs)
    assert 1 <= detector.most_in_flight <= 4


def test_acheck_after_close_is_an_error(tmp_path: Path) -> None:
    with moderator_for(tmp_path) as moderator:
        assert asyncio.run(moderator.acheck(b"calm")).verdict == "allow"
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(moderator.acheck(b"calm"))
    assert moderator.check(b"calm").verdict == "allow"  # the blocking call still works


# -- hooks --------------------------------------------------------------------


def test_hooks_are_called_once_per_decision_with_the_event(tmp_path: Path) -> None:
    recorder = Recorder()
    moderator = moderator_for(tmp_path, plugins=[recorder])

    first = moderator.check(b"fight", context={"upload_id": "u-1"}, name="upload u-1")
    second = moderator.check(b"calm")

    assert len(recorder.events) == 2
    event = recorder.events[0]
    assert event.decision is first
    assert recorder.events[1].decision is second
    assert event.input == "upload u-1"
    assert event.key == hashlib.sha256(b"fight").hexdigest()
    assert dict(event.context) == {"upload_id": "u-1"}
    assert event.shadow is None and not event.disagrees
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event.time)
    assert datetime.fromisoformat(event.time).tzinfo is not None
    assert recorder.events[1].input == "<bytes>"
    assert dict(recorder.events[1].context) == {}


class SlowDetector(CachableDetector):
    """Takes at least ``pause`` seconds per call; ``b"unsent"`` fails before sending."""

    pause: ClassVar[float] = 0.05

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        if image.data == b"unsent":
            raise DetectorError("no credentials", code="no-credentials", sent=False)
        threading.Event().wait(self.pause)
        return super().detect(image, context)


class StuckDetector(SlowDetector):
    """A call far longer than any time limit a test sets."""

    pause: ClassVar[float] = 0.5


def test_the_event_says_what_each_detector_call_cost(tmp_path: Path) -> None:
    recorder = Recorder()
    store = tmp_path / "rec"
    moderator = moderator_for(
        tmp_path, detector=SlowDetector(), plugins=[recorder], cache=store, record=store
    )

    for upload in (b"fight", b"fight", b"explode", b"unsent", b""):
        moderator.check(upload)

    called, cached, failed, unsent, empty = (e.detector_calls for e in recorder.events)
    (call,) = called
    assert (call.detector, call.cached, call.called, call.error_code) == (
        "counting", False, True, None
    )
    assert call.seconds >= SlowDetector.pause
    (hit,) = cached  # the same bytes again: the recording answers, nothing is sent
    assert (hit.cached, hit.called, hit.error_code) == (True, False, None)
    assert hit.seconds < call.seconds
    assert [(c.called, c.error_code) for c in failed] == [(True, "unavailable")]
    assert [(c.called, c.error_code) for c in unsent] == [(False, "no-credentials")]
    assert [(c.called, c.error_code, c.seconds) for c in empty] == [(False, "empty-image", 0.0)]
    assert [(e.calls, e.cache_hits) for e in recorder.events] == [
        (1, 0), (0, 1), (1, 0), (0, 0), (0, 0)
    ]


def test_a_rate_limits_wait_is_not_timed_as_the_detectors(tmp_path: Path) -> None:
    recorder = Recorder()
    moderator = moderator_for(tmp_path, detector=SlowDetector(), plugins=[recorder], rate=1)
    started = time.perf_counter()
    for upload in (b"calm", b"fight"):  # the second waits about a second for its slot
        moderator.check(upload)
    waited = time.perf_counter() - started
    seconds = [call.seconds for e in recorder.events for call in e.detector_calls]
    # a 0.05 s call timed with the wait would take 0.95 s or more; the bound leaves
    # a loaded machine 0.7 s of slack on the call itself
    assert waited >= 1.0 and all(SlowDetector.pause <= s < 0.75 for s in seconds), seconds


def test_a_detector_past_its_time_limit_is_timed_as_a_timeout(tmp_path: Path) -> None:
    recorder = Recorder()
    moderator = moderator_for(
        tmp_path, detector=StuckDetector(), plugins=[recorder], detector_timeout=0.01
    )
    assert moderator.check(b"fight").verdict == "review"
    (call,) = recorder.events[0].detector_calls
    assert (call.called, call.error_code) == (True, "timeout")
    assert 0.01 <= call.seconds < StuckDetector.pause  # the time limit's, not the call's


def test_the_context_is_copied_at_the_check(tmp_path: Path) -> None:
    recorder = Recorder()
    moderator = moderator_for(tmp_path, plugins=[recorder])
    context = {"upload_id": "u-1"}
    moderator.check(b"calm", context=context)
    context["upload_id"] = "changed"
    assert recorder.events[0].context["upload_id"] == "u-1"
    with pytest.raises(TypeError):
        recorder.events[0].context["x"] = 1  # type: ignore[index]


def test_a_failing_hook_never_changes_the_decision_nor_stops_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before, after = Recorder(), Recorder()
    moderator = moderator_for(tmp_path, plugins=[before, Exploding(), after])

    with caplog.at_level(logging.ERROR, logger="policy_engine.moderator"):
        decision = moderator.check(b"fight")

    assert decision.verdict == "block"
    assert len(before.events) == len(after.events) == 1
    assert "the hook is broken" in caplog.text
    assert "policy_engine_decision_made hook of plugin" in caplog.text


def test_a_failing_hookwrapper_is_logged_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def policy_engine_decision_made(self, event: DecisionEvent) -> Any:
            yield
            raise RuntimeError("the wrapper is broken")

    recorder = Recorder()
    moderator = moderator_for(tmp_path, plugins=[recorder, Wrapper()])
    with caplog.at_level(logging.ERROR, logger="policy_engine.moderator"):
        assert moderator.check(b"calm").verdict == "allow"
    assert len(recorder.events) == 1
    assert "the wrapper is broken" in caplog.text


def test_a_misspelt_hook_is_an_error_at_construction(tmp_path: Path) -> None:
    class Misspelt:
        @hookimpl
        def policy_engine_decision_mad(self, event: DecisionEvent) -> None:
            pass

    with pytest.raises(Exception, match="policy_engine_decision_mad"):
        moderator_for(tmp_path, plugins=[Misspelt()])


# -- shadow evaluation --------------------------------------------------------


def test_shadow_decides_the_same_labels_with_one_detector_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    detector = CountingDetector()
    recorder = Recorder()
    candidate = write(tmp_path / "candidate.yaml", STRICT)
    moderator = moderator_for(tmp_path, detector=detector, shadow=candidate, plugins=[recorder])

    with caplog.at_level(logging.WARNING, logger="policy_engine.shadow"):
        disagreeing = moderator.check(b"x", name="u-disagree")
        agreeing = moderator.check(b"fight", name="u-agree")

    assert detector.calls == 2  # one per image, not one per policy
    assert (disagreeing.verdict, agreeing.verdict) == ("review", "block")
    first, second = recorder.events
    assert first.shadow is not None and second.shadow is not None
    assert first.shadow.verdict == "block" and first.disagrees
    assert first.shadow.labels == first.decision.labels  # the same labels
    assert first.shadow.policy_name == "strict"
    assert first.shadow.policy_digest == moderator.serving.shadow_digest
    assert not second.disagrees
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "u-disagree" in message and "review" in message and "block" in message
    assert first.decision.policy_digest in message and first.shadow.policy_digest in message


def test_shadow_sees_the_active_policys_detector_failures(tmp_path: Path) -> None:
    recorder = Recorder()
    candidate = write(
        tmp_path / "candidate.yaml", policy_text("fails-closed", 90, on_error="block")
    )
    moderator = moderator_for(tmp_path, shadow=candidate, plugins=[recorder])
    assert moderator.check(b"explode").verdict == "review"
    shadow = recorder.events[0].shadow
    assert shadow is not None and shadow.verdict == "block"
    assert [f.code for f in shadow.failures] == ["unavailable"]


def test_a_candidate_that_does_not_load_is_an_error_at_construction(tmp_path: Path) -> None:
    broken = write(tmp_path / "candidate.yaml", "version: 1\nname: c\nrules:\n  - id: x\n")
    with pytest.raises(ShadowPolicyError) as info:
        moderator_for(tmp_path, shadow=broken)
    assert str(broken) in str(info.value)
    assert "shadow" in str(info.value)
    assert info.value.diagnostics
    assert isinstance(info.value, PolicyLoadError)


def test_reload_keeps_reloads_or_drops_the_shadow(tmp_path: Path) -> None:
    candidate = write(tmp_path / "candidate.yaml", STRICT)
    moderator = moderator_for(tmp_path, shadow=candidate)
    strict_digest = moderator.serving.shadow_digest
    assert strict_digest is not None

    write(candidate, policy_text("stricter", 51))
    reloaded = moderator.reload()
    assert reloaded.ok and reloaded.shadow_digest not in (None, strict_digest)

    write(candidate, "not: [a policy")
    failed = moderator.reload()
    assert not failed.ok
    assert failed.shadow_digest == reloaded.shadow_digest
    assert all(d.file == str(candidate) for d in failed.diagnostics)

    dropped = moderator.reload(shadow=None)
    assert dropped.ok and dropped.shadow_digest is None
    assert moderator.serving.shadow is None


def test_a_shadow_that_fails_to_evaluate_never_costs_the_decision(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    candidate = write(tmp_path / "candidate.yaml", STRICT)
    moderator = moderator_for(tmp_path, shadow=candidate, plugins=[recorder])
    shadow = moderator.serving.shadow
    assert shadow is not None

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("candidate bug")

    shadow.evaluate = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="policy_engine.moderator"):
        assert moderator.check(b"fight").verdict == "block"
    assert recorder.events[0].shadow is None
    assert "candidate bug" in caplog.text


# -- the README's example -----------------------------------------------------


def test_readme_moderator_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    (block,) = [b for b in blocks if "moderator.acheck" in b]
    monkeypatch.chdir(ROOT)
    log = tmp_path / "audit.jsonl"
    code = block.replace('"audit.jsonl"', repr(str(log)))
    namespace: dict[str, Any] = {
        "upload_bytes": (ROOT / "examples/images/knife-fight.jpg").read_bytes()
    }
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["decision"].verdict == "block"
    assert namespace["result"].ok
    handled = Moderator.from_policy_file(
        "policies/general-ugc.yaml",
        detectors={"stub": {"recordings": str(ROOT / "examples" / "recordings")}},
    )
    namespace["moderator"] = handled  # the example closed its own
    assert asyncio.run(namespace["handle"](namespace["upload_bytes"])) == "block"
    handled.close()
    assert log.read_text(encoding="utf-8").count("\n") >= 1


# -- the policy's linter findings (POLICY_SPEC 7) ------------------------------------


class TaxonomyDetector(CountingDetector):
    """A counting detector whose labels have a taxonomy: their names can be checked."""

    TAXONOMY = Taxonomy("counting/v1", (TaxonomyEntry("Violence"), TaxonomyEntry("Explicit")))

    def taxonomies(self) -> tuple[Taxonomy, ...]:
        return (self.TAXONOMY,)

    def taxonomy(self, model_version: str | None) -> Taxonomy | None:
        return self.TAXONOMY


def test_the_moderator_refuses_a_policy_with_an_unknown_name(tmp_path: Path) -> None:
    # the rule would be switched off in silence: an explicit image allowed
    text = LENIENT.replace("{name: Violence}", "{name: Violense}")
    with pytest.raises(PolicyLoadError) as raised:
        moderator_for(tmp_path, text, detector=TaxonomyDetector())
    assert [(d.code, d.line) for d in raised.value.diagnostics] == [("unknown-name", 7)]
    assert "did you mean 'Violence'?" in raised.value.diagnostics[0].message


def test_reload_of_a_policy_with_an_unknown_name_keeps_the_old(tmp_path: Path) -> None:
    moderator = moderator_for(tmp_path, detector=TaxonomyDetector())
    old = moderator.policy_digest
    write(tmp_path / "policy.yaml", STRICT.replace("{name: Violence}", "{name: Violense}"))

    result = moderator.reload()

    assert not result.ok and result.digest == old == moderator.policy_digest
    assert [d.code for d in result.diagnostics] == ["unknown-name"]


def test_the_moderator_logs_every_warning_of_its_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = LENIENT.replace("on_error: review", "on_error: allow")
    with caplog.at_level(logging.WARNING, logger="policy_engine.moderator"):
        moderator = moderator_for(tmp_path, text, detector=TaxonomyDetector())
        logged = [r.getMessage() for r in caplog.records if r.name == "policy_engine.moderator"]
        assert logged == [d.render() for d in moderator.serving.warnings]
        assert len(logged) == 1 and "warning[on-error-allow]" in logged[0]
        caplog.clear()
        write(tmp_path / "policy.yaml", text.replace("review_at: 50", "review_at: 40"))
        result = moderator.reload()
    assert result.ok
    logged = [r.getMessage() for r in caplog.records if r.name == "policy_engine.moderator"]
    warned = [m for m in logged if "warning[" in m]
    assert [re.search(r"warning\[([a-z-]+)\]", m).group(1) for m in warned] == [  # type: ignore[union-attr]
        "on-error-allow",
        "threshold-below-floor",
    ]


def test_an_image_name_holding_a_secret_is_redacted_in_every_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Failing:
        @hookimpl
        def policy_engine_decision_made(self, event: DecisionEvent) -> None:
            raise RuntimeError("boom")

    candidate = write(tmp_path / "strict.yaml", STRICT)
    moderator = moderator_for(tmp_path, LENIENT, shadow=candidate, plugins=[Failing()])
    name = (
        "https://b.s3.amazonaws.com/k.png?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F1"
        "&X-Amz-Signature=SECRETsig"
    )
    with caplog.at_level(logging.WARNING):
        moderator.check(b"60", name=name)  # lenient reviews, strict blocks: they disagree
    assert "shadow disagreement" in caplog.text and "hook" in caplog.text
    assert "SECRETsig" not in caplog.text and "AKIAIOSFODNN7EXAMPLE" not in caplog.text


def test_from_policy_file_takes_exactly_the_constructors_parameters(tmp_path: Path) -> None:
    """One list of options: the alternative name shows (and passes) the constructor's."""
    constructor = inspect.signature(Moderator)
    alias = inspect.signature(Moderator.from_policy_file)
    assert list(alias.parameters.values()) == list(constructor.parameters.values())
    moderator = moderator_for(tmp_path, concurrency=3, detector_timeout=5.0)
    assert moderator._options.concurrency == 3 and moderator._options.detector_timeout == 5.0
