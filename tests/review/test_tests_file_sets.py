"""Tests files that name a policy set: each case checked in its context (and
on its content types), the route it must take, located errors for a context
the set refuses, and coverage of the routed policies' rules and of the routes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from policy_engine import DetectorRegistry
from policy_engine.review.runner import Coverage, RouteCoverage, coverage, run_tests_file
from policy_engine.review.tests_file import check_tests_file, load_tests_file

POLICIES = Path(__file__).resolve().parents[2] / "policies"

SET = """\
version: 1
kind: policy-set
name: site
context:
  surface:
    values: [feed, profile]
  audience:
    values: [adult, teen]
    default: adult
routes:
  - when: {audience: teen}
    policy: young-audience.yaml
  - when: {surface: profile, content_type: [Illustrated]}
    policy: young-audience.yaml
  - policy: general-ugc.yaml
"""

HEADER = "policy: site.set.yaml\nsource: rekognition-moderation\ncases:\n"

SWIMWEAR_TEEN = """\
  - name: swimwear for a teen
    context: {surface: feed, audience: teen}
    labels:
      - {name: Swimwear or Underwear, parent: "", confidence: 88}
    expect: review
    route: 0
"""


def write_set(tmp_path: Path, cases: str, header: str = HEADER) -> Path:
    for name in ("young-audience.yaml", "general-ugc.yaml"):
        shutil.copy(POLICIES / name, tmp_path / name)
    (tmp_path / "site.set.yaml").write_text(SET, encoding="utf-8")
    tests = tmp_path / "site.set.tests.yaml"
    tests.write_text(header + cases, encoding="utf-8")
    return tests


def located(path: Path, registry: DetectorRegistry) -> list[tuple[str, int, int]]:
    loaded = check_tests_file(path, registry)
    assert loaded.tests is None
    return [(d.code, d.line, d.column) for d in loaded.diagnostics]


def test_each_case_is_decided_in_its_context_by_its_route(
    tmp_path: Path, registry: DetectorRegistry
) -> None:
    cases = (
        SWIMWEAR_TEEN
        + """\
  - name: the same swimwear for an adult (audience by default) is allowed
    context: {surface: feed}
    labels:
      - {name: Swimwear or Underwear, parent: "", confidence: 88}
    expect: allow
    route: 2
"""
    )
    tests = load_tests_file(write_set(tmp_path, cases), registry)
    result = run_tests_file(tests, registry)

    assert [case.passed for case in result.cases] == [True, True]
    assert [case.route for case in result.cases] == [0, 2]
    assert [Path(case.policy_file or "").name for case in result.cases] == [
        "young-audience.yaml",
        "general-ugc.yaml",
    ]
    assert tests.subject == "policy set site"


def test_a_case_that_takes_another_route_fails_naming_both(
    tmp_path: Path, registry: DetectorRegistry
) -> None:
    tests = load_tests_file(
        write_set(tmp_path, SWIMWEAR_TEEN.replace("route: 0", "route: 2")), registry
    )
    (case,) = run_tests_file(tests, registry).cases

    assert not case.passed
    assert "route 0 decided, expected route 2" in case.problems
    assert case.trace is not None  # the routed policy's trace, as for a policy's case


@pytest.mark.parametrize(
    ("content_types", "route"),
    [
        ("    content_types: [Illustrated]\n", 1),
        ("    content_types: [Animated]\n", 2),
        ("", 2),
        (  # a raw Rekognition response's ContentTypes route as the engine's would
            "    response:\n      ModerationLabels: []\n      ModerationModelVersion: '7.0'\n"
            "      ContentTypes: [{Name: Illustrated, Confidence: 80}]\n",
            1,
        ),
        (  # below content_types_at (50 by default): not reported
            "    response:\n      ModerationLabels: []\n      ModerationModelVersion: '7.0'\n"
            "      ContentTypes: [{Name: Illustrated, Confidence: 20}]\n",
            2,
        ),
    ],
)
def test_content_types_of_a_case_route_it(
    tmp_path: Path, registry: DetectorRegistry, content_types: str, route: int
) -> None:
    cases = f"""\
  - name: a profile picture
    context: {{surface: profile}}
{content_types}    labels: []
    expect: allow
"""
    tests = load_tests_file(write_set(tmp_path, cases), registry)
    (case,) = run_tests_file(tests, registry).cases
    assert case.passed and case.route == route


@pytest.mark.parametrize(
    ("context", "message", "where"),
    [
        ("{audience: teen}", "no value for dimension 'surface'", (5, 14)),
        ("{surface: chat}", "'chat' is not a value of dimension 'surface'", (5, 24)),
        ("{surface: feed, audience: kid}", "'kid' is not a value of dimension 'audience'", (5, 40)),
    ],
)
def test_a_context_the_set_refuses_is_a_located_error(
    tmp_path: Path, registry: DetectorRegistry, context: str, message: str, where: tuple[int, int]
) -> None:
    cases = SWIMWEAR_TEEN.replace("{surface: feed, audience: teen}", context)
    path = write_set(tmp_path, cases)
    loaded = check_tests_file(path, registry)

    (diagnostic,) = loaded.diagnostics
    assert loaded.tests is None
    assert diagnostic.code == "invalid-context" and message in diagnostic.message
    assert (diagnostic.line, diagnostic.column) == where


def test_a_case_without_context_needs_every_dimension_to_have_a_default(
    tmp_path: Path, registry: DetectorRegistry
) -> None:
    cases = "  - name: no context\n    labels: []\n    expect: allow\n"
    assert located(write_set(tmp_path, cases), registry) == [("invalid-context", 4, 5)]


def test_an_unknown_route_and_a_one_policy_invariant_on_a_set_are_located_errors(
    tmp_path: Path, registry: DetectorRegistry
) -> None:
    cases = SWIMWEAR_TEEN.replace("route: 0", "route: 3") + (
        "invariants:\n  - name: hate symbols block\n    category: Hate Symbols\n    always: block\n"
    )
    assert located(write_set(tmp_path, cases), registry) == [
        ("unknown-route", 9, 12),
        ("invalid-invariant", 11, 5),
    ]


def test_context_in_a_policy_s_tests_file_is_an_error(
    tmp_path: Path, registry: DetectorRegistry
) -> None:
    write_set(tmp_path, "")
    path = write_set(tmp_path, SWIMWEAR_TEEN, header="policy: young-audience.yaml\ncases:\n")
    found = located(path, registry)
    # each key a set reads, at its value
    assert found == [("context-without-set", 4, 14), ("context-without-set", 8, 12)]


def test_coverage_counts_each_case_for_its_routed_policy_and_the_routes(
    tmp_path: Path, registry: DetectorRegistry
) -> None:
    tests = load_tests_file(write_set(tmp_path, SWIMWEAR_TEEN), registry)
    reports = coverage([run_tests_file(tests, registry)])

    by_file = {Path(r.policy_file).name: r for r in reports}
    young = by_file["young-audience.yaml"]
    assert isinstance(young, Coverage) and young.decided == {"swimwear"}
    general = by_file["general-ugc.yaml"]
    assert isinstance(general, Coverage) and general.decided == frozenset()
    routes = by_file["site.set.yaml"]
    assert isinstance(routes, RouteCoverage)
    assert routes.never == (1, 2) and routes.percent == pytest.approx(100 / 3)
    assert routes.lines() == [
        f"coverage {tests.policy_file}: 1/3 routes decided a case (33.3%)",
        "  never decided: route 1, route 2",
    ]


def test_the_reference_set_is_the_readme_s_worked_example(tmp_path: Path) -> None:
    from policy_engine.policy_set import load_policy_set

    readme = (POLICIES.parent / "README.md").read_text(encoding="utf-8")
    marker = "```yaml\n# community.set.yaml"
    block = "#" + readme.split(marker, 1)[1].split("```", 1)[0]
    for name in (
        "general-ugc.yaml",
        "marketplace.yaml",
        "young-audience.yaml",
        "illustrated.yaml",
        "teen-marketplace.yaml",
    ):
        shutil.copy(POLICIES / name, tmp_path / name)
    (tmp_path / "readme.set.yaml").write_text(block, encoding="utf-8")
    shipped = load_policy_set(POLICIES / "community.set.yaml")
    assert load_policy_set(tmp_path / "readme.set.yaml").digest == shipped.digest
