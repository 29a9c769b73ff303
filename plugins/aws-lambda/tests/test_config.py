"""Action settings and event parsing, without AWS."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from lambda_helpers import load_event
from policy_engine_lambda.config import DEFAULT_POLICY, ActionConfig, ConfigError, policy_path
from policy_engine_lambda.events import InvocationError, parse_s3_notification
from policy_engine_lambda.handler import handler

from policy_engine.model import Verdict


def test_defaults() -> None:
    config = ActionConfig.from_environ({})
    assert config == ActionConfig()
    assert config.tag and config.records == "beside" and not config.delete_original
    assert config.quarantine_on == {Verdict.BLOCK}
    assert config.quarantine_prefix == "quarantine/"


def test_settings_from_the_environment() -> None:
    config = ActionConfig.from_environ(
        {
            "TAG_OBJECTS": "false",
            "QUARANTINE_ON": "block, review",
            "QUARANTINE_BUCKET": "q",
            "QUARANTINE_PREFIX": "held/",
            "DELETE_ORIGINAL": "yes",
            "RECORDS": "prefix",
            "RESULTS_BUCKET": "r",
            "RESULTS_PREFIX": "decisions/",
            "UNRELATED": "x",
        }
    )
    assert config == ActionConfig(
        tag=False,
        quarantine_on=frozenset({Verdict.BLOCK, Verdict.REVIEW}),
        quarantine_bucket="q",
        quarantine_prefix="held/",
        delete_original=True,
        records="prefix",
        results_bucket="r",
        results_prefix="decisions/",
    )
    assert ActionConfig.from_environ({"QUARANTINE_ON": ""}).quarantine_on == frozenset()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TAG_OBJECTS": "maybe"}, "true or false"),
        ({"QUARANTINE_ON": "allow"}, "never quarantined"),
        ({"QUARANTINE_ON": "blok"}, "not review or block"),
        ({"RECORDS": "elsewhere"}, "beside, prefix, off"),
        ({"QUARANTINE_PREFIX": "held"}, "end with '/'"),
        ({"QUARANTINE_PREFIX": ""}, "overwrite the original"),
        ({"QUARANTINE_ON": "", "DELETE_ORIGINAL": "true"}, "needs QUARANTINE_ON"),
    ],
)
def test_bad_settings_fail_at_start(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ActionConfig.from_environ(environ)


def test_policy_path(tmp_path: Path) -> None:
    assert policy_path({}) == DEFAULT_POLICY
    assert (
        DEFAULT_POLICY.name == "policy.yaml"
        and DEFAULT_POLICY.parent.name == "policy_engine_lambda"
    )
    root = str(tmp_path)
    assert policy_path({"POLICY_FILE": "p.yaml", "LAMBDA_TASK_ROOT": root}) == tmp_path / "p.yaml"
    assert policy_path({"POLICY_FILE": "/opt/p.yaml"}) == Path("/opt/p.yaml")


def test_s3_notification_keys_are_url_decoded() -> None:
    (record,) = parse_s3_notification(load_event("s3-object-created.json"))
    assert record.ref is not None
    assert record.ref.key == "uploads/summer photo été.jpg"
    assert record.ref.version_id == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert record.ref.size == 104
    assert record.ref.etag == "0123456789abcdef0123456789abcdef"
    assert record.event_name == "ObjectCreated:Put"
    # eventTime, which tells a final attempt (FINAL_ATTEMPT_AFTER); unreadable: unknown
    assert record.event_time == datetime.datetime(2024, 5, 2, 10, 15, 42, 123000, datetime.UTC)
    assert record.age(datetime.datetime(2024, 5, 2, 10, 30, 42, 123000, datetime.UTC)) == 900
    event = load_event("s3-object-created.json")
    event["Records"][0]["eventTime"] = "yesterday"
    (unknown,) = parse_s3_notification(event)
    assert unknown.event_time is None and unknown.age(datetime.datetime.now(datetime.UTC)) is None


def test_other_events_are_refused() -> None:
    with pytest.raises(InvocationError, match="neither"):
        handler({"detail-type": "Object Created"}, None)
    with pytest.raises(InvocationError):
        parse_s3_notification(
            {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}
        )


def test_detector_timeout_defaults_below_the_function_timeout_and_must_be_positive() -> None:
    from policy_engine_lambda.config import DEFAULT_DETECTOR_TIMEOUT, detector_timeout

    assert detector_timeout({}) == DEFAULT_DETECTOR_TIMEOUT < 60
    assert detector_timeout({"DETECTOR_TIMEOUT": " 12.5 "}) == 12.5
    for bad in ("0", "-3", "nan", "inf", "soon"):
        with pytest.raises(ValueError, match="DETECTOR_TIMEOUT"):
            detector_timeout({"DETECTOR_TIMEOUT": bad})
