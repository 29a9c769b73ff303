"""Human-readable text for decisions and diagnostics."""

from __future__ import annotations

from policy_engine.decision import Decision


def decision_text(decision: Decision, title: str | None = None) -> str:
    """A short summary: the decision, then one line per reason."""
    head = decision.decision.value.upper()
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
