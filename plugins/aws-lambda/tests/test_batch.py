"""S3 Batch Operations invocations (schema 1.0 and 2.0) and their result codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from lambda_helpers import BUCKET, VIOLENCE_ONLY, VIOLENT, batch_event, load_event, tags_of
from policy_engine_lambda.events import InvocationError, parse_batch_invocation
from policy_engine_lambda.handler import handler
from policy_engine_lambda.moderate import DECISION_TAG

from policy_engine_rekognition.testing import FakeRekognition


def uri(key: str, version: str) -> str:
    return f"s3://{BUCKET}/{key}?versionId={version}"


def test_the_documented_fixtures_parse() -> None:
    one = parse_batch_invocation(load_event("s3-batch-1.0.json"))
    assert (one.schema, one.job_id, one.user_arguments) == (
        "1.0",
        "f3cc4f60-61f6-4a2b-8a21-d07600c373ce",
        {},
    )
    (task,) = one.tasks
    assert task.ref is not None
    assert (task.task_id, task.ref.bucket, task.ref.key, task.ref.version_id) == (
        "dGFza2lkZ29lc2hlcmUK",
        BUCKET,
        "customerImage1.jpg",
        "1",
    )
    two = parse_batch_invocation(load_event("s3-batch-2.0.json"))
    assert two.user_arguments == {"QUARANTINE_ON": "block,review"}
    assert two.tasks[0].ref is not None
    assert (two.tasks[0].ref.key, two.tasks[0].ref.version_id) == ("customer Image2.png", None)
    with pytest.raises(InvocationError, match=r"3\.0"):
        parse_batch_invocation({"invocationSchemaVersion": "3.0", "tasks": []})


def test_a_bad_image_in_the_middle_of_a_batch(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    versions = [put(key) for key in ("a.jpg", "b.jpg", "c.jpg")]
    fake.respond(uri("a.jpg", versions[0]), VIOLENT)
    fake.fail(image=uri("b.jpg", versions[1]), code="InvalidImageFormatException")
    event = batch_event("1.0", *zip(("a.jpg", "b.jpg", "c.jpg"), versions, strict=True))

    answer = handler(event, None)

    assert set(answer) == {
        "invocationSchemaVersion",
        "treatMissingKeysAs",
        "invocationId",
        "results",
    }
    assert answer["invocationSchemaVersion"] == "1.0"
    assert answer["treatMissingKeysAs"] == "PermanentFailure"
    assert answer["invocationId"] == event["invocationId"]
    results = answer["results"]
    assert [r["taskId"] for r in results] == ["task-0", "task-1", "task-2"]
    assert [r["resultCode"] for r in results] == ["Succeeded", "PermanentFailure", "Succeeded"]
    assert results[0]["resultString"].startswith("block")
    assert "InvalidImageFormatException" in results[1]["resultString"]
    assert results[2]["resultString"].startswith("allow")
    assert all(set(r) == {"taskId", "resultCode", "resultString"} for r in results)


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "ProvisionedThroughputExceededException", "InternalServerError"]
)
def test_throttling_is_a_temporary_failure(
    s3: Any, fake: FakeRekognition, put: Callable[..., str], code: str
) -> None:
    version = put("a.jpg")
    fake.fail(code=code, status=500 if code == "InternalServerError" else 400, times=1)

    first = handler(batch_event("1.0", ("a.jpg", version)), None)["results"][0]
    assert first["resultCode"] == "TemporaryFailure" and code in first["resultString"]
    assert tags_of(s3, "a.jpg", version) == {}

    again = handler(batch_event("1.0", ("a.jpg", version)), None)["results"][0]  # AWS retries
    assert again["resultCode"] == "Succeeded"


def test_missing_objects_are_permanent_failures(s3: Any, fake: FakeRekognition) -> None:
    event = batch_event("1.0", ("no-such.jpg", None), ("gone.jpg", "3HL4kqtJlcpXroDTDmJ"))
    results = handler(event, None)["results"]
    assert [r["resultCode"] for r in results] == ["PermanentFailure", "PermanentFailure"]
    assert "no such object" in results[0]["resultString"]
    assert fake.call_count() == 0


def test_schema_2_user_arguments_override_the_actions(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    version = put("customer Image2.png")
    fake.respond(f"s3://{BUCKET}/customer Image2.png?versionId={version}", VIOLENCE_ONLY)
    event = load_event("s3-batch-2.0.json")
    event["tasks"][0]["s3VersionId"] = version

    answer = handler(event, None)

    assert answer["invocationSchemaVersion"] == "2.0"
    (result,) = answer["results"]
    assert result["taskId"] == "y5R3a2lkZ29lc2hlcmUK"
    assert result["resultCode"] == "Succeeded"
    assert result["resultString"].startswith("review")
    assert tags_of(s3, "quarantine/customer Image2.png")[DECISION_TAG] == "review"


def test_unknown_user_arguments_fail_every_task(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    event = batch_event("2.0", ("a.jpg", put("a.jpg")))
    event["job"]["userArguments"] = {"QUARANTINE_ONN": "review"}
    (result,) = handler(event, None)["results"]
    assert result["resultCode"] == "PermanentFailure"
    assert "QUARANTINE_ONN" in result["resultString"]
    assert fake.call_count() == 0


def test_a_batch_rerun_under_the_same_policy_calls_nothing(
    s3: Any, fake: FakeRekognition, put: Callable[..., str]
) -> None:
    versions = [put("a.jpg"), put("b.jpg")]
    event = batch_event("2.0", *zip(("a.jpg", "b.jpg"), versions, strict=True))
    del event["job"]["userArguments"]
    handler(event, None)
    answer = handler(event, None)
    assert fake.call_count() == 2
    assert all("reused" in r["resultString"] for r in answer["results"])
