"""What several commands print: decisions as text, any record as JSON, Markdown
cells, the title of a detector's group of labels.

A command with ``--format`` keeps one map from each format's name to a
function of its result (``RENDERERS``), takes the choices of ``--format``
from it and writes ``RENDERERS[args.format](result)``, as ``validate`` does
with :data:`policy_engine.cli.report_formats.RENDERERS`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from policy_engine.decision import Decision
from policy_engine.model import plain_number
from policy_engine.policy_set import SetDecision
from policy_engine.review.table import POLICY_LABELS
from policy_engine.text import json_dumps


class Record(Protocol):
    def to_dict(self) -> Mapping[str, Any]: ...


def json_record(result: Record) -> str:
    """``result.to_dict()`` as indented JSON, with a final newline."""
    return json_dumps(result.to_dict(), indent=2) + "\n"


def _number(value: float) -> str:
    return f"{plain_number(round(value, 2))}"


def decision_text(decision: Decision, title: str | None = None) -> str:
    """A short summary: the decision, then one line per reason."""
    head = decision.verdict.value.upper()
    where = f"{title}: " if title else ""
    lines = [f"{where}{head}  (policy {decision.policy_name}, {decision.policy_digest[:19]})"]
    lines.extend(f"  {reason.describe()}" for reason in decision.reasons())
    allowed = sum(1 for o in decision.outcomes() if o.verdict.value == "allow")
    extras = []
    if allowed:
        extras.append(f"{allowed} label(s) allowed")
    if decision.dropped:
        extras.append(f"{len(decision.dropped)} below min_confidence")
    if extras:
        lines.append("  (" + ", ".join(extras) + ")")
    return "\n".join(lines)


def route_lines(decided: SetDecision) -> list[str]:
    """How a policy set routed an image: the set, the context, the route (and
    every route considered, when a failed detector left content types unknown)."""
    context = ", ".join(f"{k}={v}" for k, v in decided.context.values.items()) or "none"
    lines = [
        f"policy set {decided.set_name} ({decided.set_digest[:19]}), context {context}",
        f"route {decided.route.index} -> {decided.route.policy_file}",
    ]
    if len(decided.considered) > 1:
        shown = ", ".join(str(route.index) for route in decided.considered)
        lines.append(
            f"  (a detector failed, so content types are unknown: decided under routes "
            f"{shown}; the most severe stands)"
        )
    return lines


def set_decision_text(decided: SetDecision) -> str:
    """:func:`route_lines`, then :func:`decision_text` of the routed policy's decision."""
    return "\n".join([*route_lines(decided), decision_text(decided.decision)])


def md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def group_title(source: str, taxonomy: str) -> str:
    """The heading of one detector's labels under one taxonomy (or the policy's labels:)."""
    if taxonomy == POLICY_LABELS:
        return f"{source} (labels from the policy's labels: section)"
    return f"{source}, taxonomy {taxonomy}"
