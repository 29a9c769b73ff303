"""Shared fixtures. No test here touches the network or an AWS account: fake
credentials come from the environment, and AWS config files on this machine
are hidden so that they cannot change what a test sees."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from policy_engine.detectors import DetectContext, Detector
from policy_engine.image import Image
from policy_engine_rekognition.testing import AWS_ENVIRONMENT, fake_aws_environment

# Just enough magic bytes for the pre-call format check; the Stubber never decodes them.
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
GIF_BYTES = b"GIF89a" + b"\x00" * 64


@pytest.fixture(autouse=True)
def isolated_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in AWS_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    for name, value in fake_aws_environment(tmp_path).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def context() -> Callable[..., DetectContext]:
    """``context(detector, settings, min_confidence=50)``: what the engine would pass."""

    def make(
        detector: Detector, settings: Mapping[str, Any] | None = None, min_confidence: float = 50
    ) -> DetectContext:
        return DetectContext(
            settings=settings or {},
            min_confidence=min_confidence,
            base_dir=".",
            parse_response=detector.parse,
        )

    return make


@pytest.fixture
def jpeg() -> Image:
    return Image(name="photos/cat.jpg", data=JPEG_BYTES)


@pytest.fixture
def png() -> Image:
    return Image(name="photos/cat.png", data=PNG_BYTES)


@pytest.fixture
def gif() -> Image:
    return Image(name="photos/cat.gif", data=GIF_BYTES)


@dataclass(frozen=True)
class StubbedClient:
    client: Any
    stubber: Any

    def factory(self, settings: object) -> Any:
        """A ``client_factory`` for the detectors that hands out this client."""
        return self.client


@pytest.fixture
def stubbed() -> Iterator[StubbedClient]:
    """A real botocore Rekognition client with an active Stubber; every queued
    response must have been used by the end of the test."""
    import boto3.session
    from botocore.stub import Stubber

    client = boto3.session.Session(region_name="us-east-1").client("rekognition")
    with Stubber(client) as stubber:
        yield StubbedClient(client, stubber)
        stubber.assert_no_pending_responses()


@pytest.fixture
def fake() -> Iterator[Any]:
    """A running :class:`~policy_engine_rekognition.testing.FakeRekognition`,
    stopped (threads joined) after the test."""
    from policy_engine_rekognition.testing import FakeRekognition

    with FakeRekognition() as server:
        yield server


@pytest.fixture
def instant_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard and adaptive modes wait up to 1 s, then 2 s, before
    retrying a throttled call, and adaptive mode then paces every send: keep
    their decisions (which calls are retried, how often) and drop only the
    waits, so that retry tests stay fast."""
    from botocore.retries import bucket, standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    # adaptive mode also paces sends through a token bucket that a throttle
    # slows to about one a second: tokens are free here (the retry decisions stay)
    monkeypatch.setattr(bucket.TokenBucket, "acquire", lambda self, amount=1, block=True: True)
