"""``policy-engine evaluate``: decide from recorded detector responses."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import (
    add_context_argument,
    add_labels_arguments,
    context_or_fail,
    installed_registry,
    labels_results,
    load_policy_or_set_or_fail,
    reaches,
)
from policy_engine.cli.render import decision_text, json_record, set_decision_text
from policy_engine.compiler import compile_policy
from policy_engine.decision import Decision
from policy_engine.model import Policy
from policy_engine.policy_set import SetDecision, compile_policy_set

RENDERERS: Mapping[str, Callable[[Decision | SetDecision], str]] = {
    "json": json_record,
    "text": lambda decision: (
        (
            set_decision_text(decision)
            if isinstance(decision, SetDecision)
            else decision_text(decision)
        )
        + "\n"
    ),
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Evaluate a policy against raw detector responses, e.g. saved "
        "DetectModerationLabels or DetectCustomLabels output. Prints the decision record."
    )
    parser.add_argument(
        "--policy",
        required=True,
        metavar="FILE",
        help="the policy file, or a policy set (kind: policy-set) with --context",
    )
    add_context_argument(parser)
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
    target = load_policy_or_set_or_fail(args.policy, registry, stderr)
    context = context_or_fail(target, args.context, args.policy)
    results = labels_results(args, registry)
    decision: Decision | SetDecision
    if isinstance(target, Policy):
        decision = compile_policy(target, registry).evaluate_results(results)
    else:
        decision = compile_policy_set(target, registry).decide_results(results, (), context or {})
    stdout.write(RENDERERS[args.format](decision))
    return exit_codes.FAIL_ON if reaches(decision.verdict, args.fail_on) else exit_codes.OK
