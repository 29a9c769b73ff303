"""``policy-engine explain``: how a policy decides each label of recorded responses."""

from __future__ import annotations

import argparse
from typing import TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import CommandError, installed_registry, load_policy_or_fail
from policy_engine.cli.evaluate_cmd import read_responses
from policy_engine.text import json_dumps


def _failure(text: str) -> tuple[str, str]:
    source, sep, message = text.partition(":")
    if not sep or not source.strip():
        raise argparse.ArgumentTypeError(f"expected SOURCE:MESSAGE, got {text!r}")
    return source.strip(), message.strip() or "failed"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "explain",
        help="explain how the policy decides each label of recorded responses",
        description="For each label: every rule that selects it, with its rank (name+parent, "
        "name, parent) and distance, the rule that wins, and the comparison that fired "
        "(e.g. '97.3 >= 90 (block_at)', or '54 < 60 (review_at)' when none did); then the "
        "labels dropped below min_confidence and the detector errors.",
    )
    parser.add_argument("--policy", required=True, metavar="FILE", help="the policy file")
    parser.add_argument(
        "--labels",
        action="append",
        default=[],
        metavar="FILE",
        help="a raw detector response (a JSON object, or a list of them); repeat for several",
    )
    parser.add_argument(
        "--error",
        action="append",
        default=[],
        type=_failure,
        metavar="SOURCE:MESSAGE",
        help="also count a failure of detector SOURCE (contributes the policy's on_error); "
        "repeat for several",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from policy_engine.compiler import compile_policy
    from policy_engine.decision import DetectorFailure
    from policy_engine.review.explain import explain_decision

    if not args.labels and not args.error:
        raise CommandError("policy-engine explain: give at least one --labels FILE (or --error)")
    registry = installed_registry()
    policy = load_policy_or_fail(args.policy, registry, stderr)
    results = [result for path in args.labels for result in read_responses(path, registry)]
    labels = [label for result in results for label in result.labels]
    failures = [DetectorFailure(source, message) for source, message in args.error]
    trace = explain_decision(compile_policy(policy, registry), labels, failures, registry)
    if args.format == "json":
        stdout.write(json_dumps(trace.to_dict(), indent=2))
        stdout.write("\n")
    else:
        stdout.write("\n".join(trace.lines()) + "\n")
    return exit_codes.OK
