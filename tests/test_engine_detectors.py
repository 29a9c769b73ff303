"""The engine with detectors: isolation, invalid results, settings and floors handed on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from policy_builders import HEAD, IMAGE, TAXONOMY

from policy_engine import (
    Detector,
    DetectorRegistry,
    DetectorResult,
    Engine,
    Image,
    Label,
    Taxonomy,
    compile_policy,
    parse_policy,
)
from policy_engine.detectors import DetectContext
from policy_engine.errors import InvalidDetectorResult
from policy_engine.plugins import RegisteredDetector

# -- the engine ----------------------------------------------------------------------


class FixedDetector(Detector):
    """Returns the same labels for every image."""

    def __init__(self, name: str, labels: list[tuple[str, float]]) -> None:
        self.name = name  # type: ignore[misc]
        self.labels = labels

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        return DetectorResult(self.name, tuple(Label(n, c, self.name) for n, c in self.labels))


class RaisingDetector(Detector):
    def __init__(self, name: str, error: BaseException) -> None:
        self.name = name  # type: ignore[misc]
        self.error = error

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        raise self.error


class GarbageDetector(Detector):
    def __init__(self, name: str, garbage: Any) -> None:
        self.name = name  # type: ignore[misc]
        self.garbage = garbage

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        return self.garbage  # type: ignore[no-any-return]


def engine(text: str, *detectors: Detector) -> Engine:
    registry = DetectorRegistry([RegisteredDetector(d, "throwaway") for d in detectors])
    names = "".join(f"  {d.name}: {{}}\n" for d in detectors)
    return Engine(parse_policy(HEAD + "detectors:\n" + names + text), registry)


def test_engine_isolates_a_detector_that_raises() -> None:
    checker = engine(
        "rules:\n  - {id: k, match: {name: Knife}, block_at: 90}\n",
        RaisingDetector("broken", RuntimeError("kaboom")),
        FixedDetector("good", [("Knife", 95)]),
    )
    record = checker.check(IMAGE).to_dict()
    assert record["decision"] == "block"
    assert [(e["source"], e["code"]) for e in record["errors"]] == [("broken", "plugin-exception")]
    assert (
        "RuntimeError" in record["errors"][0]["error"] and "kaboom" in record["errors"][0]["error"]
    )
    assert [r["name"] for r in record["labels"]] == ["Knife"]


def test_engine_failure_yields_at_least_on_error() -> None:
    checker = engine(
        "rules: []\n",
        RaisingDetector("broken", RuntimeError("kaboom")),
        FixedDetector("good", [("Harmless", 95)]),
    )
    decision = checker.check(IMAGE)
    assert decision.verdict == "review"
    assert [r.rule for r in decision.reasons()] == ["on_error"]


def test_engine_detector_error_keeps_its_code() -> None:
    checker = engine(
        "rules: []\n", RaisingDetector("broken", InvalidDetectorResult("bad", field="Confidence"))
    )
    (failure,) = checker.check(IMAGE).failures
    assert (failure.source, failure.code) == ("broken", "invalid-result")


class NaNDetector(Detector):
    name = "nan"

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        return DetectorResult("nan", (Label("Knife", float("nan"), "nan"),))


def test_engine_nan_confidence_is_a_failure_not_a_low_confidence() -> None:
    checker = engine("on_error: block\nrules: []\n", NaNDetector())
    decision = checker.check(IMAGE)
    assert decision.verdict == "block"
    assert [f.code for f in decision.failures] == ["invalid-result"]


@pytest.mark.parametrize(
    "garbage",
    [None, {"labels": []}, [("Knife", 99)], "Knife"],
    ids=["none", "dict", "list", "str"],
)
def test_engine_detector_returning_garbage_is_a_failure(garbage: Any) -> None:
    checker = engine(  # every detector called: junk's answer cannot raise good's review
        "cascade: {skip: false}\nrules:\n  - {id: k, match: {name: Knife}, review_at: 60}\n",
        GarbageDetector("junk", garbage),
        FixedDetector("good", [("Knife", 70)]),
    )
    decision = checker.check(IMAGE)
    assert [f.source for f in decision.failures] == ["junk"]
    assert decision.verdict == "review"
    assert [o.label.name for o in decision.outcomes()] == ["Knife"]


def test_engine_detector_result_with_garbage_labels_is_a_failure() -> None:
    checker = engine(
        "on_error: block\nrules: []\n",
        GarbageDetector("junk", DetectorResult("junk", ("not a label",))),  # type: ignore[arg-type]
        FixedDetector("good", [("Knife", 70)]),
    )
    decision = checker.check(IMAGE)
    assert [f.source for f in decision.failures] == ["junk"]
    assert decision.verdict == "block"


def test_engine_passes_min_confidence_and_settings_to_detectors() -> None:
    seen: list[tuple[float, Mapping[str, Any]]] = []

    class Spy(Detector):
        name = "spy"
        settings_schema: ClassVar[Mapping[str, Any]] = {
            "type": "object",
            "properties": {"k": {"type": "string"}},
        }

        def detect(self, image: Image, context: DetectContext) -> DetectorResult:
            seen.append((context.min_confidence, dict(context.settings)))
            return DetectorResult("spy", ())

    registry = DetectorRegistry([RegisteredDetector(Spy(), "spy-plugin")])
    policy = parse_policy(HEAD + "min_confidence: 65\ndetectors: {spy: {k: v}}\nrules: []\n")
    assert Engine(policy, registry).check(IMAGE).verdict == "allow"
    assert seen == [(65.0, {"k": "v"})]


def test_compile_policy_with_registry_uses_detector_taxonomy() -> None:
    class Taxonomic(Detector):
        name = "tx"

        def taxonomy(self, model_version: str | None) -> Taxonomy | None:
            return TAXONOMY

    registry = DetectorRegistry([RegisteredDetector(Taxonomic(), "tx-plugin")])
    policy = parse_policy(HEAD + "rules:\n  - {id: v, match: {parent: Violence}, action: block}\n")
    assert compile_policy(policy, registry).evaluate([Label("Knife", 90, "tx")]).verdict == "block"
    assert compile_policy(policy).evaluate([Label("Knife", 90, "tx")]).verdict == "allow"
