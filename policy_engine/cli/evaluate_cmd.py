"""``policy-engine evaluate``: decide from recorded detector responses.

With ``--labels``, the files' labels pool into one decision. With ``--corpus``,
each item of a corpus (a folder of response files, or a JSON Lines file) is
decided on its own, on every core, and its record written as it comes, in the
corpus' order (:func:`policy_engine.cli.corpus_stream.decided_chunks`, the
path ``diff --corpus`` takes too): memory stays flat however many items."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import (
    CommandError,
    add_context_argument,
    add_labels_arguments,
    context_or_fail,
    installed_registry,
    labels_results,
    load_policy_or_set_or_fail,
    reaches,
)
from policy_engine.cli.corpus_items import corpus_source
from policy_engine.cli.corpus_stream import decided_chunks
from policy_engine.cli.render import decision_text, json_record, set_decision_text
from policy_engine.compiler import CompiledPolicy, compile_policy
from policy_engine.decision import Decision
from policy_engine.model import Policy, Verdict
from policy_engine.plugins import DetectorRegistry
from policy_engine.policy_set import PolicySet, SetDecision, compile_policy_set
from policy_engine.review.diff import CorpusItem
from policy_engine.text import json_dumps, name_fields, printable

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


CORPUS_RENDERERS: Mapping[str, Callable[[str, Decision], str]] = {
    "json": lambda name, decision: json_dumps({**name_fields(name), **decision.to_dict()}) + "\n",
    "text": lambda name, decision: decision_text(decision, printable(name)) + "\n",
}
"""With ``--corpus``, one item's output: a JSON Lines record (its name under ``input``)
or its text summary."""


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
    add_labels_arguments(parser, required=False)
    parser.add_argument(
        "--corpus",
        metavar="DIR|FILE",
        help="instead of --labels: decide each item of a corpus on its own, as "
        "'diff --corpus' reads it (a folder searched recursively for *.json response "
        "files, or a JSON Lines file of responses or 'check' records), and print one "
        "record per item in the corpus' order (JSON Lines with --format json)",
    )
    parser.add_argument("--format", choices=tuple(RENDERERS), default="json")
    parser.add_argument(
        "--fail-on",
        choices=("review", "block"),
        help="exit 1 when the decision is this verdict or more severe",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if (args.corpus is None) == (not args.labels):
        raise CommandError("policy-engine: evaluate: give --labels FILE... or --corpus DIR|FILE")
    registry = installed_registry()
    target = load_policy_or_set_or_fail(args.policy, registry, stderr)
    if args.corpus is not None:
        return _run_corpus(args, target, registry, stdout)
    context = context_or_fail(target, args.context, args.policy)
    results = labels_results(args, registry)
    decision: Decision | SetDecision
    if isinstance(target, Policy):
        decision = compile_policy(target, registry).evaluate_results(results)
    else:
        decision = compile_policy_set(target, registry).decide_results(results, (), context or {})
    stdout.write(RENDERERS[args.format](decision))
    return exit_codes.FAIL_ON if reaches(decision.verdict, args.fail_on) else exit_codes.OK


@dataclass(frozen=True, slots=True)
class _CorpusDecider:
    """A chunk of items decided: their output, and the most severe verdict among them."""

    compiled: CompiledPolicy
    render: Callable[[str, Decision], str]

    def __call__(self, items: list[CorpusItem]) -> tuple[str, Verdict]:
        texts, worst = [], Verdict.ALLOW
        for item in items:
            decision = self.compiled.evaluate(item.labels, item.failures, item.metadata)
            worst = max(worst, decision.verdict, key=_severity)
            texts.append(self.render(item.name, decision))
        return "".join(texts), worst


def _severity(verdict: Verdict) -> int:
    return verdict.severity


def _run_corpus(
    args: argparse.Namespace,
    target: Policy | PolicySet,
    registry: DetectorRegistry,
    stdout: TextIO,
) -> int:
    if not isinstance(target, Policy):
        raise CommandError(
            f"policy-engine: {args.policy} is a policy set: --corpus decides with a policy "
            "(a corpus item carries no context)"
        )
    if args.replay is not None or args.context:
        raise CommandError("policy-engine: --corpus takes neither --replay nor --context")
    source = corpus_source(args.corpus)
    decider = _CorpusDecider(compile_policy(target, registry), CORPUS_RENDERERS[args.format])
    worst = Verdict.ALLOW  # of no item at all too: --fail-on is not reached
    chunks = decided_chunks(
        source, registry, decider, on_worker_death="the records before those were written"
    )
    for text, verdict in chunks:
        stdout.write(text)
        worst = max(worst, verdict, key=_severity)
    stdout.flush()
    return exit_codes.FAIL_ON if reaches(worst, args.fail_on) else exit_codes.OK
