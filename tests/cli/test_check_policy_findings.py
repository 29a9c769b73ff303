"""``policy-engine check`` and the linter (POLICY_SPEC 7): a rule name no taxonomy knows
stops the run before any image, and every warning of the policy is printed first."""

from __future__ import annotations

import pytest

POLICY = """\
version: 1
name: findings
detectors: {rekognition-moderation: {}}
rules:
  - id: explicit
    match: {parent: Explicit}
    block_at: 80
"""


@pytest.fixture
def explicit(h, tmp_path):
    """An explicit image, recorded for --replay (no call leaves the machine)."""
    image = h.write_image(tmp_path / "imgs" / "x.png", h.png(b"an explicit image"))
    h.record(tmp_path / "rec", image, h.moderation(("Explicit Nudity", "Explicit", 97.0)))
    return image


def test_a_misspelt_category_stops_check_before_any_image(h, tmp_path, explicit):
    # before: no word on stderr, exit 0, and the explicit image allowed
    policy = h.write_text(tmp_path / "p.yaml", POLICY.replace("Explicit}", "Explicitt}"))

    result = h.run("check", "--policy", policy, "--replay", tmp_path / "rec", explicit)

    assert result.code == 2, result
    assert result.out == ""
    assert [(d["severity"], d["code"], d["line"]) for d in result.diagnostics()] == [
        ("error", "unknown-parent", 6)
    ], result
    assert "did you mean 'Explicit'?" in result.err


def test_an_acknowledged_name_runs_and_its_warning_is_printed(h, tmp_path, explicit):
    text = POLICY.replace(
        "    block_at: 80\n",
        "    block_at: 80\n  - id: new\n    match: {name: Brand New Label}"
        "  # policy-engine: ignore[unknown-name]\n    block_at: 80\n",
    )
    policy = h.write_text(tmp_path / "p.yaml", text)

    result = h.run("check", "--policy", policy, "--replay", tmp_path / "rec", explicit)

    assert result.code == 0, result
    assert [r["decision"] for r in result.jsonl()] == ["block"]
    assert [(d["severity"], d["code"], d["line"]) for d in result.diagnostics()] == [
        ("warning", "unknown-name", 9)
    ], result


def test_check_prints_every_warning_of_the_policy(h, tmp_path, explicit):
    text = POLICY.replace("rules:", "on_error: allow\nrules:").replace(
        "detectors: {rekognition-moderation: {}}",
        "detectors: {rekognition-moderation: {region: us-esat-1}}",
    )
    policy = h.write_text(tmp_path / "p.yaml", text)

    result = h.run("check", "--policy", policy, "--replay", tmp_path / "rec", explicit)

    assert result.code == 0, result
    assert [r["decision"] for r in result.jsonl()] == ["block"]
    assert [(d["severity"], d["code"], d["line"]) for d in result.diagnostics()] == [
        ("warning", "unknown-region", 3),
        ("warning", "on-error-allow", 4),
    ], result
