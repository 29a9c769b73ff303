"""``policy-engine check``: run the policy's detectors over images, JSON Lines out."""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from typing import TextIO

from policy_engine.batch import check_paths
from policy_engine.cli import exit_codes
from policy_engine.cli.common import CommandError, installed_registry, load_policy_or_fail
from policy_engine.cli.evaluate_cmd import reaches
from policy_engine.cli.render import decision_text
from policy_engine.engine import Engine
from policy_engine.errors import PolicyEngineError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "check",
        help="run the policy's detectors over image files and folders",
        description="Decide each image under PATH (files; folders recursively, .jpg/.jpeg/.png). "
        "Writes one JSON Lines record per image as soon as it is decided; "
        "a summary goes to stderr.",
    )
    parser.add_argument("--policy", required=True, metavar="FILE", help="the policy file")
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument(
        "--replay",
        metavar="DIR",
        help="instead of the policy's detectors, replay the recorded responses in DIR "
        "(files named <sha256-of-image>.json) with the stub detector: offline, no API calls",
    )
    parser.add_argument("--format", choices=("jsonl", "text"), default="jsonl")
    parser.add_argument(
        "--fail-on",
        choices=("review", "block"),
        help="exit 1 when any decision is this verdict or more severe",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    registry = installed_registry()
    policy = load_policy_or_fail(args.policy, registry, stderr)
    overrides = None
    if args.replay is not None:
        if not os.path.isdir(args.replay):
            raise CommandError(f"policy-engine: --replay {args.replay}: no such folder")
        overrides = {"stub": {"recordings": os.path.abspath(args.replay)}}
    try:
        engine = Engine(policy, registry, detectors=overrides)
    except PolicyEngineError as exc:
        raise CommandError(f"policy-engine: {exc}") from exc
    counts: Counter[str] = Counter()
    failed_detections = 0
    progress = stderr.isatty()
    try:
        for done, result in enumerate(check_paths(engine, args.paths), start=1):
            if args.format == "text":
                if result.decision is not None:
                    print(decision_text(result.decision, result.input), file=stdout)
                else:
                    print(f"{result.input}: ERROR  {result.error}", file=stdout)
            else:
                stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
            stdout.flush()
            if result.decision is None:
                counts["unreadable"] += 1
            else:
                counts[result.decision.decision.value] += 1
                failed_detections += bool(result.decision.failures)
            if progress:
                stderr.write(f"\rchecked {done} image(s)")
                stderr.flush()
    except KeyboardInterrupt:
        _summary(counts, failed_detections, stderr, progress, interrupted=True)
        return exit_codes.INTERRUPTED
    _summary(counts, failed_detections, stderr, progress, interrupted=False)
    if counts["unreadable"]:
        return exit_codes.INPUT_ERRORS
    worst = "block" if counts["block"] else "review" if counts["review"] else "allow"
    from policy_engine.model import Verdict

    return exit_codes.FAIL_ON if reaches(Verdict(worst), args.fail_on) else exit_codes.OK


def _summary(
    counts: Counter[str],
    failed_detections: int,
    stderr: TextIO,
    progress: bool,
    *,
    interrupted: bool,
) -> None:
    if progress:
        stderr.write("\n")
    total = sum(counts.values())
    parts = [f"{counts[v]} {v}" for v in ("allow", "review", "block")]
    if counts["unreadable"]:
        parts.append(f"{counts['unreadable']} unreadable")
    if failed_detections:
        parts.append(f"{failed_detections} with detector errors")
    state = "interrupted after" if interrupted else "checked"
    print(f"{state} {total} image(s): " + ", ".join(parts), file=stderr)
