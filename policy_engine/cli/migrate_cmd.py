"""``policy-engine migrate``: rewrite a policy's model 6 label names to model 7."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import CommandError, installed_registry, load_policy_or_fail
from policy_engine.detectors import Detector
from policy_engine.loader import check_policy_text
from policy_engine.model import Policy
from policy_engine.plugins import DetectorRegistry
from policy_engine.review.migrate import NameMapping, load_mapping, migrate_text
from policy_engine.taxonomy import Taxonomy


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Rewrite the label names in rule matches and labels: from Rekognition's "
        "moderation model 6 to model 7, editing the text in place (comments, layout and "
        "quoting are kept). Prints the new policy (or writes it with --write) and lists on "
        "stderr every rule whose meaning could not be carried over exactly: a name that maps "
        "to several model 7 labels (left as is, with the candidates), a name with no "
        "equivalent (with the nearest model 7 name, as validate gives it), a category that "
        "covers other labels in model 7. Exit 1 when some name needs a look by hand (what "
        "could be rewritten is, with --write), 0 when every rule carried over exactly."
    )
    parser.add_argument("--to", required=True, choices=("7",), help="the target model version")
    parser.add_argument("file", metavar="FILE", help="the policy file")
    parser.add_argument("--write", action="store_true", help="rewrite FILE instead of printing")
    parser.add_argument(
        "--mapping",
        metavar="JSON",
        help="the old-to-new name mapping ({level1: {old: [new...]}, level2: {...}}); "
        "default: the one the detector's plugin provides",
    )
    parser.set_defaults(run=run)


def find_taxonomies(
    registry: DetectorRegistry, old_version: str, new_version: str
) -> tuple[Detector, Taxonomy, Taxonomy]:
    """The detector that has taxonomies with ids ending ``/v<old>`` and ``/v<new>``."""
    found = []
    for detector in registry.detectors():
        by_suffix = {t.id.rsplit("/", 1)[-1]: t for t in detector.taxonomies()}
        old, new = by_suffix.get(f"v{old_version}"), by_suffix.get(f"v{new_version}")
        if old is not None and new is not None:
            found.append((detector, old, new))
    if len(found) != 1:
        what = "no installed detector has" if not found else "several installed detectors have"
        raise CommandError(
            f"policy-engine: {what} taxonomies for model {old_version} and {new_version}"
        )
    return found[0]


def detector_mapping(detector: Detector, old: Taxonomy, new: Taxonomy) -> NameMapping | None:
    """The mapping the detector's plugin provides between the two taxonomies, if any."""
    return detector.taxonomy_migration(old, new)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    registry = installed_registry()
    path = Path(args.file)
    policy = load_policy_or_fail(args.file, registry, stderr)
    new_version = args.to
    old_version = str(int(new_version) - 1)
    detector, old, new = find_taxonomies(registry, old_version, new_version)
    mapping: NameMapping | None
    if args.mapping is not None:
        try:
            mapping = load_mapping(args.mapping)
        except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
            raise CommandError(f"policy-engine: --mapping {args.mapping}: {exc}") from exc
    else:
        mapping = detector_mapping(detector, old, new)
    if mapping is None:
        raise CommandError(
            f"policy-engine: detector {detector.name!r} provides no {old.id} -> {new.id} "
            "name mapping; pass one with --mapping (e.g. the plugin's v6-to-v7.json)"
        )
    text = path.read_text(encoding="utf-8")
    if not _old_only_names(policy, old, new):
        # e.g. 'Explicit Nudity' is a category in both models: rewriting it would
        # break a policy that already means model 7's
        if not args.write:
            stdout.write(text)
        print(
            f"{args.file}: no name only {old.id} has: the policy already uses "
            f"{new.id} names; nothing to migrate",
            file=stderr,
        )
        return exit_codes.OK
    result = migrate_text(
        text, mapping, old, new, sources=frozenset({detector.name}), file=args.file
    )
    # a base the policy extends is next to the file, wherever the command runs
    folder = str(Path(args.file).resolve().parent)
    check = check_policy_text(result.text, args.file, registry=registry, base_dir=folder)
    if check.policy is None:  # a bug of ours: never write a policy that does not load
        for diagnostic in check.errors:
            print(diagnostic.render(), file=stderr)
        raise CommandError(f"policy-engine: {args.file}: the migrated policy would not load")
    for finding in result.findings:
        print(finding.render(), file=stderr)
    if args.write:
        if result.text != text:
            path.write_text(result.text, encoding="utf-8")
    else:
        stdout.write(result.text)
    attention = len({(f.line, f.column) for f in result.findings})
    print(
        f"{args.file}: {result.renamed} name(s) rewritten to model {new_version}"
        + (
            f"{' in place' if args.write else ''}; {attention} name(s) need a look by hand "
            "(see above)"
            if attention
            else "; every rule carried over exactly"
        ),
        file=stderr,
    )
    # a script or hook must not take a partial migration for a finished one
    return exit_codes.FAIL_ON if attention else exit_codes.OK


def _old_only_names(policy: Policy, old: Taxonomy, new: Taxonomy) -> list[str]:
    """Names in the policy that the old taxonomy knows and the new one does not."""
    written = [n for rule in policy.rules for n in (rule.match.name, rule.match.parent) if n]
    written += [n for d in policy.labels for n in (d.name, d.parent) if n.strip()]
    return [
        name
        for name in written
        if old.knows(old.canonical_key(name)) and not new.knows(new.canonical_key(name))
    ]
