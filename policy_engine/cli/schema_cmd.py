"""``policy-engine schema``: print a JSON Schema."""

from __future__ import annotations

import argparse
from importlib import resources
from typing import TextIO

from policy_engine.cli import exit_codes


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Print the JSON Schema of policy files, for editors and CI."
    parser.add_argument(
        "--decision", action="store_true", help="the schema of decision records instead"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    name = "decision.schema.json" if args.decision else "policy.schema.json"
    stdout.write(resources.files("policy_engine").joinpath("schemas", name).read_text("utf-8"))
    return exit_codes.OK
