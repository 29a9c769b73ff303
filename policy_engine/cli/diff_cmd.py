"""``policy-engine diff``: what changes between two policies, exactly, and on a corpus."""

from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import CommandError, installed_registry
from policy_engine.cli.corpus_items import corpus_source
from policy_engine.cli.corpus_stream import (
    ChangeFormat,
    StreamedCorpus,
    stream_corpus,
    write_report,
)
from policy_engine.cli.render import group_title, json_record, md_cell
from policy_engine.compiler import compile_policy
from policy_engine.errors import SetComparisonError
from policy_engine.indented_json import dumps_indented
from policy_engine.loader import (
    LoadResult,
    PolicyFileCache,
    check_policy_file,
    check_policy_text,
)
from policy_engine.model import Policy, plain_number
from policy_engine.plugins import DetectorRegistry
from policy_engine.policy_set import (
    PolicySet,
    Route,
    check_policy_set_file,
    is_policy_set_file,
    is_policy_set_text,
)
from policy_engine.review.diff import (
    CorpusDiff,
    ItemChange,
    PolicyDiff,
    RowChange,
    change_dict,
    diff_policies,
    reasons_text,
    verdict_name,
)
from policy_engine.review.set_strictness import (
    RoutePair,
    SetDiff,
    content_type_names,
    describe,
    diff_sets,
)
from policy_engine.review.strictness import Relation, Strictness, compare_policies

GIT_TIMEOUT = 60


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Compare two policies exactly: for every label whose verdict differs, the "
        "confidence ranges where it changes (e.g. '[80, 90) review -> block'), labels added "
        "or removed, the default and on_error. With --corpus, also decide recorded detector "
        "output under both and count the decisions that change. OLD and NEW are files, or "
        "REV:path to read a file from git in the current repository (e.g. HEAD:policy.yaml). "
        "The last line says whether NEW is stricter than OLD, more lenient, mixed or equal "
        "(POLICY_SPEC section 11: every label, band and detector failure, under every "
        "taxonomy). When OLD or NEW is a policy set, every combination of context values "
        "and content-type outcome is compared: the routes each side takes, the table diff "
        "of each changed pair, and the strictness over every combination (a plain policy "
        "stands for a set that routes every combination to it). Exit 0 when both load "
        "(it is a report; see --fail-on-change and --fail-on lenient), 1 when a "
        "--fail-on* condition holds, 2 when one does not load."
    )
    parser.add_argument("old", metavar="OLD", help="the old policy: FILE or REV:path")
    parser.add_argument("new", metavar="NEW", help="the new policy: FILE or REV:path")
    parser.add_argument("--format", choices=tuple(RENDERERS), default="text")
    parser.add_argument(
        "--corpus",
        metavar="DIR|FILE.jsonl",
        help="recorded detector output: a folder of raw responses (*.json, each one "
        "response or a list of responses for one image), or a JSON Lines file of "
        "'policy-engine check' records or raw responses (one image a line)",
    )
    parser.add_argument(
        "--all-taxonomies",
        action="store_true",
        help="compare under every taxonomy a detector knows (e.g. Rekognition's model 6 too)",
    )
    parser.add_argument(
        "--fail-on",
        choices=("lenient",),
        help="lenient: exit 1 when NEW is more lenient than OLD anywhere (any label's band "
        "or detector failure gets a less severe verdict): a gate for 'this change only tightens'",
    )
    parser.add_argument(
        "--fail-on-change",
        action="store_true",
        help="exit 1 when any decision can change (or does, on the corpus)",
    )
    parser.set_defaults(run=run)


# -- loading the two sides ----------------------------------------------------------


def split_git_spec(spec: str) -> tuple[str, str] | None:
    """``REV:path`` as (REV, path); None for a plain file (one that exists, or no colon)."""
    if os.path.exists(spec) or ":" not in spec:
        return None
    rev, _, path = spec.partition(":")
    if not rev or not path:
        return None
    return rev, path


def git_show(rev: str, path: str) -> str:
    """The text of ``path`` at ``rev`` (``git show REV:path`` in the current folder).

    The revision is refused when git could read the argument as an option (it
    starts with ``-``: ``--output=FILE`` would make git write a file) or when it
    holds a NUL; ``--end-of-options`` also tells git so, where git knows it."""
    spec = f"{rev}:{path}"
    if rev.startswith("-"):
        raise CommandError(
            f"policy-engine: {spec}: a git revision cannot start with '-' "
            "(git would read it as an option)",
            exit_codes.USAGE,
        )
    if "\0" in spec:
        raise CommandError(f"policy-engine: {spec!r}: a NUL cannot be in a git revision or path")
    try:
        completed = subprocess.run(
            ["git", "show", *_end_of_options(), spec],
            capture_output=True,
            timeout=GIT_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise CommandError(f"policy-engine: {spec}: git is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"policy-engine: {spec}: git show timed out") from exc
    if completed.returncode != 0:
        message = completed.stderr.decode("utf-8", "replace").strip() or "git show failed"
        raise CommandError(f"policy-engine: cannot read {spec} from git: {message}")
    try:
        return completed.stdout.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"policy-engine: {spec}: not UTF-8 text") from exc


@functools.cache
def _end_of_options() -> tuple[str, ...]:
    """``("--end-of-options",)`` when the installed git knows it (2.24 and later)."""
    try:
        completed = subprocess.run(
            ["git", "--version"],
            capture_output=True,
            timeout=GIT_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()  # git show will say what is wrong with git
    found = re.search(rb"(\d+)\.(\d+)", completed.stdout)
    if found is None or (int(found[1]), int(found[2])) < (2, 24):
        return ()
    return ("--end-of-options",)


def load_side(spec: str, registry: DetectorRegistry) -> LoadResult:
    git = split_git_spec(spec)
    if git is None:
        return check_policy_file(spec, registry=registry)
    rev, path = git

    def read_at_rev(base: str) -> str:
        # a base the old policy extends is read at the same revision: an old
        # policy over today's base would hide what its base's changes did
        try:
            return git_show(rev, f"./{base}" if path.startswith("./") else base)
        except CommandError as exc:
            raise OSError(str(exc)) from None

    return check_policy_text(
        git_show(rev, path),
        file=f"{rev}:{path}",
        registry=registry,
        base_dir=os.path.dirname(path) or ".",
        cache=PolicyFileCache(read=read_at_rev),
    )


def load_both(args: argparse.Namespace, registry: DetectorRegistry, stderr: TextIO) -> list[Policy]:
    policies: list[Policy] = []
    failed: list[str] = []
    for spec in (args.old, args.new):
        result = load_side(spec, registry)
        if result.policy is None:
            for diagnostic in result.errors:
                print(diagnostic.render(), file=stderr)
            failed.append(spec)
        else:
            policies.append(result.policy)
    if failed:
        raise CommandError(
            f"policy-engine: {', '.join(failed)}: the policy does not load", exit_codes.USAGE
        )
    return policies


# -- the command ------------------------------------------------------------------------


def _is_set(spec: str) -> bool:
    git = split_git_spec(spec)
    if git is None:
        return is_policy_set_file(spec)
    if is_policy_set_text(git_show(*git)):
        raise CommandError(
            f"policy-engine: {spec}: comparing a policy set read from git is not supported; "
            "check the revision out and give the file",
            exit_codes.USAGE,
        )
    return False


def _load_set_side(spec: str, registry: DetectorRegistry, stderr: TextIO) -> PolicySet | Policy:
    if not _is_set(spec):
        result = load_side(spec, registry)
        loaded: PolicySet | Policy | None = result.policy
    else:
        set_result = check_policy_set_file(spec, registry=registry)
        result_errors = set_result.errors
        loaded = set_result.policy_set
        if loaded is None:
            for diagnostic in result_errors:
                print(diagnostic.render(), file=stderr)
        return _loaded(spec, loaded)
    if loaded is None:
        for diagnostic in result.errors:
            print(diagnostic.render(), file=stderr)
    return _loaded(spec, loaded)


def _loaded(spec: str, loaded: PolicySet | Policy | None) -> PolicySet | Policy:
    if loaded is None:
        raise CommandError(f"policy-engine: {spec}: does not load", exit_codes.USAGE)
    return loaded


def run_sets(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """OLD or NEW is a policy set: compare every combination of context and content types."""
    if args.corpus is not None:
        raise CommandError(
            "policy-engine: --corpus compares two policies; with a policy set, compare "
            "the routed policies' files",
            exit_codes.USAGE,
        )
    registry = installed_registry()
    old, new = (_load_set_side(spec, registry, stderr) for spec in (args.old, args.new))
    try:
        found = diff_sets(old, new, registry)
    except SetComparisonError as exc:
        raise CommandError(f"policy-engine: {exc}", exit_codes.USAGE) from exc
    pairs = []
    for pair in found.pairs:
        report = None
        if not pair.same_policy:
            old_compiled = compile_policy(pair.old_route.policy, registry)
            new_compiled = compile_policy(pair.new_route.policy, registry)
            report = DiffResult(
                diff_policies(
                    old_compiled, new_compiled, registry, all_taxonomies=args.all_taxonomies
                ),
                None,
                pair.old_route.policy_file,
                pair.new_route.policy_file,
                pair.strictness,
            )
        pairs.append(PairResult(pair, report))
    result = SetDiffResult(found, tuple(pairs), args.old, args.new)
    stdout.write(SET_RENDERERS[args.format](result))
    if args.fail_on_change and found.changed:
        return exit_codes.FAIL_ON
    if args.fail_on == "lenient" and not found.new_at_least_as_strict:
        return exit_codes.FAIL_ON
    return exit_codes.OK


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if _is_set(args.old) or _is_set(args.new):
        return run_sets(args, stdout, stderr)
    registry = installed_registry()
    old_policy, new_policy = load_both(args, registry, stderr)
    old, new = compile_policy(old_policy, registry), compile_policy(new_policy, registry)
    report = diff_policies(old, new, registry, all_taxonomies=args.all_taxonomies)
    strictness = compare_policies(new, old, registry)
    corpus = None
    if args.corpus is not None:
        source = corpus_source(args.corpus)
        change_format = CHANGE_FORMATS[args.format]
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="surrogateescape") as spool:
            corpus = stream_corpus(old, new, registry, source, change_format, spool)
            result = DiffResult(report, corpus, args.old, args.new, strictness)
            write_report(stdout, RENDERERS[args.format](result), corpus, change_format.quoted)
    else:
        stdout.write(
            RENDERERS[args.format](DiffResult(report, None, args.old, args.new, strictness))
        )
    changed = report.decisions_change or (corpus is not None and corpus.counts.changed > 0)
    if args.fail_on_change and changed:
        return exit_codes.FAIL_ON
    if args.fail_on == "lenient" and not strictness.a_at_least_as_strict:
        return exit_codes.FAIL_ON
    return exit_codes.OK


# -- rendering --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiffResult:
    """What ``diff`` prints: the exact diff, the corpus diff if asked, and the two specs."""

    report: PolicyDiff
    corpus: CorpusDiff | StreamedCorpus | None
    """In memory, or streamed (its changed items spooled, a marker where they go)."""
    old: str
    new: str
    strictness: Strictness
    """NEW (``a``) compared with OLD (``b``)."""

    def to_dict(self) -> dict[str, Any]:
        data = self.report.to_dict()
        data["corpus"] = None if self.corpus is None else self.corpus.to_dict()
        data["strictness"] = strictness_dict(self.strictness)
        return data


def strictness_dict(strictness: Strictness) -> dict[str, Any]:
    """The JSON ``strictness`` field: NEW's relation to OLD and the bands that say so."""
    return {
        "relation": strictness.relation.value,
        "stricter": [c.to_dict() for c in strictness.a_more_severe],
        "more_lenient": [c.to_dict() for c in strictness.a_less_severe],
    }


def strictness_line(strictness: Strictness) -> str:
    """One line: is NEW stricter than OLD, more lenient, mixed or equal (with one example)."""
    more, less = strictness.a_more_severe, strictness.a_less_severe
    relation = strictness.relation
    if relation is Relation.EQUAL:
        return (
            "strictness: equal (NEW decides every label at every confidence, "
            "and every detector failure, as OLD does)"
        )
    if relation is Relation.STRICTER:
        return (
            f"strictness: NEW is stricter than OLD "
            f"({len(more)} band(s) more severe, none more lenient)"
        )
    example = less[0].describe("new", "old")
    if relation is Relation.MORE_LENIENT:
        return (
            f"strictness: NEW is more lenient than OLD "
            f"({len(less)} band(s) more lenient, none more severe; e.g. {example})"
        )
    return (
        f"strictness: mixed, NEW is stricter than OLD in places and more lenient in others "
        f"({len(more)} band(s) more severe, {len(less)} more lenient; e.g. {example})"
    )


def _grouped(rows: tuple[RowChange, ...]) -> dict[tuple[str, str], list[RowChange]]:
    groups: dict[tuple[str, str], list[RowChange]] = {}
    for row in rows:
        groups.setdefault((row.source, row.taxonomy), []).append(row)
    return groups


def _listed_note(row: RowChange) -> str:
    if row.listed == "new":
        return " [new in the table]"
    if row.listed == "old":
        return " [no longer in the table]"
    return ""


def summary_line(report: PolicyDiff) -> str:
    if not report.decisions_change:
        return "no change in any decision"
    parts = []
    if report.changed:
        parts.append(f"{len(report.changed)} label(s) decided differently")
    if report.default is not None and report.default.decides_differently:
        parts.append("the default changes")
    if report.on_error_changed:
        parts.append(
            f"on_error changes ({report.old_on_error.value} -> {report.new_on_error.value})"
        )
    return "; ".join(parts)


def _floor_line(report: PolicyDiff) -> str | None:
    old, new = report.old.min_confidence, report.new.min_confidence
    if old == new:
        return None
    return (
        f"min_confidence {plain_number(old)} -> {plain_number(new)} (below it a label is dropped)"
    )


def diff_text(result: DiffResult) -> str:
    report, corpus, old, new = result.report, result.corpus, result.old, result.new
    lines = [f"diff {old} ({report.old.policy_name}) -> {new} ({report.new.policy_name})"]
    lines.append(summary_line(report))
    floor = _floor_line(report)
    if floor:
        lines.append(floor)
    if report.on_error_changed:
        lines.append(
            f"on_error: {report.old_on_error.value} -> {report.new_on_error.value} "
            "(the verdict a failing detector contributes)"
        )
    for (source, taxonomy), rows in _grouped(report.changed).items():
        lines += ["", f"{group_title(source, taxonomy)}:"]
        lines += [f"  {row.describe()}{_listed_note(row)}" for row in rows]
    if report.default is not None and report.default.decides_differently:
        ranges = ", ".join(r.describe() for r in report.default.ranges)
        lines += ["", f"default (any other label): {ranges}"]
    if report.rule_only:
        lines += ["", "Decided by another rule, same verdicts at every confidence:"]
        lines += [
            f"  {row.label} ({row.source}, {row.taxonomy}): {row.rule_text()}"
            for row in report.rule_only
        ]
    if report.listed_only:
        names = ", ".join(f"{r.label}{_listed_note(r)}" for r in report.listed_only)
        lines += ["", f"Listed by one table only, decided the same: {names}"]
    if corpus is not None:
        lines += ["", *_corpus_text(corpus)]
    lines += ["", strictness_line(result.strictness)]
    return "\n".join(lines) + "\n"


def _corpus_text(corpus: CorpusDiff | StreamedCorpus) -> list[str]:
    counts = corpus.counts
    lines = [f"Corpus: {counts.total} item(s), {counts.changed} decision(s) change"]
    for old, new, count in counts.transitions():
        lines.append(f"  {old.value} -> {new.value}: {count}")
    lines.append("  old \\ new   allow  review  block")
    for index, row in enumerate(counts.matrix):
        name = ("allow", "review", "block")[index]
        lines.append(f"  {name:<10} {row[0]:>6} {row[1]:>7} {row[2]:>6}")
    return lines + _changes(corpus, change_text)


def _changes(corpus: CorpusDiff | StreamedCorpus, render: Callable[[ItemChange], str]) -> list[str]:
    """The changed items' lines, or the marker a streamed corpus' spool replaces."""
    if isinstance(corpus, StreamedCorpus):
        return [corpus.marker]
    return [render(change) for change in corpus.changes]


def change_text(change: ItemChange) -> str:
    return (
        f"  {change.item}:\n"
        f"    old: {reasons_text(change.old)}\n"
        f"    new: {reasons_text(change.new)}"
    )


def change_markdown(change: ItemChange) -> str:
    cells = [change.item, reasons_text(change.old), reasons_text(change.new)]
    return "| " + " | ".join(md_cell(c) for c in cells) + " |"


def change_json(change: ItemChange) -> str:
    """The item as ``json_record`` writes it in ``corpus.changes`` (three levels deep)."""
    return dumps_indented(change_dict(change)).replace("\n", "\n      ")


def diff_markdown(result: DiffResult) -> str:
    report, corpus, old, new = result.report, result.corpus, result.old, result.new
    lines = [
        f"### Policy diff: `{md_cell(old)}` -> `{md_cell(new)}`",
        "",
        f"**{summary_line(report)}**",
    ]
    notes = []
    floor = _floor_line(report)
    if floor:
        notes.append(floor)
    if report.on_error_changed:
        notes.append(f"on_error: {report.old_on_error.value} -> {report.new_on_error.value}")
    if notes:
        lines += ["", *[f"- {md_cell(n)}" for n in notes]]
    rows = list(report.changed)
    if report.default is not None and report.default.decides_differently:
        rows.append(report.default)
    if rows:
        lines += [
            "",
            "| Detector | Label | Confidence | Old | New | Rule |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for row in rows:
            label = "*any other label*" if row is report.default else md_cell(row.label)
            detector = "" if row is report.default else md_cell(row.source)
            for change in row.ranges:
                cells = [
                    detector,
                    label + md_cell(_listed_note(row)),
                    change.describe_range(),
                    verdict_name(change.old),
                    f"**{verdict_name(change.new)}**",
                    md_cell(row.rule_text()),
                ]
                lines.append("| " + " | ".join(cells) + " |")
    if report.rule_only:
        renamed = ", ".join(
            f"{md_cell(r.label)} ({md_cell(r.rule_text())})" for r in report.rule_only
        )
        lines += ["", f"Same verdicts, another rule: {renamed}"]
    if corpus is not None:
        counts = corpus.counts
        lines += [
            "",
            f"**Corpus:** {counts.total} item(s), {counts.changed} decision(s) change",
            "",
            "| old \\ new | allow | review | block |",
            "| --- | --- | --- | --- |",
        ]
        for index, counted in enumerate(counts.matrix):
            name = ("allow", "review", "block")[index]
            lines.append(f"| **{name}** | " + " | ".join(str(c) for c in counted) + " |")
        if counts.changed:
            lines += ["", "| Item | Old | New |", "| --- | --- | --- |"]
            lines += _changes(corpus, change_markdown)
    lines += ["", md_cell(strictness_line(result.strictness))]
    return "\n".join(lines) + "\n"


RENDERERS: Mapping[str, Callable[[DiffResult], str]] = {
    "text": diff_text,
    "markdown": diff_markdown,
    "json": json_record,
}

CHANGE_FORMATS: Mapping[str, ChangeFormat] = {
    "text": ChangeFormat(lambda change: change_text(change) + "\n", "", quoted=False),
    "markdown": ChangeFormat(lambda change: change_markdown(change) + "\n", "", quoted=False),
    "json": ChangeFormat(change_json, ",\n      ", quoted=True),
}
"""How each format writes one changed item while a corpus streams (same text as RENDERERS)."""


# -- policy sets ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairResult:
    """One pair of routes and, when their policies differ, the diff of the two."""

    pair: RoutePair
    diff: DiffResult | None


@dataclass(frozen=True, slots=True)
class SetDiffResult:
    """What ``diff`` prints for policy sets."""

    found: SetDiff
    pairs: tuple[PairResult, ...]
    old: str
    new: str

    def to_dict(self) -> dict[str, Any]:
        relation = self.found.relation
        return {
            "kind": "policy-set-diff",
            "old": {"file": self.old, "name": self.found.old.name},
            "new": {"file": self.new, "name": self.found.new.name},
            "matched_by": "route" if self.found.by_index else "context",
            "changed": len(self.found.changed),
            "pairs": [_pair_dict(p, _mentions_types(self.found) or {}) for p in self.pairs],
            "strictness": {
                "relation": relation.value,
                "stricter": [
                    _pair_ref(p.pair) for p in self.pairs if p.pair.strictness.a_more_severe
                ],
                "more_lenient": [
                    _pair_ref(p.pair) for p in self.pairs if p.pair.strictness.a_less_severe
                ],
            },
        }


def _route_dict(route: Route) -> dict[str, Any]:
    return {"index": route.index, "when": route.when_data(), "policy": route.policy_file}


def _combination_dict(combination: Any, names: Mapping[str, str]) -> dict[str, Any]:
    values, reported = combination
    return {
        "context": dict(values),
        "content_types": sorted(names.get(key, key) for key in reported),
    }


def _pair_ref(pair: RoutePair) -> dict[str, Any]:
    return {"old_route": pair.old_route.index, "new_route": pair.new_route.index}


def _pair_dict(result: PairResult, names: Mapping[str, str]) -> dict[str, Any]:
    pair = result.pair
    return {
        "old_route": _route_dict(pair.old_route),
        "new_route": _route_dict(pair.new_route),
        "combinations": [_combination_dict(c, names) for c in pair.combinations],
        "same_policy": pair.same_policy,
        "diff": None if result.diff is None else result.diff.to_dict(),
    }


def _route_text(route: Route) -> str:
    when = ", ".join(
        f"{k}={v if isinstance(v, str) else '|'.join(v)}" for k, v in route.when_data().items()
    )
    return f"route {route.index} ({when or 'always'}: {route.policy_file})"


def _mentions_types(found: SetDiff) -> Mapping[str, str] | None:
    return content_type_names(found.old.routes + found.new.routes)


def set_strictness_line(found: SetDiff) -> str:
    """One line over every combination: NEW stricter, more lenient, mixed or equal."""
    relation = found.relation
    more = [p for p in found.pairs if p.strictness.a_more_severe]
    less = [p for p in found.pairs if p.strictness.a_less_severe]
    total = len(found.pairs)
    if relation is Relation.EQUAL:
        return "strictness: equal (in every context NEW decides as OLD does)"
    if relation is Relation.STRICTER:
        return (
            f"strictness: NEW is stricter than OLD (more severe in {len(more)} of {total} "
            "route pair(s), more lenient in none)"
        )
    example_pair = less[0]
    example = (
        f"{describe(example_pair.combinations[0], _mentions_types(found))}: "
        f"{example_pair.strictness.a_less_severe[0].describe('new', 'old')}"
    )
    if relation is Relation.MORE_LENIENT:
        return (
            f"strictness: NEW is more lenient than OLD (more lenient in {len(less)} of "
            f"{total} route pair(s), more severe in none; e.g. {example})"
        )
    return (
        f"strictness: mixed, NEW is stricter than OLD in some contexts and more lenient in "
        f"others ({len(more)} route pair(s) more severe, {len(less)} more lenient; "
        f"e.g. {example})"
    )


def _pair_lines(result: PairResult, found: SetDiff) -> list[str]:
    pair = result.pair
    head = f"{_route_text(pair.old_route)} -> {_route_text(pair.new_route)}"
    if found.by_index:
        contexts = ""
    else:
        shown = [describe(c, _mentions_types(found)) for c in pair.combinations[:3]]
        more = len(pair.combinations) - len(shown)
        contexts = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
    if result.diff is None:
        return [f"{head}: same policy" + (f" [{contexts}]" if contexts else "")]
    lines = [f"{head}: {pair.strictness.relation.value}"]
    if contexts:
        lines.append(f"  contexts: {contexts}")
    lines += ["  " + line if line else "" for line in diff_text(result.diff).splitlines()]
    return lines


def set_diff_text(result: SetDiffResult) -> str:
    found = result.found
    how = "route by route" if found.by_index else "by context (the routes differ)"
    lines = [
        f"diff {result.old} ({found.old.name}) -> {result.new} ({found.new.name}): "
        f"policy sets compared {how}",
        f"{len(found.changed)} of {len(found.pairs)} route pair(s) route to a changed policy",
    ]
    for pair in result.pairs:
        lines += ["", *_pair_lines(pair, found)]
    lines += ["", set_strictness_line(found)]
    return "\n".join(lines) + "\n"


def set_diff_markdown(result: SetDiffResult) -> str:
    found = result.found
    lines = [
        f"### Policy set diff: `{md_cell(result.old)}` -> `{md_cell(result.new)}`",
        "",
        f"**{len(found.changed)} of {len(found.pairs)} route pair(s) route to a changed policy**",
    ]
    for pair in result.pairs:
        if pair.diff is None:
            continue
        title = f"{_route_text(pair.pair.old_route)} -> {_route_text(pair.pair.new_route)}"
        lines += ["", f"#### {md_cell(title)}", "", diff_markdown(pair.diff).rstrip("\n")]
    lines += ["", md_cell(set_strictness_line(found))]
    return "\n".join(lines) + "\n"


SET_RENDERERS: Mapping[str, Callable[[SetDiffResult], str]] = {
    "text": set_diff_text,
    "markdown": set_diff_markdown,
    "json": json_record,
}
