"""The reference policies in policies/ load clean, decide their example cases and keep
their invariants. The cases and invariants are run by the same runner as
``policy-engine test`` (policy_engine.review), one pytest test each so that a
failure names the case; tests/cli/test_test_explain.py runs the command itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from policy_engine import DetectorRegistry
from policy_engine.loader import check_policy_file
from policy_engine.policy_set import check_policy_set_file, is_policy_set_file, load_policy_set
from policy_engine.review.invariants import Invariant, InvariantChecker
from policy_engine.review.runner import run_case
from policy_engine.review.tests_file import (
    PolicyCase,
    PolicyTestFile,
    find_tests_files,
    load_tests_file,
)

POLICIES = Path(__file__).resolve().parent.parent / "policies"
REGISTRY = DetectorRegistry.installed()
TESTS_FILES = [load_tests_file(path, REGISTRY) for path in find_tests_files([str(POLICIES)])[0]]


@dataclass(frozen=True)
class Item:
    tests: PolicyTestFile
    case: PolicyCase | None = None
    invariant: Invariant | None = None

    def __str__(self) -> str:
        stem = Path(self.tests.policy_file).stem
        if self.case is not None:
            return f"{stem}: {self.case.name}"
        assert self.invariant is not None
        return f"{stem}: invariant {self.invariant.describe()}"


CASES = [Item(t, case=c) for t in TESTS_FILES for c in t.cases]
INVARIANTS = [Item(t, invariant=i) for t in TESTS_FILES for i in t.invariants]


REFERENCE_FILES = sorted(p for p in POLICIES.glob("*.yaml") if not p.name.endswith(".tests.yaml"))
SETS = {p.name for p in REFERENCE_FILES if is_policy_set_file(p)}


def test_every_reference_policy_has_cases_and_invariants() -> None:
    policies = {p.name for p in REFERENCE_FILES} - SETS
    covered = {Path(item.tests.policy_file).name for item in CASES}
    promised = {Path(item.tests.policy_file).name for item in INVARIANTS}
    # a set's cases are checked in context; a set promises strictness between contexts
    assert policies | SETS == covered
    assert policies | SETS == promised
    assert len(policies) >= 3 and SETS


def test_every_route_of_a_reference_set_decides_one_of_its_cases() -> None:
    for tests in TESTS_FILES:
        if tests.policy_set is None:
            continue
        taken = {run_case(tests, case, REGISTRY).route for case in tests.cases}
        assert taken == {route.index for route in tests.policy_set.routes}, tests.file


def test_a_teen_is_checked_by_every_detector_an_adult_is_checked_by_on_each_surface() -> None:
    # route 1 alone would send a teen's listing to young-audience.yaml, without the
    # marketplace's custom model: hence the teen-marketplace route before it
    community = load_policy_set(POLICIES / "community.set.yaml", registry=REGISTRY)
    (surface,) = [d for d in community.dimensions if d.name == "surface"]
    for value in surface.values:
        for reported in (frozenset(), frozenset({"animated"}), frozenset({"illustrated"})):
            teen = community.route_for({"surface": value, "audience": "teen"}, reported)
            adult = community.route_for({"surface": value, "audience": "adult"}, reported)
            assert teen is not None and adult is not None
            assert set(adult.policy.detectors) <= set(teen.policy.detectors), (value, reported)


@pytest.mark.parametrize("path", REFERENCE_FILES, ids=lambda p: p.name)
def test_reference_policy_loads_without_any_diagnostic(path: Path) -> None:
    if path.name in SETS:
        loaded_set = check_policy_set_file(path, registry=REGISTRY)
        assert [d.render() for d in loaded_set.diagnostics] == []
        assert loaded_set.policy_set is not None
        return
    result = check_policy_file(path, registry=REGISTRY)
    assert [d.render() for d in result.diagnostics] == []
    assert result.policy is not None


@pytest.mark.parametrize("item", CASES, ids=str)
def test_reference_policy_case(item: Item) -> None:
    assert item.case is not None
    result = run_case(item.tests, item.case, REGISTRY)
    assert result.passed, "\n".join(result.details())


@pytest.mark.parametrize("item", INVARIANTS, ids=str)
def test_reference_policy_invariant(item: Item) -> None:
    assert item.invariant is not None
    checker = InvariantChecker(item.tests.compiled, REGISTRY)
    result = checker.check(item.invariant, all_taxonomies=item.tests.all_taxonomies)
    assert result.passed, "\n".join(result.details())
