"""The function serving a policy set: each object routed by the context its
metadata and key give, and an object whose context cannot be determined
decided by on_error of every route it could reach (never routed by guess),
enforced, recorded and audited like any decision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lambda_helpers import (
    BUCKET,
    JPEG,
    QUARANTINE,
    VIOLENT,
    batch_event,
    read_json,
    s3_event,
    tags_of,
    versions_of,
    write_community_set,
)
from policy_engine_lambda.config import ConfigError
from policy_engine_lambda.handler import handler
from policy_engine_lambda.moderate import CONTEXT_TAG, DECISION_TAG, DIGEST_TAG, PROVISIONAL_TAG

from policy_engine.plugins import DetectorRegistry
from policy_engine.policy_set import load_policy_set
from policy_engine_rekognition.testing import FakeRekognition

PREFIXES = {"uploads/chat/": {"surface": "chat"}, "uploads/teen/": {"audience": "teen"}}


@pytest.fixture
def community(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The function serves the community set (lambda_helpers.COMMUNITY_SET)."""
    path = write_community_set(tmp_path)
    monkeypatch.setenv("POLICY_FILE", str(path))
    monkeypatch.setenv("QUARANTINE_BUCKET", QUARANTINE)
    return path


def upload(s3: Any, key: str, **metadata: str) -> str:
    answer = s3.put_object(Bucket=BUCKET, Key=key, Body=JPEG, Metadata=metadata)
    return str(answer["VersionId"])


def decide(key: str, version: str) -> dict[str, Any]:
    (result,) = handler(s3_event(key, version), None)["results"]
    return dict(result)


def record_of(s3: Any, key: str) -> dict[str, Any]:
    return read_json(s3, BUCKET, key + ".moderation.json")


def uri(key: str, version: str) -> str:
    return f"s3://{BUCKET}/{key}?versionId={version}"


def quarantined(s3: Any, key: str) -> bool:
    return bool(versions_of(s3, QUARANTINE, "quarantine/" + key))


# --- routed by metadata, by prefix, by both ------------------------------------------------------


def test_metadata_routes_and_the_record_names_context_route_and_set(
    s3: Any, fake: FakeRekognition, community: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "photos/a.jpg"
    version = upload(s3, key, surface="profile")
    fake.respond(uri(key, version), VIOLENT)  # Violence 97.3: lenient reviews it (block at 99)

    result = decide(key, version)

    assert (result["decision"], result["status"]) == ("review", "Succeeded")
    digest = load_policy_set(community, registry=DetectorRegistry.installed()).digest
    record = record_of(s3, key)
    assert record["context"] == {"surface": "profile", "audience": "adult"}
    assert record["context_sources"] == {
        "surface": ["x-amz-meta-surface"],
        "audience": ["default"],
    }
    assert record["route"] == {
        "index": 1,
        "when": {"surface": ["profile", "chat"]},
        "policy": "lenient.yaml",
    }
    assert record["policy_set"] == {"name": "community", "digest": digest}
    assert record["policy"]["name"] == "lenient"
    assert record["errors"] == []
    assert tags_of(s3, key, version)[CONTEXT_TAG] == "surface=profile audience=adult"
    assert tags_of(s3, key, version)[DIGEST_TAG] == digest
    # the audit line: the dimension values beside the object's own keys, and the route
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"format"' in x]
    assert line["context"]["surface"] == "profile" and line["context"]["key"] == key
    assert line["route"]["index"] == 1 and line["policy_set"]["name"] == "community"


def test_the_same_image_is_decided_by_the_route_its_context_takes(
    s3: Any, fake: FakeRekognition, community: Path
) -> None:
    feed = upload(s3, "a/feed.jpg", surface="feed")
    teen = upload(s3, "a/teen.jpg", surface="chat", audience="teen")
    fake.respond(uri("a/feed.jpg", feed), VIOLENT)
    fake.respond(uri("a/teen.jpg", teen), VIOLENT)

    assert decide("a/feed.jpg", feed)["decision"] == "block"  # general: block at 90
    assert record_of(s3, "a/feed.jpg")["route"]["index"] == 2
    assert decide("a/teen.jpg", teen)["decision"] == "block"  # teen: block at 60
    assert record_of(s3, "a/teen.jpg")["route"]["index"] == 0
    assert quarantined(s3, "a/feed.jpg") and quarantined(s3, "a/teen.jpg")


def test_a_key_prefix_routes_and_agrees_with_metadata(
    s3: Any, fake: FakeRekognition, community: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTEXT_PREFIXES", json.dumps(PREFIXES))
    by_prefix = upload(s3, "uploads/chat/a.jpg")
    both = upload(s3, "uploads/chat/b.jpg", surface="chat")

    assert decide("uploads/chat/a.jpg", by_prefix)["decision"] == "allow"
    assert decide("uploads/chat/b.jpg", both)["decision"] == "allow"

    assert record_of(s3, "uploads/chat/a.jpg")["route"]["index"] == 1
    assert record_of(s3, "uploads/chat/a.jpg")["context_sources"]["surface"] == [
        "CONTEXT_PREFIXES 'uploads/chat/'"
    ]
    assert record_of(s3, "uploads/chat/b.jpg")["context_sources"]["surface"] == [
        "x-amz-meta-surface",
        "CONTEXT_PREFIXES 'uploads/chat/'",
    ]
    assert fake.call_count() == 2


@pytest.fixture
def prefixes_only(community: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The community set, routed by PREFIXES alone (metadata is not read)."""
    monkeypatch.setenv("CONTEXT_PREFIXES", json.dumps(PREFIXES))
    monkeypatch.setenv("CONTEXT_FROM_METADATA", "false")


def test_with_metadata_switched_off_only_the_prefix_says(
    s3: Any, fake: FakeRekognition, prefixes_only: None
) -> None:
    key = "uploads/chat/c.jpg"
    version = upload(s3, key, surface="feed", audience="teen")  # the uploader's say: ignored

    assert decide(key, version)["status"] == "Succeeded"

    record = record_of(s3, key)
    assert record["context"] == {"surface": "chat", "audience": "adult"}
    assert "context_undetermined" not in record


def test_a_backfill_job_with_user_arguments_routes_the_same_way(
    s3: Any, fake: FakeRekognition, prefixes_only: None
) -> None:
    key = "uploads/chat/m.jpg"
    version = upload(s3, key, surface="feed")
    fake.respond(uri(key, version), VIOLENT)
    event = batch_event("2.0", (key, version))
    event["job"]["userArguments"] = {"QUARANTINE_ON": "block,review"}

    (result,) = handler(event, None)["results"]

    assert result["resultCode"] == "Succeeded" and result["resultString"].startswith("review")
    assert record_of(s3, key)["route"]["index"] == 1  # the prefix, not the ignored metadata
    assert quarantined(s3, key)  # and the job's own QUARANTINE_ON


def test_the_reference_set_built_as_deploy_build_sh_ships_it(
    s3: Any, fake: FakeRekognition, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's example: policies/community.set.yaml shipped as policy.yaml
    beside the policies it routes to, surfaces from key prefixes, the audience
    from metadata."""
    import shutil

    policies = Path(__file__).resolve().parents[3] / "policies"
    for path in policies.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    shutil.copy(policies / "community.set.yaml", tmp_path / "policy.yaml")
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    monkeypatch.setenv("POLICY_FILE", "policy.yaml")
    prefixes = {"uploads/profile/": {"surface": "profile"}, "uploads/chat/": {"surface": "chat"}}
    monkeypatch.setenv("CONTEXT_PREFIXES", json.dumps(prefixes))
    reference = load_policy_set(tmp_path / "policy.yaml", registry=DetectorRegistry.installed())
    adult = upload(s3, "uploads/profile/a.jpg")
    teen = upload(s3, "uploads/chat/b.jpg", audience="teen")

    decide("uploads/profile/a.jpg", adult)
    decide("uploads/chat/b.jpg", teen)

    for key, values in (
        ("uploads/profile/a.jpg", {"surface": "profile", "audience": "adult"}),
        ("uploads/chat/b.jpg", {"surface": "chat", "audience": "teen"}),
    ):
        record = record_of(s3, key)
        expected = reference.route_for(values, frozenset())
        assert expected is not None
        assert record["context"] == values
        assert record["route"]["index"] == expected.index
        assert record["policy"]["name"] == expected.policy.name
        assert record["policy_set"] == {"name": reference.name, "digest": reference.digest}


# --- undetermined: on_error of every reachable route, most severe stands -------------------------


def test_conflicting_metadata_and_prefix_decide_by_on_error_and_quarantine(
    s3: Any,
    fake: FakeRekognition,
    community: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CONTEXT_PREFIXES", json.dumps(PREFIXES))
    monkeypatch.setenv("QUARANTINE_ON", "block,review")
    key = "uploads/chat/d.jpg"
    version = upload(s3, key, surface="marketplace")

    result = decide(key, version)  # the invocation does not fail: a retry changes nothing

    # audience is adult (default): routes 1 (on_error allow) and 2 (review) reachable
    assert result["decision"] == "review"
    assert result["status"] == "PermanentFailure" and not result["unfinished"]
    assert "context undetermined, decided by on_error of route(s) 1, 2" in result["message"]
    assert fake.call_count() == 0  # no detector is asked
    assert quarantined(s3, key)
    record = record_of(s3, key)
    problem = (
        "dimension 'surface': x-amz-meta-surface says 'marketplace' but "
        "CONTEXT_PREFIXES 'uploads/chat/' says 'chat'"
    )
    assert record["context_undetermined"] == {"surface": problem}
    (error,) = record["errors"]
    assert (error["source"], error["code"], error["retryable"]) == (
        "context",
        "context-undetermined",
        False,
    )
    assert problem in error["error"]
    assert record["reasons"][0]["rule"] == "on_error"
    assert record["context"] == {"audience": "adult"}
    assert record["route"]["index"] == 2
    assert [r["index"] for r in record["route"]["considered"]] == [1, 2]
    tags = tags_of(s3, key, version)
    assert tags[DECISION_TAG] == "review" and PROVISIONAL_TAG not in tags
    assert tags[CONTEXT_TAG] == "surface:undetermined audience=adult"
    # audited like any decision
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"format"' in x]
    assert line["decision"] == "review" and line["errors"][0]["code"] == "context-undetermined"
    assert line["route"]["context"] == {"audience": "adult"}


@pytest.mark.parametrize(
    ("metadata", "expected", "routes"),
    [
        ({}, "review", "1, 2"),  # no surface, no default
        ({"surface": "billboard"}, "review", "1, 2"),  # not one of its values
        ({"audience": "teen"}, "block", "0"),  # only the teen route is reachable
        ({"surface": "feed", "audience": "kid"}, "block", "0, 2"),  # teen reachable
    ],
)
def test_an_undetermined_dimension_is_decided_by_the_most_severe_on_error(
    s3: Any,
    fake: FakeRekognition,
    community: Path,
    metadata: dict[str, str],
    expected: str,
    routes: str,
) -> None:
    version = upload(s3, "photos/e.jpg", **metadata)

    result = decide("photos/e.jpg", version)

    assert result["decision"] == expected
    assert f"on_error of route(s) {routes}:" in result["message"]
    assert fake.call_count() == 0
    assert quarantined(s3, "photos/e.jpg") is (expected == "block")


def test_an_undetermined_context_is_allowed_only_when_every_reachable_route_allows(
    s3: Any, fake: FakeRekognition, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_community_set(tmp_path, general_on_error="allow")
    monkeypatch.setenv("POLICY_FILE", str(path))
    adult = upload(s3, "photos/f.jpg", surface="billboard")  # routes 1 and 2: both allow
    unknown = upload(s3, "photos/g.jpg", surface="billboard", audience="kid")  # teen too

    assert decide("photos/f.jpg", adult)["decision"] == "allow"
    assert decide("photos/g.jpg", unknown)["decision"] == "block"


# --- retries: a decision is reused only in the context found now ------------------------------


def test_a_retry_reuses_the_decision_in_the_same_context(
    s3: Any, fake: FakeRekognition, community: Path
) -> None:
    routed = upload(s3, "photos/h.jpg", surface="feed")
    undetermined = upload(s3, "photos/i.jpg")
    decide("photos/h.jpg", routed)
    decide("photos/i.jpg", undetermined)
    calls = fake.call_count()

    again = decide("photos/h.jpg", routed)
    again_undetermined = decide("photos/i.jpg", undetermined)

    assert again["reused"] and again["status"] == "Succeeded"
    assert again_undetermined["reused"] and again_undetermined["decision"] == "review"
    assert fake.call_count() == calls == 1


def test_a_new_context_for_the_same_bytes_is_decided_again(
    s3: Any, fake: FakeRekognition, community: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "uploads/chat/j.jpg"
    version = upload(s3, key)
    fake.respond(uri(key, version), VIOLENT)
    assert decide(key, version)["decision"] == "review"  # undetermined: routes 1, 2
    assert fake.call_count() == 0

    from policy_engine_lambda import handler as lambda_handler

    lambda_handler.reset()  # a new deployment, with the prefixes set
    monkeypatch.setenv("CONTEXT_PREFIXES", json.dumps(PREFIXES))
    result = decide(key, version)

    assert not result["reused"] and result["decision"] == "review"  # lenient: review at 97.3
    assert fake.call_count() == 1
    assert tags_of(s3, key, version)[CONTEXT_TAG] == "surface=chat audience=adult"
    assert record_of(s3, key)["route"]["index"] == 1


# --- start-up -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefixes", "expected"),
    [
        ({"uploads/chat/": {"surface": "billboard"}}, "not a value of dimension 'surface'"),
        ({"uploads/chat/": {"region": "eu"}}, "'region' is no dimension"),
        ({"uploads/chat": {"surface": "chat"}}, "must end with '/'"),
    ],
)
def test_settings_that_make_no_sense_stop_the_function_at_start(
    s3: Any,
    fake: FakeRekognition,
    community: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefixes: object,
    expected: str,
) -> None:
    monkeypatch.setenv("CONTEXT_PREFIXES", json.dumps(prefixes))
    version = upload(s3, "photos/k.jpg", surface="feed")
    with pytest.raises(ConfigError, match=expected):
        handler(s3_event("photos/k.jpg", version), None)
    assert fake.call_count() == 0


def test_prefixes_with_a_single_policy_stop_the_function_at_start(
    s3: Any, fake: FakeRekognition, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTEXT_PREFIXES", json.dumps(PREFIXES))
    version = upload(s3, "photos/l.jpg")
    with pytest.raises(ConfigError, match="single policy"):
        handler(s3_event("photos/l.jpg", version), None)
