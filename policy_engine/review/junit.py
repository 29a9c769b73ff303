"""JUnit XML for policy test runs: what CI systems show as test reports.

One ``testsuite`` per tests file, one ``testcase`` per case and per invariant;
a failed case or invariant has a ``failure`` (its first problem as the
message, every detail as the text); a tests file that does not load is one
``testcase`` with an ``error``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from policy_engine.diagnostics import Diagnostic
from policy_engine.review.runner import FileResult


def _suite(parent: ET.Element, name: str, tests: int, failures: int, errors: int) -> ET.Element:
    return ET.SubElement(
        parent,
        "testsuite",
        name=name,
        tests=str(tests),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
    )


def junit_xml(
    results: Sequence[FileResult],
    load_errors: Sequence[tuple[str, Sequence[Diagnostic]]] = (),
) -> str:
    """The JUnit XML document of a run, as text."""
    root = ET.Element("testsuites", name="policy-engine test")
    total = failed = errored = 0
    for result in results:
        file = result.tests.file
        suite = _suite(root, file, len(result.cases) + len(result.invariants), result.failed, 0)
        for case_result in result.cases:
            case = case_result.case
            element = ET.SubElement(
                suite,
                "testcase",
                name=case.name,
                classname=f"{file}.cases",
                file=file,
                line=str(case.position.line),
            )
            if not case_result.passed:
                failure = ET.SubElement(
                    element, "failure", message=case_result.problems[0], type="case"
                )
                failure.text = "\n".join(case_result.details())
        for invariant_result in result.invariants:
            invariant = invariant_result.invariant
            element = ET.SubElement(
                suite,
                "testcase",
                name=invariant.describe(),
                classname=f"{file}.invariants",
                file=file,
                line=str(invariant.position.line),
            )
            if not invariant_result.passed:
                details = invariant_result.details()
                failure = ET.SubElement(
                    element,
                    "failure",
                    message=details[0] if details else "invariant broken",
                    type="invariant",
                )
                failure.text = "\n".join(details)
        total += len(result.cases) + len(result.invariants)
        failed += result.failed
    for file, diagnostics in load_errors:
        suite = _suite(root, file, 1, 0, 1)
        element = ET.SubElement(suite, "testcase", name="load", classname=file, file=file)
        problem = ET.SubElement(
            element,
            "error",
            message=diagnostics[0].message if diagnostics else "does not load",
            type="load",
        )
        problem.text = "\n".join(d.render() for d in diagnostics)
        total += 1
        errored += 1
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", str(errored))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
