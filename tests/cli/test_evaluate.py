"""``policy-engine evaluate``: decisions from recorded detector responses."""

from __future__ import annotations

import json
import re

import pytest

POOL_POLICY = """\
version: 1
name: pool-test
rules:
  - id: violence
    match: {parent: Violence}
    review_at: 60
    block_at: 90
  - id: knife
    match: {name: Knife, source: rekognition-custom-labels}
    block_at: 80
"""


def test_aws_example_blocks_with_both_labels_as_reasons(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    labels = h.write_json(tmp_path / "aws-example.json", h.AWS_MODERATION_EXAMPLE)

    result = h.run("evaluate", "--policy", policy, "--labels", labels)

    assert result.code == 0, result
    record = result.json()
    assert h.decision_errors(record) == [], result
    assert record["decision"] == "block"
    assert {r["label"] for r in record["reasons"]} == {"Weapon Violence", "Violence"}
    for reason in record["reasons"]:
        assert reason["verdict"] == "block"
        assert reason["rule"] == "violence"
        assert reason["threshold"] == 90
        assert reason["source"] == "rekognition-moderation"
        assert reason["confidence"] == 97.29618072509766  # exact, not rounded
    by_label = {r["label"]: r for r in record["reasons"]}
    assert by_label["Weapon Violence"]["parent"] == "Violence"
    assert by_label["Violence"]["parent"] == ""
    assert {label["name"] for label in record["labels"]} == {"Weapon Violence", "Violence"}
    assert all(label["model_version"] == "3.0" for label in record["labels"])
    assert record["errors"] == []
    assert record["policy"]["name"] == "violence-test"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", record["policy"]["digest"])


def test_python_dash_m_gives_the_same_record_as_the_console_script(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    labels = h.write_json(tmp_path / "aws-example.json", h.AWS_MODERATION_EXAMPLE)

    via_module = h.run("evaluate", "--policy", policy, "--labels", labels, module=True)
    via_script = h.run("evaluate", "--policy", policy, "--labels", labels)

    assert via_module.code == 0, via_module
    assert via_module.json()["decision"] == "block"
    assert via_module.json() == via_script.json()


def test_text_format_and_fail_on_block(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    blocked = h.write_json(tmp_path / "aws-example.json", h.AWS_MODERATION_EXAMPLE)
    harmless = h.write_json(
        tmp_path / "harmless.json", h.moderation(("Violence", "", 70.0), version="3.0")
    )

    text = h.run(
        "evaluate",
        "--policy",
        policy,
        "--labels",
        blocked,
        "--format",
        "text",
        "--fail-on",
        "block",
    )
    assert text.code == 1, text
    assert "BLOCK" in text.out
    assert "rule violence" in text.out
    assert "Weapon Violence" in text.out
    assert "90" in text.out
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.out)  # a readable summary, not the JSON record

    allowed = h.run("evaluate", "--policy", policy, "--labels", harmless, "--fail-on", "block")
    assert allowed.code == 0, allowed
    assert allowed.json()["decision"] == "allow"
    assert allowed.json()["reasons"] == []

    # --fail-on review is reached by a block too (block is more severe)
    review_gate = h.run("evaluate", "--policy", policy, "--labels", blocked, "--fail-on", "review")
    assert review_gate.code == 1, review_gate
    assert review_gate.json()["decision"] == "block"


def test_several_labels_files_pool_their_labels_as_does_an_array_file(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", POOL_POLICY)
    mod = h.moderation(("Violence", "", 70.0))
    cus = h.custom(("Knife", 85.0))
    mod_file = h.write_json(tmp_path / "moderation.json", mod)
    cus_file = h.write_json(tmp_path / "custom.json", cus)
    both_file = h.write_json(tmp_path / "both.json", [mod, cus])

    alone = h.run("evaluate", "--policy", policy, "--labels", mod_file)
    pooled = h.run("evaluate", "--policy", policy, "--labels", mod_file, "--labels", cus_file)
    array = h.run("evaluate", "--policy", policy, "--labels", both_file, "--format", "text")

    assert alone.code == 0, alone
    assert alone.json()["decision"] == "review"

    assert pooled.code == 0, pooled
    record = pooled.json()
    assert h.decision_errors(record) == [], pooled
    assert record["decision"] == "block"
    assert {(lb["name"], lb["source"]) for lb in record["labels"]} == {
        ("Violence", "rekognition-moderation"),
        ("Knife", "rekognition-custom-labels"),
    }
    # most severe first
    assert [(r["label"], r["verdict"], r["rule"], r["threshold"]) for r in record["reasons"]] == [
        ("Knife", "block", "knife", 80),
        ("Violence", "review", "violence", 60),
    ]

    assert array.code == 0, array
    assert "BLOCK" in array.out
    assert "rule knife" in array.out and "rule violence" in array.out


def test_array_file_gives_the_same_record_as_separate_files(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", POOL_POLICY)
    mod = h.moderation(("Weapon Violence", "Violence", 91.5), ("Violence", "", 91.5))
    cus = h.custom(("Knife", 10.0))
    both = h.write_json(tmp_path / "both.json", [mod, cus])
    one = h.write_json(tmp_path / "one.json", mod)
    two = h.write_json(tmp_path / "two.json", cus)

    array = h.run("evaluate", "--policy", policy, "--labels", both)
    separate = h.run("evaluate", "--policy", policy, "--labels", one, "--labels", two)

    assert array.code == 0 and separate.code == 0, (array, separate)
    assert array.json() == separate.json()
    record = array.json()
    assert record["decision"] == "block"
    # Knife at 10 is under the default min_confidence of 50: dropped, no verdict
    assert [d["name"] for d in record["dropped"]] == ["Knife"]
    assert "Knife" not in {lb["name"] for lb in record["labels"]}


def test_reasons_most_severe_first_then_highest_confidence(h, tmp_path):
    policy = h.write_text(
        tmp_path / "policy.yaml",
        "version: 1\nname: order\nrules:\n"
        "  - id: all\n    match: {parent: Violence}\n    review_at: 55\n    block_at: 90\n",
    )
    labels = h.write_json(
        tmp_path / "labels.json",
        h.moderation(
            ("Graphic Violence", "Violence", 89.0),
            ("Weapon Violence", "Violence", 91.0),
            ("Physical Violence", "Violence", 95.0),
            ("Violence", "", 99.5),
            ("Self Injury", "Violence", 60.0),
        ),
    )

    result = h.run("evaluate", "--policy", policy, "--labels", labels)

    assert result.code == 0, result
    assert [(r["verdict"], r["label"]) for r in result.json()["reasons"]] == [
        ("block", "Violence"),
        ("block", "Physical Violence"),
        ("block", "Weapon Violence"),
        ("review", "Graphic Violence"),
        ("review", "Self Injury"),
    ]


# --- errors: exit 2, the message on stderr, nothing on stdout -------------------


def test_policy_with_several_errors_reports_every_one(h, tmp_path):
    policy = h.write_text(
        tmp_path / "bad.yaml",
        "version: 2\n"  # 1: wrong version
        "name: 'bad name!'\n"  # 2: invalid name
        "on_error: maybe\n"  # 3: not a verdict
        "rules:\n"
        "  - id: a\n"
        "    match: {parent: Violence}\n"
        "    block_at: 190\n"  # 7: out of range
        "    colour: red\n",  # 8: unknown key
    )
    labels = h.write_json(tmp_path / "labels.json", h.AWS_MODERATION_EXAMPLE)

    result = h.run("evaluate", "--policy", policy, "--labels", labels)

    assert result.code == 2, result
    assert result.out == ""
    found = result.diagnostics("err")
    assert all(d["file"] == str(policy) and d["severity"] == "error" for d in found), result
    assert sorted(d["line"] for d in found) == [1, 2, 3, 7, 8], result
    by_line = {d["line"]: d for d in found}
    assert by_line[1]["column"] == 10  # the value 2
    assert by_line[2]["column"] == 7
    assert by_line[7]["column"] == 15
    assert by_line[8]["column"] == 5 and by_line[8]["code"] == "unknown-key"
    assert "colour" in by_line[8]["message"]


def test_policy_errors_of_different_kinds_are_all_reported(h, tmp_path):
    """POLICY_SPEC section 2: a file with several errors gets all of them
    reported, not only the first. Here three independent errors of different
    kinds (a schema error, an unknown detector, a review_at >= block_at)."""
    policy = h.write_text(
        tmp_path / "bad.yaml",
        "version: 1\n"
        "name: mixed\n"
        "detectors:\n"
        "  no-such-detector: {}\n"  # 4: unknown detector
        "rules:\n"
        "  - id: a\n"
        "    match: {parent: Violence}\n"
        "    review_at: 95\n"  # 8: review_at >= block_at
        "    block_at: 90\n"
        "  - id: b\n"
        "    match: {name: Knife}\n"
        "    colour: red\n"  # 12: unknown key
        "    action: block\n",
    )
    labels = h.write_json(tmp_path / "labels.json", h.AWS_MODERATION_EXAMPLE)

    result = h.run("evaluate", "--policy", policy, "--labels", labels)

    assert result.code == 2, result
    assert result.out == ""
    codes = {d["code"] for d in result.diagnostics("err")}
    assert {"unknown-key", "unknown-detector", "threshold-order"} <= codes, result


def test_labels_file_that_is_not_json(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    labels = h.write_text(
        tmp_path / "broken.json",
        '{\n  "ModerationLabels": [\n    {"Name": "Violence", "Confidence": 97,}\n  ]\n}\n',
    )

    result = h.run("evaluate", "--policy", policy, "--labels", labels)

    assert result.code == 2, result
    assert result.out == ""
    assert f"{labels}:3:43" in result.err, result


@pytest.mark.parametrize(
    ("confidence_json", "field"),
    [
        ('"high"', "ModerationLabels[0].Confidence"),
        ("1e999", "ModerationLabels[0].Confidence"),  # json parses it as inf
        ("-1e999", "ModerationLabels[0].Confidence"),
        ("NaN", "ModerationLabels[0].Confidence"),
        ("100.5", "ModerationLabels[0].Confidence"),
        ("-3", "ModerationLabels[0].Confidence"),
        ("true", "ModerationLabels[0].Confidence"),
        ("null", "ModerationLabels[0].Confidence"),
    ],
)
def test_labels_file_with_a_bad_confidence_names_file_and_field(
    h, tmp_path, confidence_json, field
):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    labels = h.write_text(
        tmp_path / "labels.json",
        '{"ModerationLabels": [{"Name": "Violence", "ParentName": "", "Confidence": '
        + confidence_json
        + '}], "ModerationModelVersion": "7.0"}',
    )

    result = h.run("evaluate", "--policy", policy, "--labels", labels)

    assert result.code == 2, result
    assert result.out == ""
    assert str(labels) in result.err and field in result.err, result


def test_bad_confidence_in_second_response_of_an_array_and_in_custom_labels(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    good = h.write_json(tmp_path / "good.json", h.AWS_MODERATION_EXAMPLE)
    labels = h.write_text(
        tmp_path / "array.json",
        '[{"ModerationLabels": []}, {"CustomLabels": [{"Name": "Knife", "Confidence": 80},'
        ' {"Name": "Gun", "Confidence": 1e999}]}]',
    )

    result = h.run("evaluate", "--policy", policy, "--labels", good, "--labels", labels)

    assert result.code == 2, result
    assert result.out == ""
    assert str(labels) in result.err
    assert "CustomLabels[1].Confidence" in result.err, result


def test_labels_file_no_detector_recognises(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    # a DetectLabels response: neither moderation nor custom labels
    labels = h.write_json(
        tmp_path / "detect-labels.json", {"Labels": [{"Name": "Knife", "Confidence": 99.0}]}
    )

    result = h.run("evaluate", "--policy", policy, "--labels", labels)

    assert result.code == 2, result
    assert result.out == ""
    assert str(labels) in result.err
    assert "recogni" in result.err.lower() and "Labels" in result.err, result


def test_missing_labels_file(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    missing = tmp_path / "nowhere" / "labels.json"

    result = h.run("evaluate", "--policy", policy, "--labels", missing)

    assert result.code == 2, result
    assert result.out == ""
    assert str(missing) in result.err


def test_unknown_detector_in_policy(h, tmp_path):
    policy = h.write_text(
        tmp_path / "policy.yaml",
        "version: 1\nname: unknown-detector\ndetectors:\n  rekognition-moderaton: {}\nrules: []\n",
    )
    labels = h.write_json(tmp_path / "labels.json", h.AWS_MODERATION_EXAMPLE)

    result = h.run("evaluate", "--policy", policy, "--labels", labels)

    assert result.code == 2, result
    assert result.out == ""
    found = result.diagnostics("err")
    assert [(d["line"], d["column"], d["code"]) for d in found] == [(4, 3, "unknown-detector")], (
        result
    )
    assert "rekognition-moderaton" in found[0]["message"]


def test_plugin_restriction_applies_to_evaluate(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    labels = h.write_json(tmp_path / "labels.json", h.AWS_MODERATION_EXAMPLE)

    result = h.run(
        "evaluate", "--policy", policy, "--labels", labels, env={"POLICY_ENGINE_PLUGINS": "stub"}
    )

    # only the stub is loaded, so no detector recognises a moderation response
    assert result.code == 2, result
    assert result.out == ""
    assert str(labels) in result.err


def test_evaluate_and_explain_read_what_record_writes(h, tmp_path):
    from policy_engine.recordings import RecordingStore

    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    store = RecordingStore(tmp_path / "rec")
    store.record(
        "ab" * 32, "rekognition-moderation", "sha256:x", h.moderation(("Violence", "", 97.0))
    )
    recording = store.path_for("ab" * 32)

    result = h.run("evaluate", "--policy", policy, "--labels", recording)
    assert result.code == 0, result
    assert result.json()["decision"] == "block"
    explained = h.run("explain", "--policy", policy, "--labels", recording)
    assert explained.code == 0, explained
    assert "Violence" in explained.out


def test_one_labels_flag_takes_several_files_and_repeating_it_still_works(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", POOL_POLICY)
    mod = h.write_json(tmp_path / "moderation.json", h.moderation(("Violence", "", 70.0)))
    cus = h.write_json(tmp_path / "custom.json", h.custom(("Knife", 85.0)))

    one_flag = h.run("evaluate", "--policy", policy, "--labels", mod, cus)
    repeated = h.run("evaluate", "--policy", policy, "--labels", mod, "--labels", cus)
    explained = h.run("explain", "--policy", policy, "--labels", mod, cus)

    assert one_flag.code == 0, one_flag
    assert one_flag.json() == repeated.json()
    assert one_flag.json()["decision"] == "block"
    assert {lb["name"] for lb in one_flag.json()["labels"]} == {"Violence", "Knife"}
    assert explained.code == 0, explained
    assert "Knife" in explained.out and "Violence" in explained.out


@pytest.mark.parametrize("command", ["evaluate", "explain"])
def test_an_image_instead_of_a_response_says_how_to_decide_it(h, tmp_path, command):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    image = h.write_image(tmp_path / "upload.png", h.png(b"an upload"))

    result = h.run(command, "--policy", policy, "--labels", image)

    assert result.code == 2, result
    assert result.out == ""
    assert f"{image}: a PNG image, not a detector response" in result.err
    assert "--replay DIR" in result.err
    assert f"{h.sha256_of(image)}.json" in result.err  # the recording it would look for
    assert f"policy-engine check --policy FILE {image}" in result.err
    assert "JSON" not in result.err.split("not a detector response")[0]
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG image"),
        (b"GIF89a\x01\x00", "a GIF image"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "a WebP image"),
        (b"\x00\x01binary\xfe", "binary data"),
    ],
)
def test_binary_labels_files_are_named_for_what_they_are(h, tmp_path, data, kind):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    labels = h.write_image(tmp_path / "labels.json", data)

    result = h.run("evaluate", "--policy", policy, "--labels", labels)

    assert result.code == 2, result
    assert f"{labels}: {kind}" in result.err, result


@pytest.mark.parametrize("command", ["evaluate", "explain"])
def test_an_image_with_replay_is_decided_from_its_recording(h, tmp_path, command):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    image = h.write_image(tmp_path / "upload.png", h.png(b"an upload"))
    recordings = tmp_path / "recordings"
    recording = h.record(recordings, image, h.AWS_MODERATION_EXAMPLE)

    replayed = h.run(command, "--policy", policy, "--replay", recordings, "--labels", image)
    from_file = h.run(command, "--policy", policy, "--labels", recording)

    assert replayed.code == 0, replayed
    assert replayed.out == from_file.out
    assert "Weapon Violence" in replayed.out


def test_an_image_with_replay_but_no_recording_says_where_it_looked(h, tmp_path):
    policy = h.write_text(tmp_path / "policy.yaml", h.VIOLENCE_POLICY)
    image = h.write_image(tmp_path / "upload.png", h.png(b"never recorded"))
    recordings = (tmp_path / "recordings").resolve()
    recordings.mkdir()

    result = h.run("explain", "--policy", policy, "--replay", recordings, "--labels", image)
    missing = h.run("explain", "--policy", policy, "--replay", tmp_path / "nope", "--labels", image)

    assert result.code == 2, result
    assert f"no recording for this PNG image in {recordings}" in result.err
    assert str(recordings / f"{h.sha256_of(image)}.json") in result.err
    assert f"--record {recordings} {image}" in result.err
    assert missing.code == 2, missing
    assert "--replay" in missing.err and "no such folder" in missing.err
