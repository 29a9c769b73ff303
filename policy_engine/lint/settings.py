"""Lint checks of the policy's own settings: thresholds under the floor or on a
0-1 scale, ``on_error: allow``, no detectors; and, with the installed
detectors, rules whose source no detector has and each detector's own
checks of its settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from policy_engine.lint.context import LintContext, number
from policy_engine.model import Body, Verdict
from policy_engine.source import JsonPath

if TYPE_CHECKING:
    from policy_engine.plugins import DetectorRegistry


def _bodies(context: LintContext) -> list[tuple[Body, JsonPath]]:
    """Every body that sets thresholds, with where it stands: the rules', then the default's."""
    bodies = [(rule.body, context.rule_path(i)) for i, rule in enumerate(context.policy.rules)]
    bodies.append((context.policy.default, ("default",)))
    return bodies


def check_floors(context: LintContext) -> None:
    floor = context.policy.min_confidence
    for body, path in _bodies(context):
        for key, value in (("review_at", body.review_at), ("block_at", body.block_at)):
            if value is not None and 0 < value < floor:
                context.warn(
                    "threshold-below-floor",
                    f"{key} {value:g} is below min_confidence {floor:g}: labels under "
                    f"{floor:g} are dropped, so this band starts at {floor:g}; raise "
                    f"{key} to {floor:g} or lower min_confidence",
                    (*path, key),
                )


def check_scale(context: LintContext) -> None:
    """Thresholds that all lie at or below 1: a 0-1 scale written by mistake
    (0.8 for 80%), which reviews or blocks nearly every label."""
    written: list[tuple[float, JsonPath]] = []
    for body, path in _bodies(context):
        for key in ("review_at", "block_at"):
            value = getattr(body, key)
            if value is not None:
                written.append((value, (*path, key)))
    if not written:
        return
    numbers = [value for value, _ in written]
    if isinstance(context.data, dict) and "min_confidence" in context.data:
        numbers.append(context.policy.min_confidence)
    if max(numbers) > 1 or max(numbers) <= 0:
        return
    shown = ", ".join(number(v) for v in sorted(set(numbers))[:3])
    context.warn(
        "threshold-scale",
        f"every threshold in this policy is at most 1 ({shown}"
        f"{', ...' if len(set(numbers)) > 3 else ''}), but confidences run from 0 to "
        "100, not 0 to 1: these bands fire at almost any confidence; write e.g. 80 "
        "for 80%",
        min(written, key=lambda item: context.source_map.at(item[1]))[1],
    )


def check_on_error(context: LintContext) -> None:
    if context.policy.on_error is not Verdict.ALLOW:
        return
    context.warn(
        "on-error-allow",
        "on_error: allow lets an image through unchecked whenever a detector fails "
        "(an outage, throttling, a malformed response, an unreadable image): a failure "
        "then yields allow; use review (the default) or block, unless allowing "
        "unchecked images is meant",
        ("on_error",),
    )


def check_no_detectors(context: LintContext) -> None:
    data = context.data
    written = data.get("detectors", {}) if isinstance(data, dict) else None
    if context.policy.detectors or written != {}:
        return  # named, or not a map (the schema says so)
    installed = ""
    if context.registry is not None:
        installed = f" (installed: {', '.join(context.registry.names()) or 'none'})"
    context.warn(
        "no-detectors",
        "the policy names no detectors: check, the embedding API and the Lambda "
        "function refuse to run it (only evaluate, test and check --replay bring "
        "labels of their own), and its rule names are checked against every installed "
        f"detector; name the detectors it runs under detectors:{installed}",
        ("detectors",),
    )


def check_detector_settings(context: LintContext, registry: DetectorRegistry) -> None:
    """Each detector's own checks of its settings
    (:meth:`~policy_engine.detectors.Detector.lint_settings`)."""
    for name, settings in context.policy.detectors.items():
        if name not in registry or not isinstance(settings, Mapping):
            continue  # unknown-detector / the schema say it
        try:
            findings = tuple(registry.get(name).lint_settings(settings))
        except Exception:  # a plugin's optional check must never break loading
            continue
        for finding in findings:
            context.warn(finding.code, finding.message, ("detectors", name, *finding.path))


def check_sources(context: LintContext, registry: DetectorRegistry) -> None:
    policy = context.policy
    for position, rule in enumerate(policy.rules):
        source = rule.match.source
        if source is None or source in registry or source in policy.detectors:
            continue
        context.warn(
            "unknown-source",
            f"no installed detector is named {source!r}, so this rule selects nothing "
            f"and never decides (installed: {', '.join(registry.names()) or 'none'}); "
            "fix the name or install the plugin",
            (*context.rule_path(position), "match", "source"),
        )
