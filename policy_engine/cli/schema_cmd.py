"""``policy-engine schema``: print a JSON Schema."""

from __future__ import annotations

import argparse
from importlib import resources
from typing import TextIO

from policy_engine.cli import exit_codes

SCHEMAS = {
    "policy": "policy.schema.json",
    "policy-set": "policy-set.schema.json",
    "decision": "decision.schema.json",
}
"""Each ``--kind`` and the packaged schema it prints."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print the JSON Schema of policy files (or, with --kind, of policy sets or decision "
        "records), for editors and CI. A file with kind: policy-set is a policy set; point "
        "the editor at the policy-set schema for such files (e.g. by a *.set.yaml pattern)."
    )
    parser.add_argument(
        "--kind",
        choices=tuple(SCHEMAS),
        default="policy",
        help="which schema: policy files (the default), policy sets, decision records",
    )
    parser.add_argument(
        "--decision", action="store_true", help="the schema of decision records (--kind decision)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    name = SCHEMAS["decision" if args.decision else args.kind]
    stdout.write(resources.files("policy_engine").joinpath("schemas", name).read_text("utf-8"))
    return exit_codes.OK
