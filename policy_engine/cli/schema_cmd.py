"""``policy-engine schema``: print a JSON Schema."""

from __future__ import annotations

import argparse
import json
from importlib import resources
from typing import TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import installed_registry
from policy_engine.full_schema import policy_schema_with_detectors

SCHEMAS = {
    "policy": "policy.schema.json",
    "policy-set": "policy-set.schema.json",
    "decision": "decision.schema.json",
}
"""Each ``--kind`` and the packaged schema it prints."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print the JSON Schema of policy files (or, with --kind, of policy sets or decision "
        "records), for editors and CI. The policy schema includes the settings of every "
        "installed detector (POLICY_ENGINE_PLUGINS restricts which); --core prints the core's "
        "packaged schema, which takes any object as a detector's settings. A file with "
        "kind: policy-set is a policy set; point the editor at the policy-set schema for such "
        "files (e.g. by a *.set.yaml pattern)."
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
    parser.add_argument(
        "--core",
        action="store_true",
        help="the packaged schema as shipped (schemas/ in the repository), without the "
        "installed detectors' settings; only --kind policy differs",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    kind = "decision" if args.decision else args.kind
    if kind == "policy" and not args.core:
        schema = policy_schema_with_detectors(installed_registry())
        stdout.write(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
        return exit_codes.OK
    packaged = resources.files("policy_engine").joinpath("schemas", SCHEMAS[kind])
    stdout.write(packaged.read_text("utf-8"))
    return exit_codes.OK
