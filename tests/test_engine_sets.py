"""An engine over a policy set: one detector pass per image for every route,
asked at the set's lowest floor, then routed by the caller's context."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

import pytest
from test_policy_set import ARTWORK, LENIENT, SET, STRICT

from policy_engine import DetectContext, Detector, DetectorResult, Image, Label
from policy_engine.engine import Engine
from policy_engine.errors import ContextError
from policy_engine.model import Verdict
from policy_engine.plugins import DetectorRegistry, RegisteredDetector
from policy_engine.policy_set import SetDecision, load_policy_set


class Counting(Detector):
    """Answers Violence 70 and counts its calls and the floors it was asked at."""

    remote: ClassVar[bool] = False

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]
        self.calls = 0
        self.floors: list[float] = []
        self._lock = threading.Lock()

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        with self._lock:
            self.calls += 1
            self.floors.append(context.min_confidence)
        return DetectorResult(self.name, (Label("Violence", 70.0, self.name),))


def _set_engine(tmp_path: Path) -> tuple[Engine, Counting, Counting]:
    a, b = Counting("a"), Counting("b")
    registry = DetectorRegistry([RegisteredDetector(a, "test"), RegisteredDetector(b, "test")])
    for name, text in (("strict", STRICT), ("lenient", LENIENT), ("artwork", ARTWORK)):
        (tmp_path / f"{name}.yaml").write_text(text)
    (tmp_path / "community.set.yaml").write_text(SET)
    policy_set = load_policy_set(tmp_path / "community.set.yaml", registry=registry)
    return Engine(policy_set, registry), a, b


def test_one_detector_pass_per_image_decides_every_route(tmp_path: Path) -> None:
    engine, a, b = _set_engine(tmp_path)
    results, failures = engine.detect(Image(data=b"x", name="x"))
    assert (a.calls, b.calls) == (1, 1)
    assert a.floors == [40.0]  # the set's lowest floor (strict's)
    teen = engine.decide_in(results, failures, {"surface": "feed", "audience": "teen"})
    adult = engine.decide_in(results, failures, {"surface": "feed"})
    assert isinstance(teen, SetDecision) and isinstance(adult, SetDecision)
    assert teen.route.policy.name == "strict" and teen.verdict is Verdict.BLOCK
    assert adult.route.policy.name == "lenient" and adult.verdict is Verdict.ALLOW
    assert teen.to_dict()["context"] == {"surface": "feed", "audience": "teen"}
    assert (a.calls, b.calls) == (1, 1)  # routing calls no detector


def test_a_missing_or_unknown_dimension_is_an_error_before_any_call(tmp_path: Path) -> None:
    engine, a, _ = _set_engine(tmp_path)
    image = Image(data=b"x", name="x")
    with pytest.raises(ContextError) as missing:
        engine.check_in(image, {"audience": "teen"})
    assert missing.value.dimension == "surface"
    with pytest.raises(ContextError):
        engine.check_in(image, {"surface": "billboard"})
    assert a.calls == 0  # a bad context costs no detector call
    with pytest.raises(ContextError):  # no context at all: never an allow
        engine.check(image)


def test_a_plain_policy_engine_ignores_the_context(tmp_path: Path) -> None:
    a = Counting("a")
    registry = DetectorRegistry([RegisteredDetector(a, "test")])
    (tmp_path / "strict.yaml").write_text(STRICT)
    engine = Engine.from_policy_file(tmp_path / "strict.yaml", registry)
    decided = engine.check_in(Image(data=b"x", name="x"), {"surface": "anything"})
    assert not isinstance(decided, SetDecision) and decided.verdict is Verdict.BLOCK
    assert engine.policy.name == "strict"


def test_set_decisions_moved_to_the_runs_index_on_disk_come_back_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policy_engine import decided_index
    from policy_engine.batch import InputItem, check_many

    monkeypatch.setattr(decided_index, "RECENT", 2)  # most decisions move to disk
    engine, a, _ = _set_engine(tmp_path)
    contexts = [{"surface": "feed", "audience": "teen"}, {"surface": "feed"}]
    inputs = [
        InputItem(
            f"{n}-{i}",
            load=lambda i=i: Image(data=str(i).encode(), name=str(i)),
            context=contexts[i % 2],
        )
        for n in ("first", "again")
        for i in range(12)
    ]
    results = list(check_many(engine, inputs, concurrency=2, ordered=True))
    assert a.calls == 12  # each image decided once; its copy came from the index
    originals, copies = results[:12], results[12:]
    assert all(copy.duplicate and copy.routed is not None for copy in copies)
    for original, copy in zip(originals, copies, strict=True):
        record = {k: v for k, v in copy.to_dict().items() if k not in ("input", "duplicate")}
        assert record == {k: v for k, v in original.to_dict().items() if k != "input"}
