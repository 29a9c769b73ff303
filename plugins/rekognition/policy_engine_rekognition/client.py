"""Settings and client building shared by both detectors.

boto3 is imported inside the functions that use it only: policy-engine
imports every installed plugin to list detectors, and that must not pay for
boto3.
Settings the user leaves out are not passed, so boto3's own chain
(AWS_DEFAULT_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_REKOGNITION, AWS_RETRY_MODE,
AWS_MAX_ATTEMPTS, the config files) still applies; AWS_REGION, which boto3
does not read, is read here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Generic, Protocol, TypeVar

from policy_engine import DetectorError, Image
from policy_engine_rekognition import __version__
from policy_engine_rekognition.errors import (
    NO_CREDENTIALS_ADVICE,
    NO_REGION_ADVICE,
    redact,
    region_doubt,
    sdk_failure,
    to_detector_error,
)

SERVICE_NAME = "rekognition"
RETRY_MODES = ("legacy", "standard", "adaptive")
# Adaptive backs off client-side once throttled, which suits batch moderation;
# botocore's own default (legacy) does not.
DEFAULT_RETRY_MODE = "adaptive"
# botocore's default pool; a run checking more images at once gets one
# connection per thread, so that no thread waits for (or discards) a connection.
MIN_POOL_CONNECTIONS = 10
# AWS documents this code as unsafe to retry; botocore's standard and adaptive
# modes retry it as a throttle all the same.
NEVER_RETRIED_CODES = frozenset({"LimitExceededException"})

CLIENT_SETTINGS_PROPERTIES: Mapping[str, Mapping[str, Any]] = {
    "region": {
        "type": "string",
        "minLength": 1,
        "description": "AWS region to call, e.g. us-east-1. Unset: AWS_REGION, "
        "AWS_DEFAULT_REGION or the profile's region.",
    },
    "profile": {
        "type": "string",
        "minLength": 1,
        "description": "Named profile from the AWS config and credentials files. "
        "Unset: AWS_PROFILE, else the default credential chain.",
    },
    "endpoint_url": {
        "type": "string",
        "pattern": "^https?://",
        "description": "URL to call instead of AWS's regional endpoint (a VPC endpoint, "
        "a local fake). Unset: AWS_ENDPOINT_URL_REKOGNITION or AWS_ENDPOINT_URL, else AWS's.",
    },
    "retry_mode": {
        "enum": list(RETRY_MODES),
        "default": DEFAULT_RETRY_MODE,
        "description": "botocore retry mode. Unset: AWS_RETRY_MODE or the profile's "
        "retry_mode, else adaptive (retries with a client-side rate limiter once throttled).",
    },
    "max_attempts": {
        "type": "integer",
        "minimum": 1,
        "description": "Attempts per call in total, the first included (1: never retry). "
        "Unset: AWS_MAX_ATTEMPTS, else the retry mode's default.",
    },
    "connect_timeout": {
        "type": "number",
        "exclusiveMinimum": 0,
        "description": "Seconds to wait for a connection. Unset: botocore's default (60).",
    },
    "read_timeout": {
        "type": "number",
        "exclusiveMinimum": 0,
        "description": "Seconds to wait for a response. Unset: botocore's default (60).",
    },
}


def settings_schema(
    properties: Mapping[str, Mapping[str, Any]], *, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A detector's settings schema: its own properties plus the client ones."""
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {**properties, **CLIENT_SETTINGS_PROPERTIES},
    }
    if required:
        schema["required"] = list(required)
    return schema


class RekognitionClient(Protocol):
    """The part of boto3's Rekognition client the detectors use."""

    def detect_moderation_labels(self, **request: Any) -> Mapping[str, Any]: ...

    def detect_custom_labels(self, **request: Any) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """The settings that shape a client (hashable: clients are cached by them).
    None means "not set": boto3's own chain decides."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    retry_mode: str | None = None
    max_attempts: int | None = None
    connect_timeout: float | None = None
    read_timeout: float | None = None
    max_pool_connections: int = MIN_POOL_CONNECTIONS

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, concurrency: int = 1) -> ClientSettings:
        """The client settings among a detector's ``settings``, with a connection
        pool for ``concurrency`` threads (at least botocore's default of 10)."""
        chosen = {f.name: settings.get(f.name) for f in fields(cls) if f.name in _FROM_SETTINGS}
        return cls(**chosen, max_pool_connections=max(MIN_POOL_CONNECTIONS, concurrency))


_FROM_SETTINGS = frozenset(CLIENT_SETTINGS_PROPERTIES)


ClientFactory = Callable[[ClientSettings], RekognitionClient]
ClientT = TypeVar("ClientT")


def _retry_mode_configured(botocore_session: Any) -> bool:
    """Whether AWS_RETRY_MODE or the profile chose a retry mode (which then wins
    over our default)."""
    if os.environ.get("AWS_RETRY_MODE"):
        return True
    return "retry_mode" in botocore_session.get_scoped_config()


def _region_from_environment() -> str | None:
    """AWS_REGION, which boto3 itself ignores (it reads AWS_DEFAULT_REGION only)
    while the AWS CLI v2 and the other SDKs read it first; None lets boto3's
    chain decide."""
    return os.environ.get("AWS_REGION") or None


def aws_sessions(settings: ClientSettings) -> tuple[Any, Any]:
    """The boto3 session (and its botocore session) whose credentials and
    region the clients for ``settings`` use: the ``profile`` and ``region``
    settings, else boto3's chains (AWS_REGION included). Raises botocore's
    ProfileNotFound."""
    try:
        import boto3.session
        import botocore.session
    except ImportError as exc:  # pragma: no cover - boto3 is a dependency
        raise DetectorError(
            f"boto3 is not installed ({exc}); reinstall policy-engine-rekognition",
            code="missing-dependency",
            sent=False,
        ) from exc
    botocore_session = botocore.session.Session()
    session = boto3.session.Session(
        botocore_session=botocore_session,
        profile_name=settings.profile,
        region_name=settings.region or _region_from_environment(),
    )
    return session, botocore_session


def check_can_call(settings: ClientSettings) -> None:
    """Raise :class:`DetectorError` (``sent`` False) when a client for
    ``settings`` could not call at all: a profile that does not exist, no
    region, no credentials. Nothing is sent to AWS: the region and credentials
    are resolved as the first call would resolve them (on EC2 or in a
    container, that asks the instance or container metadata endpoint).
    Credentials found may still be refused by AWS; only a call tells."""
    from botocore.exceptions import BotoCoreError

    try:
        session, _ = aws_sessions(settings)
        if not session.region_name:
            raise DetectorError(NO_REGION_ADVICE, code="no-region", sent=False)
        if not _endpoint_given(settings):  # a mistyped region's endpoint does not exist
            doubt = region_doubt(session.region_name)
            if doubt is not None:
                raise DetectorError(
                    f"region {session.region_name!r} is {doubt}; every call would fail. Fix "
                    "the region, or, if AWS opened it after this botocore was released, "
                    "upgrade botocore (or give endpoint_url)",
                    code="unknown-region",
                    sent=False,
                )
        if session.get_credentials() is None:
            raise DetectorError(NO_CREDENTIALS_ADVICE, code="no-credentials", sent=False)
    except BotoCoreError as exc:
        failure = sdk_failure(exc)
        code, advice = (failure.code, failure.advice) if failure else ("aws-sdk-error", "")
        message = f"{exc}; {advice}" if advice else str(exc)
        raise DetectorError(redact(message), code=code, sent=False) from exc


def _endpoint_given(settings: ClientSettings) -> bool:
    """Whether the endpoint is set outright (then the region only signs calls)."""
    return bool(
        settings.endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_REKOGNITION")
        or os.environ.get("AWS_ENDPOINT_URL")
    )


def build_client(settings: ClientSettings) -> RekognitionClient:
    """A boto3 Rekognition client for ``settings``."""
    session, botocore_session = aws_sessions(settings)
    import botocore.config

    retries: dict[str, Any] = {}
    if settings.retry_mode is not None:
        retries["mode"] = settings.retry_mode
    elif not _retry_mode_configured(botocore_session):
        retries["mode"] = DEFAULT_RETRY_MODE
    if settings.max_attempts is not None:
        # total_max_attempts counts the first call, as AWS_MAX_ATTEMPTS does;
        # botocore's retries["max_attempts"] would count retries only.
        retries["total_max_attempts"] = settings.max_attempts
    config_options: dict[str, Any] = {
        "user_agent_extra": f"policy-engine-rekognition/{__version__}"
    }
    if retries:
        config_options["retries"] = retries
    if settings.connect_timeout is not None:
        config_options["connect_timeout"] = settings.connect_timeout
    if settings.read_timeout is not None:
        config_options["read_timeout"] = settings.read_timeout
    config_options["max_pool_connections"] = settings.max_pool_connections
    client_options: dict[str, Any] = {"config": botocore.config.Config(**config_options)}
    if settings.endpoint_url is not None:
        client_options["endpoint_url"] = settings.endpoint_url
    client = session.client(SERVICE_NAME, **client_options)
    veto_unsafe_retries(client)
    built: RekognitionClient = client
    return built


def veto_unsafe_retries(client: Any) -> None:
    """Never retry :data:`NEVER_RETRIED_CODES`, whatever the retry mode.

    botocore asks every ``needs-retry`` handler and follows the first answer
    that is not None, where False means "do not retry": this handler, placed
    first, answers False for those codes and None (no opinion) otherwise.
    botocore's own handler is still consulted (it may count the failure
    against its retry quota) but is no longer followed for them."""
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register_first(
        f"needs-retry.{service}", _no_retry_for_unsafe_codes, unique_id="policy-engine-no-retry"
    )


def _no_retry_for_unsafe_codes(response: Any = None, **_: Any) -> bool | None:
    if not isinstance(response, tuple) or len(response) != 2:
        return None  # a connection error: botocore decides
    parsed = response[1]
    code = parsed.get("Error", {}).get("Code") if isinstance(parsed, Mapping) else None
    return False if code in NEVER_RETRIED_CODES else None


class ClientCache(Generic[ClientT]):
    """One client per distinct :class:`ClientSettings`, built on first use.

    boto3 clients are thread-safe once built, but building one is not, and two
    threads must not build two clients for the same settings.
    """

    def __init__(self, factory: Callable[[ClientSettings], ClientT]) -> None:
        self.factory = factory
        self._clients: dict[ClientSettings, ClientT] = {}
        self._lock = threading.Lock()

    def get(self, settings: ClientSettings) -> ClientT:
        found = self._clients.get(settings)  # built already: no lock on every call
        if found is not None:
            return found
        with self._lock:
            client = self._clients.get(settings)
            if client is None:
                client = self.factory(settings)
                self._clients[settings] = client
            return client


_METHODS = {
    "DetectModerationLabels": "detect_moderation_labels",
    "DetectCustomLabels": "detect_custom_labels",
}


@dataclass(frozen=True, slots=True)
class Response:
    """A successful response, split into the body (what :meth:`parse` reads and
    recordings keep) and the request id (for AWS support)."""

    body: Mapping[str, Any]
    request_id: str | None


# The request field that names the model, by operation.
_MODEL_FIELDS = {
    "DetectModerationLabels": "ProjectVersion",
    "DetectCustomLabels": "ProjectVersionArn",
}


def call_rekognition(
    clients: ClientCache[RekognitionClient],
    settings: ClientSettings,
    operation: str,
    request: Mapping[str, Any],
    *,
    detector: str,
    image: Image,
) -> Response:
    """Call ``operation`` (e.g. ``DetectModerationLabels``), turning every AWS
    failure, client building included, into a :class:`DetectorError`. The
    model the request names (an adapter, a project version, or none: the base
    moderation model) shapes the advice for a model that is not ready."""
    method = _METHODS[operation]
    named_model = _named_model(operation, request)
    client: object = None
    try:
        client = clients.get(settings)
        answer = getattr(client, method)(**request)
    except Exception as exc:
        region, endpoint_url = _destination(client)
        mapped = to_detector_error(
            exc,
            detector=detector,
            operation=operation,
            image_name=image.name,
            model_arn=named_model,
            region=region,
            endpoint_url=endpoint_url,
        )
        if client is None and mapped is not None:
            mapped.sent = False  # the client was never built: nothing went out
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc
    body = {key: value for key, value in answer.items() if key != "ResponseMetadata"}
    request_id = answer.get("ResponseMetadata", {}).get("RequestId")
    return Response(body=body, request_id=request_id if isinstance(request_id, str) else None)


def _named_model(operation: str, request: Mapping[str, Any]) -> str | None:
    named = request.get(_MODEL_FIELDS.get(operation, ""))
    return named if isinstance(named, str) and named else None


def _destination(client: object) -> tuple[str | None, str | None]:
    """The region and endpoint a boto3 client calls (botocore's resolved
    values, whichever setting or variable chose them); (None, None) for a
    client that was not built, or an injected one without botocore's ``meta``."""
    meta = getattr(client, "meta", None)
    region = getattr(meta, "region_name", None)
    endpoint_url = getattr(meta, "endpoint_url", None)
    return (
        region if isinstance(region, str) else None,
        endpoint_url if isinstance(endpoint_url, str) else None,
    )
