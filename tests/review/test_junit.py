"""JUnit XML of tests-file results (policy_engine.review.junit)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tests_file_builders import run

from policy_engine import DetectorRegistry
from policy_engine.review.junit import junit_xml


def test_junit_has_one_suite_per_file_and_one_testcase_per_case_and_invariant(
    tmp_path: Path, registry: DetectorRegistry
) -> None:
    tests = """\
policy: p.yaml
cases:
  - {name: good, labels: [{name: Violence, confidence: 95}], expect: review}
  - {name: bad, labels: [{name: Violence, confidence: 95}], expect: block}
invariants:
  - {category: Graphic Violence, at_least: 90, always: block}
  - {category: Violence, never: allow}
"""
    result = run(tmp_path, tests, registry)
    root = ET.fromstring(junit_xml([result], [("broken.tests.yaml", ())]))  # type: ignore[list-item]
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [str(tmp_path / "p.tests.yaml"), "broken.tests.yaml"]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "2", "1")
    cases = suites[0].findall("testcase")
    assert [c.get("name") for c in cases] == [
        "good",
        "bad",
        "category Graphic Violence at 90+: always block",
        "category Violence: never allow",
    ]
    assert cases[0].find("failure") is None and cases[2].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "the decision is review, expected block"
    invariant_failure = cases[3].find("failure")
    assert invariant_failure is not None and "counterexample:" in (invariant_failure.text or "")
    assert suites[1].find("testcase/error") is not None
