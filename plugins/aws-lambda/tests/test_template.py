"""deploy/template.yaml: cfn-lint passes, the role is least privilege, and no
upload is left unmoderated with only a log line."""

from __future__ import annotations

import importlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from policy_engine_lambda.config import FUNCTION_VARIABLES
from policy_engine_lambda.telemetry import DEFAULT_NAMESPACE

TEMPLATE = Path(__file__).resolve().parents[3] / "deploy" / "template.yaml"
# Rekognition's Detect* actions support no resource-level permissions: AWS requires "*".
STAR_RESOURCE_ALLOWED = {"rekognition:DetectModerationLabels"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode import decode

    loaded, problems = decode(str(TEMPLATE))
    assert not problems, problems
    assert isinstance(loaded, dict)
    return loaded


def test_cfn_lint_passes() -> None:
    from cfnlint.api import lint_file

    matches = lint_file(TEMPLATE)
    assert matches == [], "\n".join(str(match) for match in matches)


def _statements(template: dict[str, Any]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """Every statement of the role's policies, with the condition it is under, if any."""
    role = template["Resources"]["ModeratorRole"]["Properties"]
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:
                condition, when_true, when_false = statement["Fn::If"]
                assert when_false == {"Ref": "AWS::NoValue"}
                yield condition, when_true
            else:
                yield None, statement


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_star_actions_and_star_resources_only_where_aws_requires(
    template: dict[str, Any],
) -> None:
    statements = list(_statements(template))
    assert statements
    for _, statement in statements:
        assert statement["Effect"] == "Allow"
        actions = _listed(statement["Action"])
        assert all(isinstance(a, str) and "*" not in a for a in actions), statement
        for resource in _listed(statement["Resource"]):
            if resource == "*":
                assert set(actions) <= STAR_RESOURCE_ALLOWED, statement


def test_the_role_grants_exactly_what_the_function_uses(template: dict[str, Any]) -> None:
    granted: dict[str, set[str | None]] = {}
    for condition, statement in _statements(template):
        for action in _listed(statement["Action"]):
            granted.setdefault(action, set()).add(condition)
    assert granted == {
        "rekognition:DetectModerationLabels": {None},
        "rekognition:DetectCustomLabels": {"CustomLabelsEnabled"},
        "s3:GetObject": {None, "RecordingsEnabled"},
        "s3:GetObjectVersion": {None},
        "s3:GetObjectTagging": {None},
        "s3:GetObjectVersionTagging": {None},
        "s3:PutObjectTagging": {None},
        "s3:PutObjectVersionTagging": {None},
        "s3:PutObject": {None, "RecordingsEnabled"},
        "s3:ListBucket": {None},
        "s3:DeleteObject": {"DeletionEnabled"},
        "s3:DeleteObjectVersion": {"DeletionEnabled"},
        "sqs:SendMessage": {None},
        "logs:CreateLogStream": {None},
        "logs:PutLogEvents": {None},
    }
    (put,) = [s for _, s in _statements(template) if s["Action"] == "s3:PutObject"]  # records only
    assert put["Resource"]["Fn::Sub"].endswith("/*.moderation.json")
    # the recordings: only under their prefix, and only when a bucket is given
    (recorded,) = [s for condition, s in _statements(template) if condition == "RecordingsEnabled"]
    assert sorted(recorded["Action"]) == ["s3:GetObject", "s3:PutObject"]
    assert recorded["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::${RecordingsBucket}/${RecordingsPrefix}*"
    }
    parameters = template["Parameters"]
    assert parameters["RecordingsBucket"]["Default"] == ""
    assert parameters["RecordingsPrefix"]["Default"] == "recordings/"


def test_the_function_and_its_trigger(template: dict[str, Any]) -> None:
    function = template["Resources"]["ModeratorFunction"]
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert function["Type"] == "AWS::Serverless::Function"
    props = function["Properties"]
    assert props["Runtime"].startswith("python3.")
    assert props["CodeUri"] == "build/"
    module, _, name = props["Handler"].rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))
    variables = props["Environment"]["Variables"]
    assert variables["POLICY_FILE"] == "policy.yaml"
    # everything the template sets, the function reads (no typo goes unnoticed)
    assert set(variables) - {"POLICY_ENGINE_PLUGINS", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"} <= set(
        FUNCTION_VARIABLES
    )
    assert variables["RECORDINGS_BUCKET"] == {"Ref": "RecordingsBucket"}
    assert variables["RECORDINGS_PREFIX"] == {"Ref": "RecordingsPrefix"}
    assert variables["AUDIT_LOG"] == {"Ref": "AuditLog"}
    assert variables["SHADOW_POLICY_FILE"] == {"Ref": "ShadowPolicyFile"}
    assert variables["FINAL_ATTEMPT_AFTER"] == {"Ref": "FinalAttemptAfter"}
    # a policy set's context: no prefixes and metadata read, unless the stack says
    assert variables["CONTEXT_PREFIXES"] == {"Ref": "ContextPrefixes"}
    assert variables["CONTEXT_FROM_METADATA"] == {"Ref": "ContextFromMetadata"}
    parameters = template["Parameters"]
    assert parameters["ContextPrefixes"]["Default"] == ""
    assert parameters["ContextFromMetadata"]["AllowedValues"] == ["true", "false"]
    assert parameters["ContextFromMetadata"]["Default"] == "true"
    final = template["Parameters"]["FinalAttemptAfter"]
    assert (final["Type"], final["Default"], final["MinValue"]) == ("Number", 900, 0)
    # every object created, whatever its name: a suffix filter is case-sensitive
    # (IMG_0001.JPG) and misses .webp, .gif and keys without an extension
    (event,) = props["Events"].values()
    assert event["Type"] == "S3"
    assert event["Properties"] == {
        "Bucket": {"Ref": "SourceBucket"},
        "Events": "s3:ObjectCreated:*",
    }


def _role_statement(template: dict[str, Any], sid: str) -> dict[str, Any]:
    (found,) = [s for _, s in _statements(template) if s.get("Sid") == sid]
    return found


def test_failed_events_go_to_a_queue_with_an_alarm(template: dict[str, Any]) -> None:
    """An upload whose invocation exhausts Lambda's retries (or waits too long)
    lands in a queue, to be fed back, instead of being dropped."""
    resources = template["Resources"]
    config = resources["ModeratorFunction"]["Properties"]["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] == 2
    assert config["MaximumEventAgeInSeconds"] == 21600
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]},
    }
    queue = resources["FailedEventsQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["MessageRetentionPeriod"] == 1209600  # SQS's most: 14 days
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    # Lambda sends to the destination with the function's role, to that queue only
    send = _role_statement(template, "SendFailedEvents")
    assert send["Action"] == "sqs:SendMessage"
    assert send["Resource"] == {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}
    # someone hears of it
    alarm = resources["FailedEventsAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["FailedEventsQueue", "QueueName"]}}
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"]["Fn::If"][0] == "AlarmTopicGiven"
    assert template["Parameters"]["FailedEventsAlarmTopic"]["Default"] == ""
    outputs = template["Outputs"]
    assert outputs["FailedEventsQueueUrl"]["Value"] == {"Ref": "FailedEventsQueue"}
    assert outputs["FailedEventsQueueArn"]["Value"] == {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}


def test_only_the_function_writes_recordings_in_the_source_bucket(
    template: dict[str, Any],
) -> None:
    """A recording is Rekognition's answer for an image: an uploader who could
    write one under the recordings prefix would decide for the function."""
    statements = template["Resources"]["SourceBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    (guarded,) = [s["Fn::If"] for s in statements if "Fn::If" in s]
    condition, deny, otherwise = guarded
    assert condition == "RecordingsInSourceBucket"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert (deny["Effect"], deny["Action"]) == ("Deny", "s3:PutObject")
    assert deny["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::${SourceBucketName}/${RecordingsPrefix}*"
    }
    assert deny["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["ModeratorRole", "Arn"]}}
    }
    assert template["Conditions"]["RecordingsInSourceBucket"] == {
        "Fn::Equals": [{"Ref": "RecordingsBucket"}, {"Ref": "SourceBucketName"}]
    }
    # and an empty prefix there (every upload a "recording") does not deploy
    rule = template["Rules"]["RecordingsApartFromUploads"]
    assert rule["RuleCondition"] == template["Conditions"]["RecordingsInSourceBucket"]
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "RecordingsPrefix"}, ""]}]}


def _bucket_policy_statement(template: dict[str, Any], sid: str) -> dict[str, Any]:
    statements = template["Resources"]["SourceBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    (found,) = [s for s in statements if s.get("Sid") == sid]
    return found


ONLY_THE_FUNCTION = {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["ModeratorRole", "Arn"]}}}


def test_only_the_function_writes_decision_records_in_the_source_bucket(
    template: dict[str, Any],
) -> None:
    """A record marks an object decided: an uploader must not write one (the
    function moderates anything under such a name that is not one all the same)."""
    deny = _bucket_policy_statement(template, "OnlyTheModeratorWritesDecisionRecords")
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == (
        "Deny",
        {"AWS": "*"},
        "s3:PutObject",
    )
    assert deny["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::${SourceBucketName}/*.moderation.json"
    }
    assert deny["Condition"] == ONLY_THE_FUNCTION


def test_only_the_function_copies_into_the_source_bucket(template: dict[str, Any]) -> None:
    """A CopyObject with TaggingDirective=COPY brings the source object's tags,
    forged moderation-* ones included, without naming a tag key in the request,
    so the deny on moderation-* tag keys cannot see them."""
    deny = _bucket_policy_statement(template, "OnlyTheModeratorCopiesIntoTheBucket")
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == (
        "Deny",
        {"AWS": "*"},
        "s3:PutObject",
    )
    assert deny["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${SourceBucketName}/*"}
    assert deny["Condition"] == {
        "Null": {"s3:x-amz-copy-source": "false"},  # the request names a copy source
        **ONLY_THE_FUNCTION,
    }


BUILD = TEMPLATE.parent / "build.sh"


def test_the_architecture_is_a_parameter_that_build_sh_knows(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["Architecture"]
    assert parameter["Default"] == "x86_64"  # an existing stack keeps its build
    props = template["Resources"]["ModeratorFunction"]["Properties"]
    assert props["Architectures"] == [{"Ref": "Architecture"}]
    # build.sh refuses any other value before building anything, and names the ones it takes
    done = subprocess.run(
        ["bash", str(BUILD)],
        env={"ARCHITECTURE": "sparc", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    found = re.search(r"ARCHITECTURE must be (\S+) or (\S+), got 'sparc'", done.stderr)
    assert found is not None, done.stderr
    assert sorted(found.groups()) == sorted(parameter["AllowedValues"])
    # and fetches each one's wheels
    text = BUILD.read_text(encoding="utf-8")
    assert "arm64) platform=manylinux2014_aarch64" in text
    assert "x86_64) platform=manylinux2014_x86_64" in text


def test_logs_are_json_and_metrics_go_to_the_namespace_given(template: dict[str, Any]) -> None:
    props = template["Resources"]["ModeratorFunction"]["Properties"]
    assert props["LoggingConfig"] == {"LogFormat": "JSON"}
    variables = props["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    assert template["Parameters"]["MetricsNamespace"]["Default"] == DEFAULT_NAMESPACE
    # EMF lines are log lines: the role's logs:PutLogEvents is all they need
    actions = {a for _, s in _statements(template) for a in _listed(s["Action"])}
    assert "cloudwatch:PutMetricData" not in actions
