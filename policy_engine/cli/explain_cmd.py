"""``policy-engine explain``: how a policy decides each label of recorded responses."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import (
    CommandError,
    add_context_argument,
    add_labels_arguments,
    context_or_fail,
    installed_registry,
    labels_results,
    load_policy_or_set_or_fail,
)
from policy_engine.cli.render import json_record, route_lines
from policy_engine.compiler import compile_policy
from policy_engine.decision import DetectorFailure
from policy_engine.model import Policy
from policy_engine.policy_set import SetDecision, compile_policy_set
from policy_engine.review.explain import DecisionTrace, explain_decision


@dataclass(frozen=True, slots=True)
class RoutedTrace:
    """A policy set's explanation: how the image was routed, then the routed
    policy's trace on the labels it decides on."""

    routed: SetDecision
    trace: DecisionTrace

    def lines(self) -> list[str]:
        return [*route_lines(self.routed), *self.trace.lines()]

    def to_dict(self) -> dict[str, Any]:
        record = self.trace.to_dict()
        routed = self.routed.to_dict()
        for key in ("context", "route", "policy_set"):
            record[key] = routed[key]
        return record


RENDERERS: Mapping[str, Callable[[DecisionTrace | RoutedTrace], str]] = {
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
    parser.add_argument(
        "--policy",
        required=True,
        metavar="FILE",
        help="the policy file, or a policy set (kind: policy-set) with --context: then the "
        "route taken, and the routed policy's explanation",
    )
    add_context_argument(parser)
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
    target = load_policy_or_set_or_fail(args.policy, registry, stderr)
    context = context_or_fail(target, args.context, args.policy)
    results = labels_results(args, registry)
    labels = [label for result in results for label in result.labels]
    failures = [DetectorFailure(source, message) for source, message in args.error]
    if isinstance(target, Policy):
        trace = explain_decision(compile_policy(target, registry), labels, failures, registry)
        stdout.write(RENDERERS[args.format](trace))
        return exit_codes.OK
    compiled = compile_policy_set(target, registry)
    metadata = {result.source: result.metadata for result in results if result.metadata}
    routed = compiled.decide(labels, failures, context or {}, metadata)
    own_labels, own_failures, _ = compiled.inputs_for(routed.route, labels, failures, metadata)
    routed_trace = explain_decision(
        compiled.compiled(routed.route), own_labels, own_failures, registry
    )
    stdout.write(RENDERERS[args.format](RoutedTrace(routed, routed_trace)))
    return exit_codes.OK
