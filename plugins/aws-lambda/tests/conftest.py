"""Shared fixtures: S3 through moto, Rekognition through FakeRekognition on
127.0.0.1. No test touches the network or an AWS account."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lambda_helpers import BUCKET, JPEG, QUARANTINE, ScriptedS3
from policy_engine_lambda import handler as lambda_handler
from policy_engine_lambda import telemetry
from policy_engine_lambda.config import FUNCTION_VARIABLES
from policy_engine_lambda.telemetry import LOGGED

from policy_engine_rekognition.testing import (
    AWS_ENVIRONMENT,
    FakeRekognition,
    fake_aws_environment,
)

_VARIABLES = (*AWS_ENVIRONMENT, "POLICY_ENGINE_PLUGINS", "LAMBDA_TASK_ROOT", *FUNCTION_VARIABLES)


@pytest.fixture(autouse=True)
def restored_loggers() -> Iterator[None]:
    """The loggers as they were: the function gives them Powertools' handler
    (and stops their propagation), which other tests' caplog must not meet."""
    loggers = [logging.getLogger(name) for name in LOGGED]
    saved = [(lg, lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
    yield
    for lg, handlers, propagate, level in saved:
        lg.handlers[:] = handlers
        lg.propagate = propagate
        lg.setLevel(level)
    telemetry._logger = None


@pytest.fixture(autouse=True)
def isolated_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in fake_aws_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    # one attempt per Rekognition call: a throttle reaches the handler at once
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    lambda_handler.reset()  # a fresh "container" per test
    yield
    lambda_handler.reset()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRekognition]:
    """FakeRekognition, reached through AWS_ENDPOINT_URL_REKOGNITION by the shipped policy."""
    with FakeRekognition() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_REKOGNITION", server.endpoint_url)
        yield server


@pytest.fixture
def s3() -> Iterator[Any]:
    """moto's S3, with a versioned source bucket and a versioned quarantine bucket.

    FakeRekognition's 127.0.0.1 endpoint is no AWS endpoint, so moto lets
    those requests through to it."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (BUCKET, QUARANTINE):
            client.create_bucket(Bucket=bucket)
            client.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        yield client


@pytest.fixture
def put(s3: Any) -> Callable[..., str]:
    """``put(key, tags=None, bucket=BUCKET)``: upload a JPEG, return its version id."""

    def upload(key: str, tags: str | None = None, bucket: str = BUCKET) -> str:
        extra = {"Tagging": tags} if tags else {}
        answer = s3.put_object(Bucket=bucket, Key=key, Body=JPEG, **extra)
        return str(answer.get("VersionId", ""))

    return upload


@pytest.fixture
def scripted(s3: Any, monkeypatch: pytest.MonkeyPatch) -> ScriptedS3:
    """The function's S3 client, with scripted faults and hooks (see ScriptedS3)."""
    client = ScriptedS3(s3)
    monkeypatch.setattr(lambda_handler, "build_s3_client", lambda: client)
    return client
