"""``policy-engine validate``: check policy files, report every diagnostic."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import installed_registry
from policy_engine.cli.report_formats import RENDERERS, FileReport
from policy_engine.file_selection import select_files
from policy_engine.loader import check_policy_file
from policy_engine.policy_set import check_policy_set_file, is_policy_set_file
from policy_engine.review.tests_file import TESTS_SUFFIX, check_tests_file

POLICY_SUFFIXES = (".yaml", ".yml")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Check policy files and policy sets (kind: policy-set, with the policies they route "
        "to), named or found in folders: errors (the policy does not load) and the linter's "
        "warnings. Text prints each finding as file:line:col: severity[code]: message; json, "
        "sarif (SARIF 2.1.0) and github (GitHub Actions workflow commands) suit tools and CI. "
        "Exit 2 if any file has errors (or, with --strict, warnings)."
    )
    parser.add_argument(
        "files",
        nargs="+",
        metavar="PATH",
        help="a policy, policy set or tests file, or a folder: its *.yaml and *.yml files "
        f"(recursively), each a policy or a policy set; *{TESTS_SUFFIX} files there are "
        "left to 'test'",
    )
    parser.add_argument(
        "--format",
        choices=tuple(RENDERERS),
        default="text",
        help="how findings are written (default: text); sarif paths are relative to the "
        "repository root",
    )
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    parser.set_defaults(run=run)


def is_policy_file(path: Path) -> bool:
    """Whether a file found in a folder is a policy or a policy set to validate."""
    return path.name.endswith(POLICY_SUFFIXES) and not path.name.endswith(TESTS_SUFFIX)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    registry = installed_registry()
    files, problems = select_files(
        args.files,
        in_folder=is_policy_file,
        folder_holds="*.yaml or *.yml policy files",
        named=lambda path, written: path,  # a file named is checked: the loader says what is wrong
    )
    for problem in problems:
        print(f"policy-engine: {problem}", file=stderr)
    reports = []
    for path in map(str, files):
        if path.endswith(TESTS_SUFFIX):  # `validate policies/*.yaml` takes tests files too
            loaded = check_tests_file(path, registry)
            reports.append(FileReport(path, loaded.diagnostics, not loaded.diagnostics, None))
            continue
        if is_policy_set_file(path):  # kind: policy-set, with the policies it routes to
            loaded_set = check_policy_set_file(path, registry=registry)
            bad = bool(loaded_set.errors) or (args.strict and bool(loaded_set.warnings))
            digest = loaded_set.policy_set.digest if loaded_set.policy_set is not None else None
            reports.append(FileReport(path, loaded_set.diagnostics, not bad, digest))
            continue
        result = check_policy_file(path, registry=registry)
        bad = bool(result.errors) or (args.strict and bool(result.warnings))
        reports.append(
            FileReport(
                file=path,
                diagnostics=result.diagnostics,
                ok=not bad,
                digest=result.policy.digest if result.policy is not None else None,
            )
        )
    stdout.write(RENDERERS[args.format](reports))
    failed = sum(not report.ok for report in reports)
    print(
        f"{len(reports)} file(s) checked, {failed} with "
        f"{'errors or warnings' if args.strict else 'errors'}",
        file=stderr,
    )
    return exit_codes.USAGE if failed or problems else exit_codes.OK
