"""``policy-engine evaluate``: decide from recorded detector responses."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import CommandError, installed_registry, load_policy_or_fail
from policy_engine.cli.render import decision_text
from policy_engine.compiler import compile_policy
from policy_engine.detectors import DetectorResult
from policy_engine.errors import InvalidDetectorResult, UnrecognisedResponseError
from policy_engine.model import Verdict
from policy_engine.plugins import DetectorRegistry
from policy_engine.recordings import recorded_responses
from policy_engine.text import json_dumps


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="decide from recorded detector responses (JSON files)",
        description="Evaluate a policy against raw detector responses, e.g. saved "
        "DetectModerationLabels or DetectCustomLabels output. Prints the decision record.",
    )
    parser.add_argument("--policy", required=True, metavar="FILE", help="the policy file")
    parser.add_argument(
        "--labels",
        required=True,
        action="append",
        metavar="FILE",
        help="a raw detector response (a JSON object, or a list of them); repeat for several",
    )
    parser.add_argument("--format", choices=("json", "text"), default="json")
    parser.add_argument(
        "--fail-on",
        choices=("review", "block"),
        help="exit 1 when the decision is this verdict or more severe",
    )
    parser.set_defaults(run=run)


def read_responses(path: str, registry: DetectorRegistry) -> list[DetectorResult]:
    """Parse a labels file into detector results, or raise a CommandError naming file and field."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"policy-engine: {path}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"policy-engine: {path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise CommandError(f"policy-engine: {path}: not UTF-8 text") from exc
    try:  # one response, a list, or what --record writes
        recorded = recorded_responses(data, path)
    except InvalidDetectorResult as exc:
        raise CommandError(f"policy-engine: {exc}") from exc
    results = []
    for index, entry in enumerate(recorded):
        where = f"{path}" if isinstance(data, dict) and len(recorded) == 1 else f"{path}: [{index}]"
        try:
            results.append(registry.parse_response(entry.response))
        except InvalidDetectorResult as exc:
            raise CommandError(f"policy-engine: {where}: invalid response: {exc}") from exc
        except UnrecognisedResponseError as exc:
            raise CommandError(f"policy-engine: {where}: {exc}") from exc
    return results


def reaches(decision: Verdict, fail_on: str | None) -> bool:
    return fail_on is not None and decision.severity >= Verdict(fail_on).severity


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    registry = installed_registry()
    policy = load_policy_or_fail(args.policy, registry, stderr)
    results = [result for path in args.labels for result in read_responses(path, registry)]
    decision = compile_policy(policy, registry).evaluate_results(results)
    if args.format == "text":
        print(decision_text(decision), file=stdout)
    else:
        stdout.write(json_dumps(decision.to_dict(), indent=2))
        stdout.write("\n")
    return exit_codes.FAIL_ON if reaches(decision.decision, args.fail_on) else exit_codes.OK
