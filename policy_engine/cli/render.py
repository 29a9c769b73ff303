"""Human-readable text for decisions and diagnostics."""

from __future__ import annotations

from policy_engine.decision import Decision
from policy_engine.model import plain_number


def _number(value: float) -> str:
    return f"{plain_number(round(value, 2))}"


def decision_text(decision: Decision, title: str | None = None) -> str:
    """A short summary: the decision, then one line per reason."""
    head = decision.verdict.value.upper()
    where = f"{title}: " if title else ""
    lines = [f"{where}{head}  (policy {decision.policy_name}, {decision.policy_digest[:19]})"]
    for reason in decision.reasons():
        if reason.error is not None:
            failed = f"detector {reason.source} failed: {reason.error}"
            lines.append(f"  {reason.verdict.value:<6}  {failed}  [rule on_error]")
            continue
        confidence = reason.confidence if reason.confidence is not None else 0.0
        threshold = reason.threshold if reason.threshold is not None else 0.0
        comparison = f"{_number(confidence)} >= {_number(threshold)}"
        lines.append(
            f"  {reason.verdict.value:<6}  {reason.label} {comparison}"
            f"  [rule {reason.rule}, {reason.source}]"
        )
    allowed = sum(1 for o in decision.outcomes() if o.verdict.value == "allow")
    extras = []
    if allowed:
        extras.append(f"{allowed} label(s) allowed")
    if decision.dropped:
        extras.append(f"{len(decision.dropped)} below min_confidence")
    if extras:
        lines.append("  (" + ", ".join(extras) + ")")
    return "\n".join(lines)
