"""``policy-engine check``: run the policy's detectors (here the stub, replaying
recordings) over image files and folders; JSON Lines out, a summary on stderr."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

RULES = """\
rules:
  - id: violence
    match: {parent: Violence}
    review_at: 60
    block_at: 90
"""


def stub_policy(recordings: str, *, extra: str = "") -> str:
    return (
        "version: 1\nname: check-test\n"
        + extra
        + f"detectors:\n  stub: {{recordings: {recordings}}}\n"
        + RULES
    )


def summary_counts(stderr: str) -> dict[str, int]:
    """The counts per verdict in the summary line on stderr."""
    lines = [line for line in stderr.splitlines() if re.search(r"\b\d+ allow\b", line)]
    assert len(lines) == 1, stderr
    return {
        v: int(n) for n, v in re.findall(r"\b(\d+) (allow|review|block|unreadable)\b", lines[0])
    }


@pytest.fixture
def tree(h, tmp_path):
    """pol/policy.yaml with `recordings: rec` (relative), pol/rec/, and images:
    imgs/a.jpg block, imgs/b.jpeg review, imgs/d1/c.png allow (default rule),
    imgs/d2/e.JPG allow (no labels)."""
    pol = tmp_path / "pol"
    rec = pol / "rec"
    imgs = tmp_path / "imgs"
    policy = h.write_text(pol / "policy.yaml", stub_policy("rec"))
    # created in reverse order, so that creation order is not the sorted order
    e = h.write_image(imgs / "d2" / "e.JPG", b"image e")
    c = h.write_image(imgs / "d1" / "c.png", b"image c")
    b = h.write_image(imgs / "b.jpeg", b"image b")
    a = h.write_image(imgs / "a.jpg", b"image a")
    h.record(rec, a, h.moderation(("Weapon Violence", "Violence", 95.0)))
    h.record(rec, b, h.moderation(("Violence", "", 70.0)))
    h.record(rec, c, h.moderation(("Smoking", "Drugs & Tobacco", 80.0)))
    h.record(rec, e, h.moderation())
    return {"policy": policy, "rec": rec, "imgs": imgs, "images": [a, b, c, e]}


def test_folder_recurses_sorted_with_recordings_relative_to_policy(h, tree, elsewhere):
    policy_arg = os.path.relpath(tree["policy"], elsewhere)

    result = h.run("check", "--policy", policy_arg, "--ordered", tree["imgs"], cwd=elsewhere)

    assert result.code == 0, result
    records = result.jsonl()
    assert [r["input"] for r in records] == [str(p) for p in tree["images"]], result
    for path, record in zip(tree["images"], records, strict=True):
        assert record["sha256"] == h.sha256_of(path)
        assert h.decision_errors(record) == [], record
        assert record["errors"] == [], record
    assert [r["decision"] for r in records] == ["block", "review", "allow", "allow"]
    assert [(r["rule"], r["label"], r["threshold"]) for r in records[0]["reasons"]] == [
        ("violence", "Weapon Violence", 90)
    ]
    assert [(r["rule"], r["threshold"]) for r in records[1]["reasons"]] == [("violence", 60)]
    assert [(lb["name"], lb["rule"], lb["verdict"]) for lb in records[2]["labels"]] == [
        ("Smoking", "default", "allow")
    ]
    assert records[3]["labels"] == []
    # replayed labels keep the source of the detector that recorded them
    assert records[0]["reasons"][0]["source"] == "rekognition-moderation"
    assert summary_counts(result.err) == {"allow": 2, "review": 1, "block": 1}


def test_text_format_and_fail_on_review(h, tree, elsewhere):
    result = h.run(
        "check",
        "--policy",
        tree["policy"],
        tree["imgs"],
        "--format",
        "text",
        "--fail-on",
        "review",
        cwd=elsewhere,
    )

    assert result.code == 1, result
    out = result.out
    a, b, c, e = (str(p) for p in tree["images"])
    assert re.search(rf"^{re.escape(a)}: BLOCK\b", out, re.M), out
    assert re.search(rf"^{re.escape(b)}: REVIEW\b", out, re.M), out
    assert re.search(rf"^{re.escape(c)}: ALLOW\b", out, re.M), out
    assert re.search(rf"^{re.escape(e)}: ALLOW\b", out, re.M), out
    assert "rule violence" in out
    assert "Weapon Violence" in out
    assert summary_counts(result.err) == {"allow": 2, "review": 1, "block": 1}

    # nothing reaches review among the allowed images: exit 0
    allowed = h.run("check", "--policy", tree["policy"], *tree["images"][2:], "--fail-on", "review")
    assert allowed.code == 0, allowed
    assert [r["decision"] for r in allowed.jsonl()] == ["allow", "allow"]


@pytest.mark.parametrize(
    ("on_error", "verdict"), [(None, "review"), ("block", "block"), ("allow", "allow")]
)
def test_image_without_recording_gets_the_on_error_verdict(h, tmp_path, on_error, verdict):
    extra = f"on_error: {on_error}\n" if on_error else ""
    policy = h.write_text(tmp_path / "policy.yaml", stub_policy("rec", extra=extra))
    recorded = h.write_image(tmp_path / "recorded.png", b"recorded")
    unrecorded = h.write_image(tmp_path / "unrecorded.png", b"unrecorded")
    h.record(tmp_path / "rec", recorded, h.moderation())

    result = h.run("check", "--policy", policy, "--ordered", recorded, unrecorded)

    assert result.code == 3, result  # one image was not really checked, whatever on_error says
    first, second = result.jsonl()
    assert first["decision"] == "allow" and first["errors"] == []
    assert h.decision_errors(second) == [], second
    assert second["input"] == str(unrecorded)
    assert second["sha256"] == h.sha256_of(unrecorded)
    assert second["decision"] == verdict
    assert len(second["errors"]) == 1, second
    assert second["errors"][0]["source"] == "stub"
    assert h.sha256_of(unrecorded) in second["errors"][0]["error"]
    on_error_reasons = [r for r in second["reasons"] if r["rule"] == "on_error"]
    if verdict == "allow":
        assert on_error_reasons == [], second
    else:
        assert [(r["verdict"], r["source"]) for r in on_error_reasons] == [(verdict, "stub")]
        assert on_error_reasons[0]["error"] == second["errors"][0]["error"]
    assert summary_counts(result.err)[verdict] == (2 if verdict == "allow" else 1)


def test_misspelt_recordings_folder_never_allows(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", stub_policy("recordngs"))
    image = h.write_image(tmp_path / "x.jpg", b"x")
    h.record(tmp_path / "recordings", image, h.moderation())

    result = h.run("check", "--policy", policy, image)

    assert result.code == 3, result
    (record,) = result.jsonl()
    assert record["decision"] == "review"
    assert "recordngs" in record["errors"][0]["error"]


def test_invalid_recording_is_a_detector_error_naming_the_field(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", stub_policy("rec"))
    image = h.write_image(tmp_path / "x.jpg", b"x")
    h.write_text(
        tmp_path / "rec" / f"{h.sha256_of(image)}.json",
        '{"ModerationLabels": [{"Name": "Violence", "ParentName": "", "Confidence": 1e999}]}',
    )

    result = h.run("check", "--policy", policy, image)

    assert result.code == 3, result
    (record,) = result.jsonl()
    assert record["decision"] == "review", record  # never allow, never a label at "inf"
    assert record["labels"] == []
    assert "ModerationLabels[0].Confidence" in record["errors"][0]["error"]


def test_missing_path_gives_an_error_record_and_exit_3(h, tree, elsewhere):
    a, b, _, _ = tree["images"]
    missing = tree["imgs"] / "gone.jpg"

    result = h.run("check", "--policy", tree["policy"], "--ordered", a, missing, b, cwd=elsewhere)

    assert result.code == 3, result
    records = result.jsonl()
    assert [r["input"] for r in records] == [str(a), str(missing), str(b)]
    assert [r.get("decision") for r in records] == ["block", None, "review"]
    assert records[1]["error"]
    assert records[1].get("sha256") is None
    assert "error" not in records[0] and "error" not in records[2]
    counts = summary_counts(result.err)
    assert (counts["block"], counts["review"], counts["allow"]) == (1, 1, 0)
    assert counts.get("unreadable") == 1


def test_replay_replaces_the_policys_detectors(h, tmp_path, elsewhere):
    # Were the policy's own detectors run, the stub's fixed label would block
    # everything, and rekognition would fail (nothing listens on port 9).
    policy = h.write_text(
        tmp_path / "pol" / "policy.yaml",
        "version: 1\nname: replay-test\n"
        "detectors:\n"
        "  stub:\n    labels: [{name: Violence, confidence: 99}]\n"
        "  rekognition-moderation:\n"
        "    region: us-east-1\n    endpoint_url: http://127.0.0.1:9\n"
        "    max_attempts: 1\n    connect_timeout: 1\n    read_timeout: 1\n" + RULES,
    )
    replay = elsewhere / "replays"
    calm = h.write_image(tmp_path / "imgs" / "calm.png", h.png(b"calm"))
    fight = h.write_image(tmp_path / "imgs" / "fight.png", h.png(b"fight"))
    h.record(replay, calm, h.moderation(("Smoking", "Drugs & Tobacco", 80.0)))
    h.record(replay, fight, h.moderation(("Weapon Violence", "Violence", 97.0)))

    # --replay relative to the working folder
    result = h.run(
        "check",
        "--policy",
        policy,
        tmp_path / "imgs",
        "--replay",
        "replays",
        "--ordered",
        cwd=elsewhere,
    )

    assert result.code == 0, result
    calm_record, fight_record = result.jsonl()
    assert calm_record["input"] == str(calm)
    assert calm_record["decision"] == "allow", calm_record
    assert fight_record["decision"] == "block", fight_record
    for record in (calm_record, fight_record):
        assert record["errors"] == [], record
        assert set(record["detectors"]) == {"stub"}
        assert {lb["source"] for lb in record["labels"]} == {"rekognition-moderation"}


def test_replay_of_a_missing_folder(h, tree, elsewhere):
    result = h.run(
        "check",
        "--policy",
        tree["policy"],
        tree["imgs"],
        "--replay",
        "no-such-folder",
        cwd=elsewhere,
    )

    assert result.code == 2, result
    assert result.out == ""
    assert "no-such-folder" in result.err


def test_policy_without_detectors_and_without_replay(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", "version: 1\nname: no-detectors\n" + RULES)
    image = h.write_image(tmp_path / "x.jpg", b"x")

    result = h.run("check", "--policy", policy, image)

    assert result.code == 2, result
    assert result.out == ""
    assert "detectors" in result.err and "--replay" in result.err, result


def test_policy_that_does_not_load(h, tmp_path):
    policy = h.write_text(
        tmp_path / "policy.yaml",
        "version: 1\nname: bad\ndetectors:\n  stub: {recordings: rec, colour: red}\n" + RULES,
    )
    image = h.write_image(tmp_path / "x.jpg", b"x")

    result = h.run("check", "--policy", policy, image)

    assert result.code == 2, result
    assert result.out == ""
    found = result.diagnostics("err")
    assert found and all(d["file"] == str(policy) for d in found), result
    assert any(d["line"] == 4 and "colour" in d["message"] for d in found), result


def test_the_recording_follows_the_bytes_not_the_name(h, tree, tmp_path):
    """Recordings are found by the sha256 of the image bytes: a link under
    another name (and folder) gets the same decision."""
    link = tmp_path / "renamed.png"
    os.symlink(tree["images"][0], link)

    result = h.run("check", "--policy", tree["policy"], link)

    assert result.code == 0, result
    (record,) = result.jsonl()
    assert record["sha256"] == h.sha256_of(Path(tree["images"][0]))
    assert record["decision"] == "block"


def test_every_check_record_validates_against_the_decision_schema(h, tree):
    """``schema --decision`` says that check writes `error` instead of a decision
    for an input it could not read; such a record must validate too, or a
    consumer validating check's output against the schema rejects it."""
    a = tree["images"][0]
    missing = tree["imgs"] / "gone.jpg"

    result = h.run("check", "--policy", tree["policy"], "--ordered", a, missing)

    assert result.code == 3, result
    records = result.jsonl()
    assert [bool(r.get("error")) for r in records] == [False, True]
    assert [h.decision_errors(r) for r in records] == [[], []], records


def test_a_detector_failure_outranks_fail_on(h, tmp_path):
    """on_error: block with --fail-on block: the run still says it is incomplete (3), not
    just "something was blocked" (1): that image was never really checked."""
    policy = h.write_text(tmp_path / "policy.yaml", stub_policy("rec", extra="on_error: block\n"))
    image = h.write_image(tmp_path / "unrecorded.png", b"unrecorded")

    result = h.run("check", "--policy", policy, image, "--fail-on", "block")

    assert result.code == 3, result
    (record,) = result.jsonl()
    assert record["decision"] == "block" and record["errors"], record
    assert "1 with detector errors" in result.err


def test_the_readme_quickstart_runs_as_it_says(h):
    """The main job, as the README gives it: 3 allow, 2 review, 2 block offline,
    and exit 3 for the image without a recording."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    (command,) = re.findall(r"&& python -m policy_engine (check [^\n`]+)", readme)

    result = h.run(*shlex.split(command), "--format", "jsonl", module=True, cwd=root)

    assert result.code == 3, result
    assert "so the command exits 3" in readme
    decisions = sorted(r["decision"] for r in result.jsonl())
    assert decisions == ["allow"] * 3 + ["block"] * 2 + ["review"] * 2
    assert summary_counts(result.err) == {"allow": 3, "review": 2, "block": 2}
