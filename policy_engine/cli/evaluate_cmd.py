"""``policy-engine evaluate``: decide from recorded detector responses."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import (
    add_labels_arguments,
    installed_registry,
    labels_results,
    load_policy_or_fail,
    reaches,
)
from policy_engine.cli.render import decision_text, json_record
from policy_engine.compiler import compile_policy
from policy_engine.decision import Decision

RENDERERS: Mapping[str, Callable[[Decision], str]] = {
    "json": json_record,
    "text": lambda decision: decision_text(decision) + "\n",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Evaluate a policy against raw detector responses, e.g. saved "
        "DetectModerationLabels or DetectCustomLabels output. Prints the decision record."
    )
    parser.add_argument("--policy", required=True, metavar="FILE", help="the policy file")
    add_labels_arguments(parser, required=True)
    parser.add_argument("--format", choices=tuple(RENDERERS), default="json")
    parser.add_argument(
        "--fail-on",
        choices=("review", "block"),
        help="exit 1 when the decision is this verdict or more severe",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    registry = installed_registry()
    policy = load_policy_or_fail(args.policy, registry, stderr)
    results = labels_results(args, registry)
    decision = compile_policy(policy, registry).evaluate_results(results)
    stdout.write(RENDERERS[args.format](decision))
    return exit_codes.FAIL_ON if reaches(decision.verdict, args.fail_on) else exit_codes.OK
