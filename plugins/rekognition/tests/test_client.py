"""Building the boto3 client from settings and boto3's own chain, caching it,
and the failures that happen before or around the HTTP call. Network access
stays on 127.0.0.1; moto stands in for AWS in the end-to-end test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from policy_engine.detectors import DetectContext
from policy_engine.errors import DetectorError
from policy_engine.image import Image
from policy_engine_rekognition.client import ClientCache, ClientSettings
from policy_engine_rekognition.client import build_client as build_rekognition_client
from policy_engine_rekognition.custom_labels import CustomLabelsDetector
from policy_engine_rekognition.errors import to_detector_error
from policy_engine_rekognition.moderation import ModerationDetector

Context = Callable[..., DetectContext]
MODEL_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/logos/version/logos.1/1"


# --- settings and boto3's chain ---------------------------------------------


def build_client(settings: ClientSettings) -> Any:
    """The real client, typed loosely: the tests read botocore's ``meta``."""
    return build_rekognition_client(settings)


def test_unset_settings_leave_boto3_defaults_and_retry_mode_adaptive() -> None:
    client = build_client(ClientSettings())
    assert client.meta.region_name == "us-east-1"  # from AWS_DEFAULT_REGION
    assert client.meta.endpoint_url == "https://rekognition.us-east-1.amazonaws.com"
    assert client.meta.config.retries == {"mode": "adaptive"}
    assert client.meta.config.connect_timeout == 60
    assert client.meta.config.read_timeout == 60


def test_settings_shape_the_client() -> None:
    client = build_client(
        ClientSettings(
            region="eu-west-1",
            endpoint_url="http://127.0.0.1:4566",
            retry_mode="standard",
            max_attempts=4,
            connect_timeout=1.5,
            read_timeout=7,
        )
    )
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"
    # max_attempts counts the first call, as AWS_MAX_ATTEMPTS does.
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert client.meta.config.connect_timeout == 1.5
    assert client.meta.config.read_timeout == 7


def test_environment_applies_when_settings_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    monkeypatch.setenv("AWS_ENDPOINT_URL_REKOGNITION", "http://127.0.0.1:9999")
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")

    client = build_client(ClientSettings())

    assert client.meta.region_name == "ap-southeast-2"
    assert client.meta.endpoint_url == "http://127.0.0.1:9999"
    assert client.meta.config.retries == {"mode": "legacy", "total_max_attempts": 2}


def test_aws_region_wins_over_aws_default_region_as_in_the_aws_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nregion = sa-east-1\n", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_REGION", "ca-central-1")
    assert build_client(ClientSettings()).meta.region_name == "ca-central-1"
    monkeypatch.delenv("AWS_REGION")
    assert build_client(ClientSettings()).meta.region_name == "us-east-1"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert build_client(ClientSettings()).meta.region_name == "sa-east-1"


def test_settings_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    client = build_client(ClientSettings(region="eu-central-1", retry_mode="adaptive"))
    assert client.meta.region_name == "eu-central-1"
    assert client.meta.config.retries["mode"] == "adaptive"


def test_profile_from_the_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "[profile moderation]\nregion = sa-east-1\nretry_mode = standard\n", encoding="utf-8"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # it would win over the profile's region

    by_setting = build_client(ClientSettings(profile="moderation"))
    monkeypatch.setenv("AWS_PROFILE", "moderation")
    by_environment = build_client(ClientSettings())

    for client in (by_setting, by_environment):
        assert client.meta.region_name == "sa-east-1"
        assert client.meta.config.retries["mode"] == "standard"


# --- caching ----------------------------------------------------------------


def test_one_client_per_distinct_settings() -> None:
    built: list[ClientSettings] = []

    def factory(settings: ClientSettings) -> Any:
        built.append(settings)
        return object()

    cache = ClientCache(factory)
    first = cache.get(ClientSettings(region="eu-west-1"))
    assert cache.get(ClientSettings(region="eu-west-1")) is first
    assert cache.get(ClientSettings(region="us-west-2")) is not first
    assert built == [ClientSettings(region="eu-west-1"), ClientSettings(region="us-west-2")]


def test_concurrent_first_calls_build_one_client() -> None:
    built: list[ClientSettings] = []
    start = threading.Barrier(8)

    def slow_factory(settings: ClientSettings) -> Any:
        built.append(settings)
        threading.Event().wait(0.05)  # widen the race window
        return object()

    cache = ClientCache(slow_factory)
    clients: list[Any] = []

    def worker() -> None:
        start.wait()
        clients.append(cache.get(ClientSettings(region="eu-west-1")))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
    assert len({id(client) for client in clients}) == 1


def test_detector_reuses_its_client_across_calls(jpeg: Image, context: Context) -> None:
    built: list[ClientSettings] = []

    class Client:
        def detect_moderation_labels(self, **request: Any) -> dict[str, Any]:
            return {"ModerationLabels": []}

    def factory(settings: ClientSettings) -> Any:
        built.append(settings)
        return Client()

    detector = ModerationDetector(client_factory=factory)
    for _ in range(3):
        detector.detect(jpeg, context(detector, {"region": "eu-west-1", "adapter_arn": MODEL_ARN}))
    detector.detect(jpeg, context(detector, {"region": "eu-west-2"}))
    assert built == [ClientSettings(region="eu-west-1"), ClientSettings(region="eu-west-2")]


# --- failures around the call -----------------------------------------------


@pytest.fixture
def refused_url() -> str:
    """A local port with nothing listening."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A local port that accepts connections (in its backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_connection_refused_is_a_retryable_connection_error(
    refused_url: str, jpeg: Image, context: Context
) -> None:
    detector = ModerationDetector()
    settings = {"endpoint_url": refused_url, "max_attempts": 1}
    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings))
    assert raised.value.code == "connection-error"
    assert raised.value.retryable is True
    assert refused_url in str(raised.value)


def test_read_timeout_is_a_retryable_timeout(
    silent_url: str, jpeg: Image, context: Context
) -> None:
    detector = ModerationDetector()
    settings = {"endpoint_url": silent_url, "max_attempts": 1, "read_timeout": 0.2}
    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings))
    assert raised.value.code == "timeout"
    assert raised.value.retryable is True
    assert "read_timeout" in str(raised.value)


def test_missing_credentials_say_where_credentials_come_from(
    monkeypatch: pytest.MonkeyPatch, refused_url: str, jpeg: Image, context: Context
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    detector = ModerationDetector()
    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, {"endpoint_url": refused_url}))
    assert raised.value.code == "no-credentials"
    assert "profile" in str(raised.value) and "AWS_PROFILE" in str(raised.value)


def test_missing_region_says_how_to_set_one(
    monkeypatch: pytest.MonkeyPatch, jpeg: Image, context: Context
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    detector = CustomLabelsDetector()
    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, {"project_version_arn": MODEL_ARN}))
    assert raised.value.code == "no-region"
    assert "`region`" in str(raised.value) and "AWS_REGION" in str(raised.value)


def test_unknown_profile_is_named(jpeg: Image, context: Context) -> None:
    detector = ModerationDetector()
    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, {"profile": "nobody"}))
    assert raised.value.code == "profile-not-found"
    assert "nobody" in str(raised.value)


def test_secrets_never_appear_in_messages(
    monkeypatch: pytest.MonkeyPatch, refused_url: str, jpeg: Image, context: Context
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    detector = ModerationDetector()
    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, {"endpoint_url": refused_url, "max_attempts": 1}))
    assert "AKIAIOSFODNN7EXAMPLE" not in str(raised.value)
    assert "wJalrXUtnFEMI" not in str(raised.value)


# --- end to end through moto ------------------------------------------------


def test_custom_labels_end_to_end_through_moto(jpeg: Image, context: Context) -> None:
    from moto import mock_aws

    detector = CustomLabelsDetector()  # the real client factory
    with mock_aws():
        result = detector.detect(jpeg, context(detector, {"project_version_arn": MODEL_ARN}))
    assert result.source == "rekognition-custom-labels"
    assert result.labels and all(
        label.source == "rekognition-custom-labels" for label in result.labels
    )
    assert result.labels[0].name == "MyLogo"
    assert "BoundingBox" in result.labels[0].extra["geometry"]
    assert result.metadata["project_version_arn"] == MODEL_ARN


# --- a region that cannot be reached ------------------------------------------


@pytest.fixture
def unresolvable_hosts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No host name resolves but 127.0.0.1 and localhost, as a mistyped region's
    host does not (NXDOMAIN), without asking DNS: nothing leaves this machine.
    Returns the names looked up."""
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    looked_up: list[str] = []
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("127.0.0.1", "localhost"):
            return resolve(host, *args, **kwargs)
        looked_up.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


@pytest.mark.parametrize("region_from", ["setting", "AWS_REGION"])
@pytest.mark.parametrize(
    ("detector", "settings"),
    [(ModerationDetector, {}), (CustomLabelsDetector, {"project_version_arn": MODEL_ARN})],
)
def test_an_unknown_region_that_cannot_be_reached_is_named_with_a_guess(
    monkeypatch: pytest.MonkeyPatch,
    unresolvable_hosts: list[str],
    jpeg: Image,
    context: Context,
    detector: Any,
    settings: dict[str, Any],
    region_from: str,
) -> None:
    if region_from == "setting":
        settings = {**settings, "region": "us-esat-1"}
    else:
        monkeypatch.setenv("AWS_REGION", "us-esat-1")
    instance = detector()
    with pytest.raises(DetectorError) as raised:
        instance.detect(jpeg, context(instance, {**settings, "max_attempts": 1}))

    assert unresolvable_hosts == ["rekognition.us-esat-1.amazonaws.com"]  # botocore's own URL
    error = raised.value
    assert (error.code, error.retryable) == ("connection-error", True)
    message = str(error)
    assert "https://rekognition.us-esat-1.amazonaws.com" in message
    assert (
        "could not reach Rekognition in region us-esat-1, not a Rekognition region botocore "
        "knows (did you mean us-east-1?); check the region (the `region` setting, AWS_REGION"
    ) in message


@pytest.mark.parametrize("region", ["eu-west-1", "us-gov-west-1"])  # us-gov: another partition
def test_a_known_region_that_cannot_be_reached_is_named_without_doubt(
    unresolvable_hosts: list[str], jpeg: Image, context: Context, region: str
) -> None:
    detector = ModerationDetector()
    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, {"region": region, "max_attempts": 1}))

    assert unresolvable_hosts and region in unresolvable_hosts[0].split(".")
    message = str(raised.value)
    assert f"could not reach Rekognition in region {region}; check the region" in message
    assert "botocore knows" not in message and "did you mean" not in message
    assert "botocore knows" not in message


def test_with_an_endpoint_url_the_region_is_not_blamed(
    refused_url: str, jpeg: Image, context: Context
) -> None:
    detector = ModerationDetector()
    settings = {"endpoint_url": refused_url, "region": "us-esat-1", "max_attempts": 1}
    with pytest.raises(DetectorError) as raised:
        detector.detect(jpeg, context(detector, settings))

    message = str(raised.value)
    assert raised.value.code == "connection-error"
    assert "check the network, proxy and endpoint_url" in message
    assert "us-esat-1" not in message and "check the region" not in message


@pytest.mark.parametrize(
    ("region", "doubt"),
    [
        ("us-esat-1", ", not a Rekognition region botocore knows (did you mean us-east-1?);"),
        ("eu-west-9", "botocore knows (did you mean eu-west-1 or eu-west-2?);"),
        ("mars-north-1", ", not a Rekognition region botocore knows;"),
        ("ap-northeast-2", "in region ap-northeast-2; check the region"),
    ],
)
def test_the_region_advice_guesses_only_near_typos(region: str, doubt: str) -> None:
    from botocore.exceptions import EndpointConnectionError

    endpoint_url = f"https://rekognition.{region}.amazonaws.com"
    error = to_detector_error(
        EndpointConnectionError(endpoint_url=endpoint_url),
        detector="rekognition-moderation",
        operation="DetectModerationLabels",
        image_name="a.jpg",
        region=region,
        endpoint_url=endpoint_url,
    )

    assert error is not None and error.code == "connection-error"
    assert doubt in str(error)
