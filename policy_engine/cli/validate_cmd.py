"""``policy-engine validate``: check policy files, report every diagnostic."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import installed_registry
from policy_engine.loader import check_policy_file


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "validate",
        help="check policy files (schema, meaning, detector settings)",
        description="Check policy files. Prints each finding as file:line:col: severity[code]: "
        "message. Exit 2 if any file has errors.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    registry = installed_registry()
    failed = 0
    report = []
    for path in args.files:
        result = check_policy_file(path, registry=registry)
        bad = bool(result.errors) or (args.strict and bool(result.warnings))
        failed += bad
        report.append(
            {
                "file": path,
                "ok": not bad,
                "digest": result.policy.digest if result.policy is not None else None,
                "diagnostics": [d.to_dict() for d in result.diagnostics],
            }
        )
        if args.format == "text":
            for diagnostic in result.diagnostics:
                print(diagnostic.render(), file=stdout)
    if args.format == "json":
        json.dump(report, stdout, indent=2)
        stdout.write("\n")
    print(
        f"{len(args.files)} file(s) checked, {failed} with "
        f"{'errors or warnings' if args.strict else 'errors'}",
        file=stderr,
    )
    return exit_codes.USAGE if failed else exit_codes.OK
