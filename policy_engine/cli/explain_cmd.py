"""``policy-engine explain``: how a policy decides each label of recorded responses."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import (
    CommandError,
    add_labels_arguments,
    installed_registry,
    labels_results,
    load_policy_or_fail,
)
from policy_engine.cli.render import json_record
from policy_engine.compiler import compile_policy
from policy_engine.decision import DetectorFailure
from policy_engine.review.explain import DecisionTrace, explain_decision

RENDERERS: Mapping[str, Callable[[DecisionTrace], str]] = {
    "text": lambda trace: "\n".join(trace.lines()) + "\n",
    "json": json_record,
}


def _failure(text: str) -> tuple[str, str]:
    source, sep, message = text.partition(":")
    if not sep or not source.strip():
        raise argparse.ArgumentTypeError(f"expected SOURCE:MESSAGE, got {text!r}")
    return source.strip(), message.strip() or "failed"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "For each label: every rule that selects it, with its rank (name+parent, "
        "name, parent) and distance, the rule that wins, and the comparison that fired "
        "(e.g. '97.3 >= 90 (block_at)', or '54 < 60 (review_at)' when none did); then the "
        "labels dropped below min_confidence and the detector errors. To explain an image, "
        "give it to --labels with --replay DIR, the folder of its recording."
    )
    parser.add_argument("--policy", required=True, metavar="FILE", help="the policy file")
    add_labels_arguments(parser, required=False)
    parser.add_argument(
        "--error",
        action="append",
        default=[],
        type=_failure,
        metavar="SOURCE:MESSAGE",
        help="also count a failure of detector SOURCE (contributes the policy's on_error); "
        "repeat for several",
    )
    parser.add_argument("--format", choices=tuple(RENDERERS), default="text")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if not args.labels and not args.error:
        raise CommandError("policy-engine explain: give at least one --labels FILE (or --error)")
    registry = installed_registry()
    policy = load_policy_or_fail(args.policy, registry, stderr)
    labels = [label for result in labels_results(args, registry) for label in result.labels]
    failures = [DetectorFailure(source, message) for source, message in args.error]
    trace = explain_decision(compile_policy(policy, registry), labels, failures, registry)
    stdout.write(RENDERERS[args.format](trace))
    return exit_codes.OK
