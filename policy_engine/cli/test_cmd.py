"""``policy-engine test``: run policy test files (example cases and invariants)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import CommandError, installed_registry

if TYPE_CHECKING:
    from policy_engine.review.runner import FileResult

DEFAULT_FOLDER = "policies"


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be from 0 to 100, got {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run policy test files (<policy>.tests.yaml beside each policy): every "
        "case must get its expected decision (and reasons), every invariant must hold over "
        "the policy's exact decision table. The last line of stdout is 'N passed, N failed'. "
        "Exit 0 when all pass, 1 when some fail, 2 on usage or load errors."
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="tests files, policy files (their tests file beside them) or folders "
        f"(searched recursively for *.tests.yaml); default: {DEFAULT_FOLDER}/",
    )
    parser.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report to FILE")
    parser.add_argument(
        "--coverage",
        action="store_true",
        help="report which rules decided at least one label across the cases, and which never did",
    )
    parser.add_argument(
        "--min-coverage",
        type=_percent,
        metavar="PCT",
        help="fail (exit 1) when the cases make less than PCT%% of a policy's rules decide "
        "a label (implies --coverage)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from policy_engine.diagnostics import Diagnostic
    from policy_engine.review.junit import junit_xml
    from policy_engine.review.runner import coverage, run_tests_file
    from policy_engine.review.tests_file import check_tests_file, find_tests_files

    registry = installed_registry()
    files, problems = find_tests_files(args.paths or [DEFAULT_FOLDER])
    for problem in problems:
        print(f"policy-engine: {problem}", file=stderr)
    results: list[FileResult] = []
    load_errors: list[tuple[str, tuple[Diagnostic, ...]]] = []
    for path in files:
        loaded = check_tests_file(path, registry)
        if loaded.tests is None:
            for diagnostic in loaded.diagnostics:
                print(diagnostic.render(), file=stderr)
            print(f"policy-engine: {path}: the tests file does not load", file=stderr)
            load_errors.append((str(path), loaded.diagnostics))
            continue
        result = run_tests_file(loaded.tests, registry)
        results.append(result)
        _report(result, stdout)
    coverage_failed = False
    if args.coverage or args.min_coverage is not None:
        for report in coverage(results):
            for line in report.lines():
                print(line, file=stdout)
            if args.min_coverage is not None and report.percent < args.min_coverage:
                coverage_failed = True
                print(
                    f"coverage of {report.policy_file} is below {args.min_coverage:g}%",
                    file=stdout,
                )
    if args.junit:
        try:
            Path(args.junit).write_text(junit_xml(results, load_errors), encoding="utf-8")
        except OSError as exc:
            raise CommandError(
                f"policy-engine: --junit {args.junit}: cannot write: {exc.strerror or exc}"
            ) from exc
    passed = sum(r.passed for r in results)
    failed = sum(r.failed for r in results)
    print(f"{passed} passed, {failed} failed", file=stdout)
    if problems or load_errors or not files:
        return exit_codes.USAGE
    return exit_codes.FAIL_ON if failed or coverage_failed else exit_codes.OK


def _report(result: FileResult, stdout: TextIO) -> None:
    tests = result.tests
    named = (
        f"policy {tests.policy.name}"
        if tests.policy_set is None
        else f"policy set {tests.policy_set.name}"
    )
    print(
        f"{tests.file}: {len(result.cases)} case(s), {len(result.invariants)} invariant(s) "
        f"({named})",
        file=stdout,
    )
    for case in result.cases:
        where = f"{tests.file}:{case.case.position.line}"
        print(f"  {'ok  ' if case.passed else 'FAIL'}  case {case.case.name}", file=stdout)
        if not case.passed:
            print(f"        at {where}", file=stdout)
            for line in case.details():
                print(f"        {line}", file=stdout)
    for invariant in result.invariants:
        where = f"{tests.file}:{invariant.invariant.position.line}"
        mark = "ok  " if invariant.passed else "FAIL"
        print(f"  {mark}  invariant {invariant.invariant.describe()}", file=stdout)
        if not invariant.passed:
            print(f"        at {where}", file=stdout)
            for line in invariant.details():
                print(f"        {line}", file=stdout)
