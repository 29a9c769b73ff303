"""``policy-engine table``: the exact decision table of a policy."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Any, TextIO

from policy_engine.cli import exit_codes
from policy_engine.cli.common import (
    CommandError,
    add_context_argument,
    context_or_fail,
    installed_registry,
    load_policy_or_set_or_fail,
)
from policy_engine.cli.render import group_title, json_record, md_cell
from policy_engine.compiler import compile_policy
from policy_engine.model import Policy, Verdict, plain_number
from policy_engine.policy_set import PolicySet, Route
from policy_engine.review.table import Band, DecisionTable, TableRow, decision_table


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "For every label the policy's detectors can report (their current "
        "taxonomy, or all with --all-taxonomies) and every label of the policy's labels: "
        "section, print the deciding rule and the confidence bands where it allows, reviews "
        "and blocks; then the default, for any other label. Exact: no sampling. Labels "
        "below min_confidence are dropped and get no verdict."
    )
    parser.add_argument(
        "--policy",
        required=True,
        metavar="FILE",
        help="the policy file, or a policy set (kind: policy-set): one table per route",
    )
    parser.add_argument(
        "--route",
        type=int,
        metavar="N",
        help="with a policy set: only route N (its index under routes:)",
    )
    add_context_argument(parser)
    parser.add_argument("--format", choices=tuple(RENDERERS), default="text")
    parser.add_argument(
        "--all-taxonomies",
        action="store_true",
        help="list every taxonomy a detector knows (e.g. Rekognition's model 6 too), "
        "not only the current one",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    registry = installed_registry()
    target = load_policy_or_set_or_fail(args.policy, registry, stderr)
    # without --context every route is shown: no dimension needs a value then
    context = context_or_fail(target, args.context, args.policy) if args.context else None
    if isinstance(target, Policy):
        if args.route is not None:
            raise CommandError(f"policy-engine: {args.policy} is a policy: --route does not apply")
        table = decision_table(
            compile_policy(target, registry), registry, all_taxonomies=args.all_taxonomies
        )
        stdout.write(RENDERERS[args.format](table))
        return exit_codes.OK
    routes = _chosen_routes(target, args.route, context.values if context else None)
    tables = SetTables(
        target,
        tuple(
            (
                route,
                decision_table(
                    compile_policy(route.policy, registry),
                    registry,
                    all_taxonomies=args.all_taxonomies,
                ),
            )
            for route in routes
        ),
    )
    stdout.write(SET_RENDERERS[args.format](tables))
    return exit_codes.OK


def _chosen_routes(
    policy_set: PolicySet, index: int | None, values: Mapping[str, str] | None
) -> tuple[Route, ...]:
    """Every route; or route ``index``; or those ``--context`` can take (any of
    them, as content types may go either way)."""
    routes = policy_set.routes
    if index is not None:
        chosen = tuple(route for route in routes if route.index == index)
        if not chosen:
            raise CommandError(
                f"policy-engine: --route {index}: the set has routes 0 to {len(routes) - 1}"
            )
        routes = chosen
    if values is not None:
        possible = {r.index for r in policy_set.routes_possible(values, frozenset(), True)}
        routes = tuple(route for route in routes if route.index in possible)
        if not routes:
            raise CommandError(f"policy-engine: route {index} is not taken in that context")
    return routes


@dataclass(frozen=True, slots=True)
class SetTables:
    """A policy set's decision tables: one per route shown."""

    policy_set: PolicySet
    tables: tuple[tuple[Route, DecisionTable], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_set": {"name": self.policy_set.name, "digest": self.policy_set.digest},
            "routes": [
                {**route.to_dict(), "table": table.to_dict()} for route, table in self.tables
            ],
        }


def _route_title(route: Route) -> str:
    when = ", ".join(f"{k}: {' or '.join(v)}" for k, v in route.when_data().items()) or "always"
    return f"route {route.index} (when {when}) -> {route.policy_file}"


def set_tables_text(tables: SetTables) -> str:
    parts = [f"Policy set {tables.policy_set.name} ({tables.policy_set.digest})"]
    for route, table in tables.tables:
        parts.append(f"\n== {_route_title(route)} ==\n{table_text(table)}")
    return "\n".join(parts)


def set_tables_markdown(tables: SetTables) -> str:
    parts = [
        f"## Policy set `{md_cell(tables.policy_set.name)}`\n\n"
        f"Digest `{tables.policy_set.digest}`.\n"
    ]
    for route, table in tables.tables:
        parts.append(f"\n### {md_cell(_route_title(route))}\n\n{table_markdown(table)}")
    return "".join(parts)


# -- rendering ------------------------------------------------------------------------


def dropped_note(min_confidence: float) -> str:
    return (
        f"Labels below min_confidence {plain_number(min_confidence)} are dropped: "
        "they get no verdict, whatever the rules say."
    )


def grouped(rows: Iterable[TableRow]) -> list[tuple[tuple[str, str], list[TableRow]]]:
    """Rows by (detector, taxonomy), each group in hierarchy order (a category, then
    what sits under it)."""

    def place(row: TableRow) -> tuple[str, str, tuple[tuple[bool, str], ...]]:
        # depth first by the chain from the top; a row for labels not known yet
        # comes after its category's known children
        chain = tuple(reversed(row.ancestors))
        path = tuple((row.synthetic and i == len(chain) - 1, k) for i, k in enumerate(chain))
        return (row.source, row.taxonomy, path)

    ordered = sorted(rows, key=place)
    return [
        (key, list(members))
        for key, members in groupby(ordered, key=lambda r: (r.source, r.taxonomy))
    ]


def table_text(table: DecisionTable) -> str:
    lines = [
        f"Decision table of policy {table.policy_name} ({table.policy_digest})",
        dropped_note(table.min_confidence),
    ]
    for (source, taxonomy), rows in grouped(table.rows):
        lines.append("")
        lines.append(f"{group_title(source, taxonomy)}:")
        for row in rows:
            depth = max(len(row.ancestors) - 1, 0)
            lines.append("  " + "  " * depth + row.describe())
    lines.append("")
    default = table.default_row
    bands = ", ".join(f"{b.describe()} {b.verdict.value}" for b in default.bands)
    lines.append(f"default (any other label): {bands} - rule {default.rule}")
    return "\n".join(lines) + "\n"


def band_cells(bands: Iterable[Band]) -> list[str]:
    """One cell per verdict (allow, review, block): its range, or empty."""
    by_verdict = {band.verdict: band.describe() for band in bands}
    return [by_verdict.get(verdict, "") for verdict in Verdict]


def table_markdown(table: DecisionTable) -> str:
    header = (
        "| Label | Parent | allow | review | block | Rule |\n| --- | --- | --- | --- | --- | --- |"
    )
    lines = [
        f"### Decision table of `{md_cell(table.policy_name)}`",
        "",
        f"Digest `{table.policy_digest}`. {dropped_note(table.min_confidence)}",
    ]
    for (source, taxonomy), rows in grouped(table.rows):
        lines += ["", f"#### {md_cell(group_title(source, taxonomy))}", "", header]
        for row in rows:
            cells = [md_cell(row.label), md_cell(row.parent), *band_cells(row.bands)]
            rule = f"`{md_cell(row.rule)}`"
            if row.rule_file:  # written in a base the policy extends
                rule += f" ({md_cell(row.rule_file)})"
            lines.append("| " + " | ".join([*cells, rule]) + " |")
    default = table.default_row
    lines += ["", "#### Any other label", "", header]
    cells = ["*any other label*", "", *band_cells(default.bands), f"`{default.rule}`"]
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


RENDERERS: Mapping[str, Callable[[DecisionTable], str]] = {
    "text": table_text,
    "markdown": table_markdown,
    "json": json_record,
}

SET_RENDERERS: Mapping[str, Callable[[SetTables], str]] = {
    "text": set_tables_text,
    "markdown": set_tables_markdown,
    "json": json_record,
}
