"""``policy-engine check`` under inputs nobody expects: every file gets a record,
a replay refuses what a live run would, nothing is read unbounded or waited on
forever, any file name survives, and a closed output is never an exit 0."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time

import pytest

# The policy names Rekognition, replayed by the stub: Rekognition's own
# pre-call checks still apply, as in a live run.
POLICY = """\
version: 1
name: inputs-test
detectors:
  rekognition-moderation: {}
rules:
  - id: violence
    match: {parent: Violence}
    block_at: 90
"""


@pytest.fixture
def setup(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", POLICY)
    recordings = tmp_path / "rec"
    recordings.mkdir()
    return policy, recordings


def _by_input(result):
    return {os.path.basename(r["input"]): r for r in result.jsonl()}


def test_every_file_under_a_folder_gets_a_record_and_the_run_is_incomplete(h, tmp_path, setup):
    policy, recordings = setup
    imgs = tmp_path / "imgs"
    fight = h.write_image(imgs / "fight.png", h.png(b"fight"))
    hidden = h.write_image(imgs / ".hidden.png", h.png(b"hidden"))
    h.write_image(imgs / "notes.txt", b"just some notes")
    h.write_image(imgs / "anim.gif", b"GIF89a" + b"\0" * 20)
    linked = h.write_image(tmp_path / "elsewhere" / "linked.png", h.png(b"linked"))
    (imgs / "via-link").symlink_to(linked.parent)
    (imgs / "via-link-loop").symlink_to(imgs)
    os.mkfifo(imgs / "pipe.png")
    for image in (fight, hidden, linked):
        h.record(recordings, image, h.moderation(("Weapon Violence", "Violence", 97.0)))

    result = h.run("check", "--policy", policy, "--replay", recordings, imgs, timeout=30)

    records = _by_input(result)
    assert sorted(records) == sorted(
        [
            ".hidden.png",
            "anim.gif",
            "fight.png",
            "linked.png",
            "notes.txt",
            "pipe.png",
            "via-link-loop",
        ]
    ), result
    # images under a hidden name or behind a link are checked like any other
    for name in ("fight.png", ".hidden.png", "linked.png"):
        assert records[name]["decision"] == "block", records[name]
    # what Rekognition would refuse is refused, with its reason, never allowed
    for name, reason in (("notes.txt", "not a recognised image format"), ("anim.gif", "GIF")):
        assert records[name]["decision"] == "review", records[name]
        assert reason in records[name]["errors"][0]["error"], records[name]
        assert records[name]["errors"][0]["source"] == "rekognition-moderation"
    assert "FIFO" in records["pipe.png"]["error"]
    assert "cycle" in records["via-link-loop"]["error"]
    assert result.code == 3, result
    assert "2 unreadable" in result.err and "2 with detector errors" in result.err


@pytest.mark.parametrize(
    ("content", "reason", "code"),
    [
        (b"", "is empty", "empty-image"),
        (
            b"this is text, not a picture",
            "not a recognised image format",
            "unsupported-image-format",
        ),
    ],
)
def test_a_replay_refuses_what_a_live_run_would(h, tmp_path, setup, content, reason, code):
    policy, recordings = setup
    image = h.write_image(tmp_path / "upload.png", content)
    # even a recording made for these bytes does not bypass the input checks
    h.record(recordings, image, h.moderation())

    result = h.run("check", "--policy", policy, "--replay", recordings, image)

    (record,) = result.jsonl()
    assert record["decision"] == "review", record
    assert record["errors"][0]["code"] == code
    assert reason in record["errors"][0]["error"]
    assert "no recording" not in result.out
    assert result.code == 3


def test_an_empty_image_is_refused_by_a_stub_only_policy_too(h, tmp_path):
    recordings = tmp_path / "rec"
    policy = h.write_text(
        tmp_path / "policy.yaml",
        f"version: 1\nname: stub-only\ndetectors:\n  stub: {{recordings: {recordings}}}\n"
        "rules: []\n",
    )
    image = h.write_image(tmp_path / "empty.png", b"")
    h.record(recordings, image, h.moderation())

    result = h.run("check", "--policy", policy, image)

    (record,) = result.jsonl()
    assert record["decision"] == "review"
    assert [(e["source"], e["code"]) for e in record["errors"]] == [("stub", "empty-image")]
    assert "is empty" in record["errors"][0]["error"]
    assert result.code == 3


def test_a_file_over_the_limit_and_an_endless_device_are_never_read_whole(h, tmp_path, setup):
    policy, recordings = setup
    big = h.write_image(tmp_path / "big.png", h.png(b"x" * 5_300_000))

    started = time.monotonic()
    result = h.run("check", "--policy", policy, "--replay", recordings, big, "/dev/zero")
    assert time.monotonic() - started < 20

    records = _by_input(result)
    assert "over the 5,242,880" in records["big.png"]["error"], result
    assert "character device" in records["zero"]["error"], result
    assert result.code == 3


def test_file_names_that_are_not_utf8_are_kept_recoverably(h, tmp_path, setup):
    policy, recordings = setup
    folder = tmp_path / "imgs"
    folder.mkdir()
    raw_name = os.fsencode(folder) + b"/caf\xe9.png"
    with open(raw_name, "wb") as stream:
        stream.write(h.png(b"cafe"))
    h.record(recordings, tmp_path / "imgs" / os.fsdecode(b"caf\xe9.png"), h.moderation())

    from_folder = h.run("check", "--policy", policy, "--replay", recordings, folder)
    from_stdin = subprocess.run(
        ["policy-engine", "check", "--policy", str(policy), "--replay", str(recordings), "-"],
        input=raw_name + b"\n",
        capture_output=True,
        env=h.cli_env(),
        timeout=60,
    )

    assert from_folder.code == 0, from_folder
    assert from_stdin.returncode == 0, from_stdin.stderr
    for out in (from_folder.out.encode("utf-8"), from_stdin.stdout):
        (record,) = [json.loads(line) for line in out.decode("utf-8").splitlines()]
        assert record["decision"] == "allow"
        assert record["input"].endswith("caf\\xe9.png")
        assert base64.b64decode(record["input_base64"]) == raw_name


def test_a_lone_surrogate_in_a_recording_is_a_detector_error_never_a_crash(h, tmp_path, setup):
    policy, recordings = setup
    image = h.write_image(tmp_path / "img.png", h.png(b"img"))
    (recordings / f"{h.sha256_of(image)}.json").write_text(
        '{"ModerationLabels": [{"Name": "Weapon Violence\\ud800", "ParentName": "Violence",'
        ' "Confidence": 99.0}], "ModerationModelVersion": "7.0\\udfff"}',
        encoding="utf-8",
    )
    other = h.write_image(tmp_path / "other.png", h.png(b"other"))
    h.record(recordings, other, h.moderation(("Weapon Violence", "Violence", 97.0)))

    result = h.run("check", "--policy", policy, "--replay", recordings, image, other, "--ordered")

    first, second = result.jsonl()  # both records written: nothing decided is lost
    assert first["decision"] == "review"
    assert "lone surrogate" in first["errors"][0]["error"]
    assert second["decision"] == "block"
    assert result.code == 3, result
    assert "Traceback" not in result.err


def test_a_closed_output_pipe_is_exit_141_not_0_and_no_traceback(h, tmp_path, setup):
    policy, recordings = setup
    folder = tmp_path / "imgs"
    image = h.write_image(folder / "0000.png", h.png(b"same"))
    h.record(recordings, image, h.moderation(("Weapon Violence", "Violence", 97.0)))
    for index in range(1, 300):  # more records than a pipe buffers
        (folder / f"{index:04}.png").write_bytes(image.read_bytes())

    process = subprocess.Popen(
        ["policy-engine", "check", "--policy", str(policy), "--replay", str(recordings), folder],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=h.cli_env(),
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # the reader goes away, as `head -1` does
    err = process.stderr.read().decode()
    code = process.wait(timeout=60)

    assert json.loads(first)["decision"] == "block"
    assert code == 141, err
    assert "the output closed" in err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_a_model_version_of_thousands_of_digits_is_an_unknown_version(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", POLICY)
    response = h.moderation(("Weapon Violence", "Violence", 97.0), version="7" * 5000)
    labels = h.write_json(tmp_path / "labels.json", response)

    for command in ("evaluate", "explain"):
        result = h.run(command, "--policy", policy, "--labels", labels)
        assert result.code == 0, result
        assert "Traceback" not in result.err
    assert (
        "BLOCK" in h.run("evaluate", "--policy", policy, "--labels", labels, "--format", "text").out
    )


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "1e300"])
def test_detector_timeout_must_be_a_positive_finite_number(h, tmp_path, setup, seconds):
    policy, _ = setup
    result = h.run("check", "--policy", policy, "--detector-timeout", seconds, tmp_path)
    assert result.code == 2
    assert "--detector-timeout" in result.err and "Traceback" not in result.err


def test_names_on_stdin_are_taken_exactly_spaces_included(h, tmp_path, setup):
    policy, recordings = setup
    folder = tmp_path / "imgs"
    violent = h.write_image(folder / "upload.png ", h.png(b"violent"))  # a trailing space
    calm = h.write_image(folder / "upload.png", h.png(b"calm"))
    h.record(recordings, violent, h.moderation(("Weapon Violence", "Violence", 97.0)))
    h.record(recordings, calm, h.moderation())
    command = ["policy-engine", "check", "--policy", str(policy), "--replay", str(recordings)]

    by_lines = subprocess.run(
        [*command, "-"],
        input=f"{violent}\n{calm}\r\n".encode(),
        capture_output=True,
        env=h.cli_env(),
        timeout=60,
    )
    by_nul = subprocess.run(
        [*command, "-0", "-"],
        input=f"{violent}\0{calm}".encode(),
        capture_output=True,
        env=h.cli_env(),
        timeout=60,
    )

    for run in (by_lines, by_nul):
        records = {json.loads(line)["input"]: json.loads(line) for line in run.stdout.splitlines()}
        assert records[str(violent)]["decision"] == "block", run.stderr
        assert records[str(calm)]["decision"] == "allow"


def test_an_input_that_cannot_be_looked_at_costs_one_record_not_the_run(h, tmp_path, setup):
    policy, recordings = setup
    image = h.write_image(tmp_path / "ok.png", h.png(b"ok"))
    h.record(recordings, image, h.moderation())

    result = h.run(
        "check", "--policy", policy, "--replay", recordings, "", "x" * 5000, image, "--ordered"
    )

    empty, too_long, fine = result.jsonl()
    assert "empty name" in empty["error"]
    assert "too long" in too_long["error"]
    assert fine["decision"] == "allow"
    assert result.code == 3, result
    assert "Traceback" not in result.err


def test_stores_that_cannot_serve_are_refused_before_any_image(h, tmp_path, setup):
    policy, recordings = setup
    image = h.write_image(tmp_path / "ok.png", h.png(b"ok"))
    h.record(recordings, image, h.moderation())
    not_a_folder = h.write_text(tmp_path / "file", "x")

    no_cache = h.run("check", "--policy", policy, "--cache", tmp_path / "missing", image)
    no_record = h.run("check", "--policy", policy, "--record", not_a_folder / "sub", image)

    assert no_cache.code == 2 and "--cache" in no_cache.err and no_cache.out == ""
    assert no_record.code == 2 and "--record" in no_record.err and no_record.out == ""
    # the same new folder as cache and record is fine: the first run fills it
    both = tmp_path / "rec-new"
    first = h.run(
        "check",
        "--policy",
        policy,
        "--replay",
        recordings,
        "--cache",
        both,
        "--record",
        both,
        image,
    )
    assert first.code == 0, first


def test_a_full_disk_under_the_output_is_exit_3_with_a_summary(h, tmp_path, setup):
    policy, recordings = setup
    image = h.write_image(tmp_path / "ok.png", h.png(b"ok"))
    h.record(recordings, image, h.moderation())
    with open("/dev/full", "w") as full:
        completed = subprocess.run(
            [
                "policy-engine",
                "check",
                "--policy",
                str(policy),
                "--replay",
                str(recordings),
                str(image),
            ],
            stdout=full,
            stderr=subprocess.PIPE,
            env=h.cli_env(),
            timeout=60,
            text=True,
        )
    assert completed.returncode == 3, completed.stderr
    assert "could not be written" in completed.stderr
    assert "Traceback" not in completed.stderr and "Exception ignored" not in completed.stderr


def test_a_closed_stdout_is_said_not_a_traceback(h, tmp_path, setup):
    policy, _ = setup
    completed = subprocess.run(
        ["policy-engine", "validate", str(policy)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=h.cli_env(),
        timeout=60,
        text=True,
        close_fds=True,
        preexec_fn=lambda: os.close(1),
    )
    assert completed.returncode == 2, completed.stderr
    assert "standard output is closed" in completed.stderr
    assert "Traceback" not in completed.stderr
