"""Batch checking: bounded concurrency, one call per distinct image, streaming,
the cache and the record, and inputs that fail without losing the others."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from policy_engine import DetectContext, Detector, DetectorResult, Image, Label, parse_policy
from policy_engine.batch import CheckResult, InputItem, check_many, expand_inputs
from policy_engine.engine import Engine
from policy_engine.plugins import DetectorRegistry, RegisteredDetector
from policy_engine.recordings import RecordingStore

POLICY = (
    "version: 1\nname: batch\ndetectors: {remote: {}}\n"
    "rules:\n  - id: violence\n    match: {name: Violence}\n    review_at: 50\n    block_at: 90\n"
)


class RemoteDetector(Detector):
    """Looks up a confidence by image bytes; counts calls and the most in flight."""

    name: ClassVar[str] = "remote"

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[bytes] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()
        self.gate = gate

    def recognizes(self, raw: Mapping[str, Any]) -> bool:
        return "Remote" in raw

    def parse(self, raw: Mapping[str, Any]) -> DetectorResult:
        labels = tuple(Label("Violence", c, self.name) for c in raw["Remote"])
        return DetectorResult(self.name, labels, raw=raw)

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        with self.lock:
            self.calls.append(image.data or b"")
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None and image.data == b"slow":
                assert self.gate.wait(5), "the test never opened the gate"
            if image.data == b"explode":
                raise RuntimeError("boom")
            confidence = {b"calm": 10.0, b"fight": 95.0}.get(image.data or b"", 60.0)
            return self.parse({"Remote": [confidence]})
        finally:
            with self.lock:
                self.in_flight -= 1


def engine_for(detector: Detector, **options: Any) -> Engine:
    registry = DetectorRegistry([RegisteredDetector(detector, "test")])
    return Engine(parse_policy(POLICY, registry=registry), registry, **options)


def items(*contents: bytes) -> list[InputItem]:
    return [InputItem(f"img{i}", load=_image(f"img{i}", c)) for i, c in enumerate(contents)]


def _image(name: str, content: bytes) -> Any:
    return lambda: Image(name, content)


def test_every_input_gets_its_decision() -> None:
    results = list(check_many(engine_for(RemoteDetector()), items(b"calm", b"fight", b"x")))
    decided = {r.input: r.decision.verdict.value for r in results if r.decision}
    assert decided == {"img0": "allow", "img1": "block", "img2": "review"}


def test_no_more_than_concurrency_images_are_checked_at_once() -> None:
    detector = RemoteDetector()
    contents = [str(i).encode() for i in range(60)]
    results = list(check_many(engine_for(detector), items(*contents), concurrency=3))
    assert len(results) == 60
    assert 1 <= detector.most_in_flight <= 3


def test_identical_images_call_the_detector_once() -> None:
    detector = RemoteDetector()
    engine = engine_for(detector)
    results = list(check_many(engine, items(b"fight", b"calm", b"fight", b"fight"), concurrency=4))
    assert sorted(detector.calls) == [b"calm", b"fight"]
    assert engine.counter.calls == 2
    duplicates = [r for r in results if r.duplicate]
    assert len(duplicates) == 2
    assert {r.decision.verdict.value for r in duplicates if r.decision} == {"block"}


def test_results_stream_in_completion_order_unless_ordered() -> None:
    gate = threading.Event()
    detector = RemoteDetector(gate)
    stream = check_many(engine_for(detector), items(b"slow", b"calm"), concurrency=2)
    first = next(stream)  # the fast image comes out while the slow one is still held
    assert first.input == "img1"
    gate.set()
    assert [r.input for r in stream] == ["img0"]

    ordered = check_many(
        engine_for(RemoteDetector()), items(b"x", b"calm", b"fight"), concurrency=3, ordered=True
    )
    assert [r.input for r in ordered] == ["img0", "img1", "img2"]


def test_a_failing_input_or_detector_loses_nothing_else(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    good.write_bytes(b"fight")
    inputs = [
        *expand_inputs([str(good), str(tmp_path / "missing.png")]),
        *items(b"explode"),
    ]
    results = {r.input: r for r in check_many(engine_for(RemoteDetector()), inputs)}
    assert results[str(good)].decision is not None
    assert results[str(good)].decision.verdict.value == "block"
    assert results[str(tmp_path / "missing.png")].error == "no such file or folder"
    exploded = results["img0"].decision
    assert exploded is not None and exploded.verdict.value == "review"  # on_error
    assert exploded.failures[0].code == "plugin-exception"


def test_inputs_are_read_ahead_boundedly_and_closing_stops_the_run() -> None:
    consumed = 0

    def endless() -> Iterator[InputItem]:
        nonlocal consumed
        while True:
            consumed += 1
            yield InputItem(f"img{consumed}", load=lambda: Image("x", b"calm"))

    stream = check_many(engine_for(RemoteDetector()), endless(), concurrency=2)
    for _ in range(5):
        next(stream)
    assert consumed <= 5 + 2 * 2 + 1  # what was yielded plus the read-ahead window
    stream.close()


class Gated(RemoteDetector):
    """Every call waits for the gate."""

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        with self.lock:
            self.in_flight += 1
        try:
            assert self.gate is not None and self.gate.wait(10), "the gate never opened"
        finally:
            with self.lock:
                self.in_flight -= 1
        return super().detect(image, context)


@pytest.mark.parametrize("ordered", [False, True])
@pytest.mark.parametrize("inputs", [12, 4])  # 4: every input read before the stop
def test_stop_writes_what_is_in_flight_and_starts_nothing_more(ordered: bool, inputs: int) -> None:
    gate, stop = threading.Event(), threading.Event()
    detector = Gated(gate)
    contents = [str(i).encode() for i in range(inputs)]
    stream = check_many(
        engine_for(detector), items(*contents), concurrency=2, stop=stop, ordered=ordered
    )
    results: list[CheckResult] = []
    collector = threading.Thread(target=lambda: results.extend(stream))
    collector.start()
    deadline = time.monotonic() + 10
    while detector.in_flight < 2:
        assert time.monotonic() < deadline, "the run never started two calls"
        time.sleep(0.005)

    stop.set()  # before the calls in flight finish: what starts after it sees it
    gate.set()
    collector.join(10)

    assert not collector.is_alive()
    assert 2 <= len(detector.calls) < len(contents)  # queued inputs were dropped
    assert len(results) == len(detector.calls)  # every call made was written
    assert all(r.decision is not None for r in results)


def test_a_paused_input_source_never_holds_back_results() -> None:
    """Inputs are read on a thread of their own: while the source waits (a pipe
    with nothing more yet), what is decided comes out; a stop ends the run."""
    resume, stop = threading.Event(), threading.Event()

    def paused_after_two() -> Iterator[InputItem]:
        yield from items(b"calm", b"fight")
        resume.wait(10)  # a producer with nothing more to say, for now
        yield from items(b"late")

    stream = check_many(engine_for(RemoteDetector()), paused_after_two(), stop=stop)
    decided = {next(stream).input, next(stream).input}
    stop.set()
    rest = list(stream)  # ends although the source is still paused
    resume.set()

    assert decided == {"img0", "img1"} and rest == []


def test_a_stop_between_two_detectors_keeps_the_image_whose_first_call_was_paid() -> None:
    from policy_engine.errors import RunStopped
    from policy_engine.ratelimit import RateLimiter

    class Second(RemoteDetector):
        name: ClassVar[str] = "second"

    first, second = RemoteDetector(), Second()
    registry = DetectorRegistry([RegisteredDetector(d, "test") for d in (first, second)])
    # the cascade would skip second once remote blocks: this is about a stop between calls
    both = POLICY.replace("{remote: {}}", "{remote: {}, second: {}}\ncascade: {skip: false}")
    policy = parse_policy(both, registry)
    stop = threading.Event()
    engine = Engine(policy, registry, rate_limit=RateLimiter(0.1, stop=stop))  # 10 s a slot
    threading.Timer(0.2, stop.set).start()

    decision = engine.check(Image("a", b"fight"))  # remote's call goes out; second's waits

    assert first.calls == [b"fight"] and second.calls == []
    assert [(f.source, f.code) for f in decision.failures] == [("second", "stopped")]
    assert decision.verdict.value == "block"  # remote's labels still count
    with pytest.raises(RunStopped):
        engine.check(Image("b", b"calm"))  # nothing of it was asked: no decision at all


def test_a_loader_that_fails_costs_that_input_only() -> None:
    def broken() -> Image:
        raise ValueError("bad header in the listing")

    inputs = [InputItem("broken", load=broken), *items(b"calm")]
    results = {r.input: r for r in check_many(engine_for(RemoteDetector()), inputs)}
    assert results["broken"].error == "cannot read: ValueError: bad header in the listing"
    assert results["img0"].decision is not None


def test_a_pool_that_refuses_work_ends_the_run_with_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a hang: e.g. at interpreter shutdown, the pool refuses new work."""
    import policy_engine.batch as batch

    class Refusing(batch.ThreadPoolExecutor):
        taken = 0

        def submit(self, *args: Any, **kwargs: Any) -> Any:
            Refusing.taken += 1
            if Refusing.taken > 2:
                raise RuntimeError("cannot schedule new futures after shutdown")
            return super().submit(*args, **kwargs)

    monkeypatch.setattr(batch, "ThreadPoolExecutor", Refusing)
    seen: list[CheckResult] = []
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            seen.extend(check_many(engine_for(RemoteDetector()), items(b"1", b"2", b"3", b"4")))
        except RuntimeError as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    runner.join(10)
    assert not runner.is_alive(), "the run hung"
    assert len(seen) == 2 and "after shutdown" in str(outcome[0])


def test_cache_answers_what_record_stored_without_calling(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "rec")
    first = RemoteDetector()
    recorded = list(check_many(engine_for(first, record=store), items(b"fight", b"calm")))
    assert len(first.calls) == 2
    assert len(list((tmp_path / "rec").glob("*.json"))) == 2

    second = RemoteDetector()
    engine = engine_for(second, cache=store)
    replayed = list(check_many(engine, items(b"fight", b"calm", b"new")))
    assert second.calls == [b"new"]  # only the image the cache does not know
    assert (engine.counter.calls, engine.counter.cached) == (1, 2)

    def decisions(results: list[CheckResult]) -> dict[str, str]:
        return {r.input: r.decision.verdict.value for r in results if r.decision}

    assert {k: v for k, v in decisions(replayed).items() if k != "img2"} == decisions(recorded)


def test_cache_is_keyed_by_settings_and_floor(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    list(check_many(engine_for(RemoteDetector(), record=store), items(b"fight")))
    other_floor = RemoteDetector()
    registry = DetectorRegistry([RegisteredDetector(other_floor, "test")])
    policy = parse_policy(POLICY.replace("rules:", "min_confidence: 60\nrules:"), registry=registry)
    list(check_many(Engine(policy, registry, cache=store), items(b"fight")))
    assert other_floor.calls == [b"fight"]  # asked with another MinConfidence: not reused


class TransportAware(RemoteDetector):
    """``region`` and ``timeout`` only change how it is reached; ``model``
    changes what it answers. Finishes a stored answer from the settings."""

    transport_settings: ClassVar[frozenset[str]] = frozenset({"region", "timeout"})
    settings_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "properties": {"region": {}, "timeout": {}, "model": {}},
        "additionalProperties": False,
    }

    def from_stored(self, raw: Mapping[str, Any], context: DetectContext) -> DetectorResult:
        model = {"model": context.settings.get("model")}
        return dataclasses.replace(self.parse(raw), metadata=model)


def transport_engine(detector: Detector, settings: str, **options: Any) -> Engine:
    registry = DetectorRegistry([RegisteredDetector(detector, "test")])
    policy = POLICY.replace("{remote: {}}", f"{{remote: {settings}}}")
    return Engine(parse_policy(policy, registry=registry), registry, **options)


def test_cache_ignores_transport_settings_and_the_detector_finishes_a_hit(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    recorded_with = "{region: a, timeout: 1, model: m1}"
    list(check_many(transport_engine(TransportAware(), recorded_with, record=store), items(b"x")))

    moved = TransportAware()
    engine = transport_engine(moved, "{region: b, timeout: 9, model: m1}", cache=store)
    (result,) = check_many(engine, items(b"x"))
    assert moved.calls == [] and engine.counter.cached == 1  # same question, asked elsewhere
    assert result.decision is not None
    assert result.decision.to_dict()["detectors"] == {"remote": {"model": "m1", "from_cache": True}}

    other_model = TransportAware()
    list(check_many(transport_engine(other_model, "{model: m2}", cache=store), items(b"x")))
    assert other_model.calls == [b"x"]  # another question: asked again


def test_local_detectors_are_never_cached_nor_counted(tmp_path: Path) -> None:
    class Local(RemoteDetector):
        remote: ClassVar[bool] = False

    store = RecordingStore(tmp_path)
    detector = Local()
    engine = engine_for(detector, record=store, cache=store)
    list(check_many(engine, items(b"fight")))
    list(check_many(engine, items(b"fight")))
    assert len(detector.calls) == 2
    assert engine.counter.calls == 0
    assert not list(tmp_path.iterdir())


def test_uri_inputs_go_through_the_plugins_and_report_what_fails() -> None:
    def expand(spec: str) -> list[Image] | None:
        if spec.startswith("s3://broken"):
            raise PermissionError("AccessDenied")
        if spec.startswith("s3://"):
            return [Image(f"{spec}a.png", uri=f"{spec}a.png", size=10, version="e1")]
        return None

    found = list(expand_inputs(["s3://bucket/", "s3://broken/", "ftp://x/"], expand))
    assert [(i.name, i.problem) for i in found] == [
        ("s3://bucket/a.png", None),
        ("s3://broken/", "cannot list s3://broken/: AccessDenied"),
        ("ftp://x/", "no installed plugin reads ftp:// inputs"),
    ]
    image = found[0].load() if found[0].load else None
    assert image is not None and image.data is None and image.sha256 is None
    assert image.key == Image("other", uri="s3://bucket/a.png", version="e1").key
    assert image.key != Image("other", uri="s3://bucket/a.png", version="e2").key


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        list(check_many(engine_for(RemoteDetector()), [], concurrency=0))


def test_with_a_rate_limit_a_detector_prepares_once_before_any_call_and_calls_are_spaced() -> None:
    from policy_engine.ratelimit import RateLimiter

    prepared: list[tuple[float, float]] = []
    starts: list[float] = []
    lock = threading.Lock()

    class SlowToPrepare(RemoteDetector):
        def prepare(self, context: DetectContext) -> None:
            began = time.monotonic()
            time.sleep(0.2)  # building a client: longer than several slots
            prepared.append((began, time.monotonic()))

        def detect(self, image: Image, context: DetectContext) -> DetectorResult:
            with lock:
                starts.append(time.monotonic())
            return super().detect(image, context)

    limiter = RateLimiter(50, margin=0)
    engine = engine_for(SlowToPrepare(), rate_limit=limiter)
    contents = [str(i).encode() for i in range(12)]
    assert len(list(check_many(engine, items(*contents), concurrency=6))) == 12
    ((_, ready),) = prepared
    assert min(starts) >= ready  # no call waited inside a slot for the client
    # Every slot was taken after the client was ready, so the twelfth call is
    # eleven slots later (had slots passed while the client was built, the
    # calls after it would have gone out at once).
    assert max(starts) - ready >= 11 * limiter.interval * 0.99
    assert engine.counter.calls == 12


def test_a_stop_while_waiting_for_a_rate_slot_sends_nothing_more() -> None:
    from policy_engine.ratelimit import RateLimiter

    stop = threading.Event()
    detector = RemoteDetector()
    engine = engine_for(detector, rate_limit=RateLimiter(2, stop=stop))
    contents = [str(i).encode() for i in range(8)]
    stream = check_many(engine, items(*contents), concurrency=4, stop=stop)
    first = next(stream)  # the first call went out at once; three more wait for slots
    stop.set()
    rest = list(stream)

    assert first.decision is not None
    assert len(detector.calls) == 1 + len(rest) < len(contents)
    assert engine.counter.calls == len(detector.calls)  # counted only when sent


def test_an_unexpected_error_costs_one_image_not_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = engine_for(RemoteDetector())
    original = engine.check

    def sometimes_broken(image: Image) -> Any:
        if image.data == b"bug":
            raise KeyError("a bug in a plugin's taxonomy")
        return original(image)

    monkeypatch.setattr(engine, "check", sometimes_broken)
    results = {r.input: r for r in check_many(engine, items(b"calm", b"bug", b"fight"))}
    assert results["img1"].error == 'KeyError: "a bug in a plugin\'s taxonomy"'
    assert results["img0"].decision is not None and results["img2"].decision is not None


def test_an_image_refused_before_the_call_costs_no_call_and_no_rate_slot() -> None:
    from policy_engine.errors import DetectorError
    from policy_engine.ratelimit import RateLimiter

    class Picky(RemoteDetector):
        def precheck(self, image: Image, context: DetectContext) -> None:
            if image.data == b"gif":
                raise DetectorError("not JPEG or PNG", code="unsupported-image-format")

    slots: list[float] = []
    limiter = RateLimiter(1000, sleep=slots.append)
    detector = Picky()
    engine = engine_for(detector, rate_limit=limiter)
    results = {r.input: r for r in check_many(engine, items(b"gif", b"calm", b"gif2"))}
    assert sorted(detector.calls) == [b"calm", b"gif2"]
    assert engine.counter.calls == 2
    refused = results["img0"].decision
    assert refused is not None and refused.failures[0].code == "unsupported-image-format"
    assert refused.verdict.value == "review"  # on_error, never allow


def test_a_broken_cache_entry_is_a_miss_and_a_failing_store_never_fails_a_check() -> None:
    class Corrupt:
        def lookup(self, key: str, detector: str, settings: str) -> dict[str, Any]:
            return {"Remote": ["not a number"]}  # parse() refuses it

        def record(self, key: str, detector: str, settings: str, response: Any) -> None:
            raise OSError("the bucket is gone")

    detector = RemoteDetector()
    store = Corrupt()
    engine = engine_for(detector, cache=store, record=store)
    (result,) = check_many(engine, items(b"fight"))
    assert result.decision is not None and result.decision.verdict.value == "block"
    assert result.decision.failures == ()
    assert detector.calls == [b"fight"]  # the miss made the real call
    assert (engine.counter.calls, engine.counter.cached) == (1, 0)


def test_duplicates_far_apart_share_the_decision_from_the_index_on_disk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from policy_engine import decided_index

    monkeypatch.setattr(decided_index, "RECENT", 4)  # most decisions move to disk
    detector = RemoteDetector()
    engine = engine_for(detector)
    first = [str(i).encode() for i in range(30)] + [b"fight", b"calm"]
    results = list(check_many(engine, items(*first, *first), concurrency=2, ordered=True))
    assert sorted(detector.calls) == sorted(first)  # every distinct image sent once
    assert engine.counter.calls == len(first)
    originals, copies = results[: len(first)], results[len(first) :]
    assert all(copy.duplicate for copy in copies) and not any(o.duplicate for o in originals)
    for original, copy in zip(originals, copies, strict=True):
        record = {k: v for k, v in copy.to_dict().items() if k not in ("input", "duplicate")}
        assert record == {k: v for k, v in original.to_dict().items() if k != "input"}
