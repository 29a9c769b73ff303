"""``check`` with a policy set: --context for the run, JSON Lines inputs with a
context each (--inputs-jsonl), the record's context/route/policy_set, a bad
context never an allow, --replay covering every detector of the set."""

from __future__ import annotations

import json

TEEN = """\
version: 1
name: teen
detectors:
  rekognition-moderation: {region: us-east-1}
rules:
  - id: violence
    match: {parent: Violence}
    block_at: 60
"""

ADULT = """\
version: 1
name: adult
detectors:
  rekognition-moderation: {region: us-east-1}
rules:
  - id: violence
    match: {parent: Violence}
    review_at: 60
    block_at: 95
"""

SET = """\
version: 1
kind: policy-set
name: community
context:
  surface:
    values: [feed, profile]
  audience:
    values: [adult, teen]
    default: adult
routes:
  - when: {audience: teen}
    policy: teen.yaml
  - policy: adult.yaml
"""


def _setup(h, tmp_path):
    h.write_text(tmp_path / "teen.yaml", TEEN)
    h.write_text(tmp_path / "adult.yaml", ADULT)
    policy_set = h.write_text(tmp_path / "community.set.yaml", SET)
    replay = tmp_path / "replays"
    fight = h.write_image(tmp_path / "imgs" / "fight.png", h.png(b"fight"))
    h.record(replay, fight, h.moderation(("Weapon Violence", "Violence", 80.0)))
    return policy_set, replay, fight


def test_check_routes_by_context_and_records_the_route(h, tmp_path):
    policy_set, replay, fight = _setup(h, tmp_path)
    teen = h.run(
        "check", "--policy", policy_set, fight, "--replay", replay,
        "--context", "surface=feed", "--context", "audience=teen",
    )  # fmt: skip
    assert teen.code == 0, teen
    (record,) = teen.jsonl()
    assert record["decision"] == "block" and record["policy"]["name"] == "teen"
    assert record["context"] == {"surface": "feed", "audience": "teen"}
    assert record["route"]["index"] == 0
    assert record["policy_set"]["name"] == "community"
    adult = h.run("check", "--policy", policy_set, fight, "--replay", replay, "--context",
                  "surface=feed")  # fmt: skip
    assert adult.jsonl()[0]["decision"] == "review", adult


def test_a_missing_or_unknown_dimension_is_exit_2_naming_it(h, tmp_path):
    policy_set, replay, fight = _setup(h, tmp_path)
    missing = h.run("check", "--policy", policy_set, fight, "--replay", replay)
    assert missing.code == 2 and "'surface'" in missing.err, missing
    unknown = h.run(
        "check", "--policy", policy_set, fight, "--replay", replay, "--context", "surface=tv"
    )
    assert unknown.code == 2 and "'tv'" in unknown.err and missing.out == "", unknown


def test_jsonl_inputs_carry_a_context_each_and_a_bad_one_is_an_error_record(h, tmp_path):
    policy_set, replay, fight = _setup(h, tmp_path)
    lines = [
        {"input": str(fight), "context": {"surface": "feed", "audience": "teen"}},
        {"input": str(fight), "context": {"surface": "profile"}},
        {"input": str(fight), "context": {"surface": "billboard"}},
        {"input": str(fight)},
        "not an object",
    ]
    stdin = "\n".join(json.dumps(line) for line in lines).encode() + b"\n{broken\n"
    result = h.run(
        "check", "--policy", policy_set, "--inputs-jsonl", "--replay", replay, "--ordered",
        stdin=stdin,
    )  # fmt: skip
    assert result.code == 3, result  # some inputs could not be decided
    records = result.jsonl()
    assert [r.get("decision") for r in records] == ["block", "review", None, None, None, None]
    assert records[0]["route"]["index"] == 0 and records[1]["context"]["surface"] == "profile"
    assert "billboard" in records[2]["error"] and "surface" in records[3]["error"]
    assert all("error" in r for r in records[2:])


def test_a_plain_policy_refuses_context_and_still_checks_as_before(h, tmp_path):
    _, replay, fight = _setup(h, tmp_path)
    refused = h.run(
        "check", "--policy", tmp_path / "adult.yaml", fight, "--replay", replay,
        "--context", "surface=feed",
    )  # fmt: skip
    assert refused.code == 2 and "not a policy set" in refused.err, refused
    plain = h.run("check", "--policy", tmp_path / "adult.yaml", fight, "--replay", replay)
    (record,) = plain.jsonl()
    assert record["decision"] == "review" and "route" not in record, plain


def test_jsonl_inputs_with_an_unknown_run_context_value_are_exit_2_before_any_input(h, tmp_path):
    policy_set, replay, fight = _setup(h, tmp_path)
    stdin = json.dumps({"input": str(fight), "context": {"surface": "feed"}}).encode() + b"\n"
    result = h.run(
        "check", "--policy", policy_set, "--inputs-jsonl", "--replay", replay,
        "--context", "audience=toddler", stdin=stdin,
    )  # fmt: skip
    assert result.code == 2 and "'toddler'" in result.err and "'audience'" in result.err, result
    assert result.out == ""
    # a run context the lines complete is still fine
    completed = h.run(
        "check", "--policy", policy_set, "--inputs-jsonl", "--replay", replay,
        "--context", "audience=teen", stdin=stdin,
    )  # fmt: skip
    (record,) = completed.jsonl()
    assert record["context"] == {"surface": "feed", "audience": "teen"}, completed


def test_text_output_names_the_set_the_context_and_the_route(h, tmp_path):
    policy_set, replay, fight = _setup(h, tmp_path)
    result = h.run(
        "check", "--policy", policy_set, fight, "--replay", replay, "--format", "text",
        "--context", "surface=feed", "--context", "audience=teen",
    )  # fmt: skip
    assert result.code == 0, result
    assert "BLOCK" in result.out and "policy teen" in result.out
    assert "policy set community" in result.out and "surface=feed, audience=teen" in result.out
    assert "route 0 -> teen.yaml" in result.out, result.out


ILLUSTRATED_SET = """\
version: 1
kind: policy-set
name: by-content-type
content_types_at: 50
routes:
  - when: {content_type: Illustrated}
    policy: teen.yaml
  - policy: adult.yaml
"""


def test_replay_routes_by_the_recorded_content_types_as_evaluate_does(h, tmp_path):
    # the stub replays a recording under its own name: the content types in it
    # must still reach the set, or a replay routes unlike the live call
    _, replay, _ = _setup(h, tmp_path)
    policy_set = h.write_text(tmp_path / "illustrated.set.yaml", ILLUSTRATED_SET)
    drawing = h.write_image(tmp_path / "imgs" / "drawing.png", h.png(b"drawing"))
    response = h.moderation(("Weapon Violence", "Violence", 80.0))
    response["ContentTypes"] = [{"Name": "Illustrated", "Confidence": 99.0}]
    h.record(replay, drawing, response)
    photo = tmp_path / "imgs" / "fight.png"

    checked = h.run("check", "--policy", policy_set, drawing, photo, "--replay", replay,
                    "--ordered")  # fmt: skip
    evaluated = h.run("evaluate", "--policy", policy_set, "--replay", replay, "--labels", drawing)

    assert checked.code == 0, checked
    routed = [(r["route"]["index"], r["policy"]["name"], r["decision"]) for r in checked.jsonl()]
    assert routed == [(0, "teen", "block"), (1, "adult", "review")]
    assert json.loads(evaluated.out)["route"]["index"] == 0
