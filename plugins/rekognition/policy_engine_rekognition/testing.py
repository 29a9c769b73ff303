"""A fake Amazon Rekognition for tests: a real HTTP server on 127.0.0.1.

:class:`FakeRekognition` speaks AWS JSON 1.1, as Rekognition does, so boto3
reaches it through ``endpoint_url`` with its whole HTTP stack in play:
request signing, serialisation, response parsing, error codes and retries.
Use it to test an upload flow end to end without an AWS account::

    from policy_engine_rekognition.testing import FakeRekognition

    with FakeRekognition() as fake:
        fake.respond(image_bytes, {"ModerationLabels": [...], "ModerationModelVersion": "7.0"})
        fake.throttle(times=2)                 # the next two calls are throttled
        ...                                    # settings: {endpoint_url: fake.endpoint_url}
        assert fake.call_count("DetectModerationLabels") == 3

It serves ``DetectModerationLabels`` and ``DetectCustomLabels`` and checks what
the service checks and botocore does not (confidence range, empty, oversized
and non-JPEG/PNG images, a missing ``ProjectVersionArn``). Any credentials are
accepted, but requests must be SigV4-signed. Standard library only; no thread
outlives :meth:`FakeRekognition.stop`.

A request is answered by the first of these that applies:

1. no ``Authorization`` header: 403 ``MissingAuthenticationTokenException``;
2. an ``X-Amz-Target`` other than the two operations: 400 ``UnknownOperationException``;
3. a body that is not a JSON object: 400 ``SerializationException``;
4. over the ``tps`` limit: ``ThrottlingException`` (status ``throttle_status``);
5. the oldest scripted outcome that matches and is not used up
   (:meth:`~FakeRekognition.fail`, :meth:`~FakeRekognition.throttle`); a scripted
   success is subject to the next step, a scripted failure is not;
6. the service's own checks of the request;
7. the response scripted for the image (:meth:`~FakeRekognition.respond`), else
   the operation's default (:meth:`~FakeRekognition.set_default`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import enum
import hashlib
import json
import os
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal, get_args

from policy_engine_rekognition.images import (
    CUSTOM_LABELS_LIMITS,
    MODERATION_LIMITS,
    ImageLimits,
    read_pixel_size,
)

__all__ = [
    "ANY",
    "AWS_ENVIRONMENT",
    "DEFAULT_RESPONSES",
    "AnyImage",
    "FakeRekognition",
    "Operation",
    "RecordedCall",
    "fake_aws_environment",
]

AWS_ENVIRONMENT: Final = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_REKOGNITION",
    "AWS_ENDPOINT_URL_S3",
    "AWS_DEFAULTS_MODE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)
"""Variables that could point a test at a real account, or change what boto3 does:
clear them before setting :func:`fake_aws_environment`."""


def fake_aws_environment(scratch: str | os.PathLike[str]) -> dict[str, str]:
    """Environment values for a test that must never reach AWS: fake credentials,
    a fixed region, no instance metadata, and config files (under ``scratch``, a
    folder of the test's own) that do not exist, so this machine's ``~/.aws``
    cannot change what the test sees. With pytest::

        for name in AWS_ENVIRONMENT:
            monkeypatch.delenv(name, raising=False)
        for name, value in fake_aws_environment(tmp_path).items():
            monkeypatch.setenv(name, value)
    """
    folder = os.fspath(scratch)
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.path.join(folder, "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(folder, "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


Operation = Literal["DetectModerationLabels", "DetectCustomLabels"]
"""The operations the fake serves (the ``X-Amz-Target`` is ``RekognitionService.<Operation>``)."""

OPERATIONS: Final[tuple[Operation, ...]] = get_args(Operation)
TARGET_PREFIX: Final = "RekognitionService."


class AnyImage(enum.Enum):
    """The type of :data:`ANY`."""

    ANY = "any image"


ANY: Final = AnyImage.ANY
"""Matches every image (and requests without a readable image) in
:meth:`FakeRekognition.fail` and :meth:`FakeRekognition.throttle`."""

ImageKey = bytes | str
"""An image as :meth:`FakeRekognition.respond` takes it: its bytes, the
hex sha256 of its bytes, or ``s3://bucket/name`` (``?versionId=V`` appended
when the request names a version) for an ``Image.S3Object``."""

DEFAULT_RESPONSES: Final[Mapping[Operation, Mapping[str, Any]]] = {
    "DetectModerationLabels": {"ModerationLabels": [], "ModerationModelVersion": "7.0"},
    "DetectCustomLabels": {"CustomLabels": []},
}
"""What an image nothing was scripted for gets, until :meth:`FakeRekognition.set_default`."""

# The service's limits on Image.Bytes (decoded), per operation.
MAX_IMAGE_BYTES: Final[Mapping[Operation, int]] = {
    "DetectModerationLabels": 5_242_880,
    "DetectCustomLabels": 4_194_304,
}
_JPEG_MAGIC: Final = b"\xff\xd8\xff"
_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
# A request body can hold a 5 MiB image as base64 and some JSON; refuse far more.
_MAX_BODY_BYTES: Final = 16 * 1024 * 1024
_PIXEL_LIMITS: Final[Mapping[Operation, ImageLimits]] = {
    "DetectModerationLabels": MODERATION_LIMITS,
    "DetectCustomLabels": CUSTOM_LABELS_LIMITS,
}
_SHA256_HEX: Final = re.compile(r"^[0-9a-fA-F]{64}$")
_JSON_CONTENT_TYPE: Final = "application/x-amz-json-1.1"
# Placeholders for the extra fields of HumanLoopQuotaExceededException.
_HUMAN_LOOP_QUOTA_FIELDS: Final[Mapping[str, str]] = {
    "ResourceType": "HumanLoop",
    "QuotaCode": "L-FAKE0001",
    "ServiceCode": "sagemaker",
}
OK: Final = "ok"


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One request the fake received, whatever its outcome."""

    operation: str
    """``DetectModerationLabels``, ``DetectCustomLabels``, or what the target
    named (``""`` when there was none) for an unknown operation."""
    request: Mapping[str, Any]
    """The JSON request body, parsed, with ``Image.Bytes`` replaced by
    ``Image.Sha256`` and ``Image.Size`` (``{}`` when the body was unreadable)."""
    image: str | None
    """The image's key: the hex sha256 of ``Image.Bytes``, or the ``s3://`` URI
    of ``Image.S3Object``; None when the request had no readable image."""
    image_sha256: str | None
    """The hex sha256 of ``Image.Bytes``; None for S3 images and no image."""
    timestamp: float
    """When the request arrived (``time.time()``)."""
    status: int
    """The HTTP status of the answer."""
    outcome: str
    """``"ok"``, or the error code answered (the status, as a string, for a
    scripted raw ``body``: botocore names those errors so)."""
    request_id: str
    """The ``x-amzn-RequestId`` answered."""

    @property
    def ok(self) -> bool:
        return self.outcome == OK


@dataclass(slots=True)
class _Reply:
    status: int
    body: bytes
    outcome: str
    content_type: str = _JSON_CONTENT_TYPE


@dataclass(slots=True)
class _Scripted:
    """A scripted outcome: an error (``reply``) or a success (``response``)."""

    image: str | None  # None: any image
    operation: Operation | None  # None: either operation
    remaining: int | None  # None: forever
    reply: _Reply | None = None
    response: Mapping[str, Any] | None = None

    def matches(self, operation: Operation, image: str | None) -> bool:
        if self.remaining == 0:
            return False
        if self.operation is not None and self.operation != operation:
            return False
        return self.image is None or self.image == image


@dataclass(slots=True)
class _Request:
    operation: Operation
    body: Mapping[str, Any]
    image_bytes: bytes | None = None
    image: str | None = None
    recorded: dict[str, Any] = field(default_factory=dict)


class _FakeError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _error_reply(
    code: str, message: str, status: int, fields: Mapping[str, Any] | None = None
) -> _Reply:
    body = {"__type": code, "Message": message, **(fields or {})}
    return _Reply(status, json.dumps(body).encode(), code)


def _json_copy(value: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A deep copy of ``value``, which must be JSON-serialisable (checked now,
    not when a request arrives in another thread)."""
    try:
        copied = json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serialisable: {exc}") from exc
    if not isinstance(copied, dict):
        raise TypeError(f"{what} must be a JSON object (a dict), got {type(value).__name__}")
    return copied


def image_key(image: ImageKey) -> str:
    """The key :meth:`FakeRekognition.respond` stores ``image`` under."""
    if isinstance(image, bytes | bytearray | memoryview):
        return hashlib.sha256(bytes(image)).hexdigest()
    if isinstance(image, str):
        if image.startswith("s3://") and len(image) > len("s3://"):
            return image
        if _SHA256_HEX.match(image):
            return image.lower()
    raise ValueError(
        f"image must be bytes, a hex sha256 or an s3://bucket/name URI, got {image!r:.80}"
    )


def _s3_key(s3: Mapping[str, Any]) -> str:
    key = f"s3://{s3['Bucket']}/{s3['Name']}"
    if s3.get("Version"):
        key += f"?versionId={s3['Version']}"
    return key


def _operation_of(response: Mapping[str, Any]) -> Operation:
    if "CustomLabels" in response:
        return "DetectCustomLabels"
    if "ModerationLabels" in response:
        return "DetectModerationLabels"
    raise ValueError(
        "cannot tell the operation from the response (it has neither ModerationLabels "
        "nor CustomLabels): pass operation='DetectModerationLabels' or 'DetectCustomLabels'"
    )


def _check_operation(operation: str | None) -> Operation | None:
    if operation is None:
        return None
    for known in OPERATIONS:
        if operation == known:
            return known
    raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}, got {operation!r}")


def _check_status(status: int) -> int:
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"status must be an HTTP error status (400 to 599), got {status!r}")
    return status


def _check_times(times: int | None) -> int | None:
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ValueError(f"times must be None (always) or a positive integer, got {times!r}")
    return times


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class FakeRekognition:
    """An AWS JSON 1.1 Rekognition endpoint on ``127.0.0.1``, an ephemeral port.

    :param latency: seconds every answer is delayed by (also :attr:`latency`).
    :param tps: transactions per second allowed over a sliding one-second
        window across all threads; calls over it are throttled. None: no limit.
    :param throttle_status: the HTTP status of ``ThrottlingException`` answers
        (AWS has been seen to use both 400 and 500).
    :param clock: the monotonic clock of the ``tps`` window (tests may freeze it).

    Thread-safe: boto3 clients in many threads may call it at once, and the
    test may script it and read :attr:`calls` meanwhile.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        tps: float | None = None,
        throttle_status: int = 400,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._latency = 0.0
        self._tps: float | None = None
        self._throttle_status = 400
        self.latency = latency
        self.tps = tps
        self.throttle_status = throttle_status
        self._clock = clock
        self._window: deque[float] = deque()
        self._scripted: list[_Scripted] = []
        self._responses: dict[tuple[Operation, str], dict[str, Any]] = {}
        self._defaults: dict[Operation, dict[str, Any]] = {
            op: _json_copy(response, "default") for op, response in DEFAULT_RESPONSES.items()
        }
        self._calls: list[RecordedCall] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> FakeRekognition:
        """Listen on an ephemeral port of 127.0.0.1 and serve from a background thread."""
        if self._server is not None:
            raise RuntimeError("FakeRekognition is already running")
        self._stopping.clear()
        server = _Server(self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeRekognition:{server.server_address[1]}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving, close the port and every connection, and join every
        thread the fake started. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()  # cuts latency waits short
        server.shutdown()
        thread.join()
        server.close_connections()
        server.server_close()  # joins the request threads
        self._server = self._thread = None

    def __enter__(self) -> FakeRekognition:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``: pass it as boto3's ``endpoint_url`` (or the
        detectors' ``endpoint_url`` setting, or ``AWS_ENDPOINT_URL_REKOGNITION``)."""
        if self._server is None:
            raise RuntimeError("FakeRekognition is not running: use `with` or call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- settings -------------------------------------------------------------

    @property
    def latency(self) -> float:
        """Seconds every answer is delayed by (0: none)."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if not _is_number(seconds) or not 0 <= seconds < float("inf"):
            raise ValueError(f"latency must be a number of seconds >= 0, got {seconds!r}")
        self._latency = float(seconds)

    @property
    def tps(self) -> float | None:
        """Calls allowed per sliding second across all threads (None: no limit)."""
        return self._tps

    @tps.setter
    def tps(self, limit: float | None) -> None:
        if limit is not None and (not _is_number(limit) or not limit > 0):
            raise ValueError(f"tps must be None or a positive number, got {limit!r}")
        with self._lock:
            self._tps = None if limit is None else float(limit)

    @property
    def throttle_status(self) -> int:
        """HTTP status of ``ThrottlingException`` answers (default 400)."""
        return self._throttle_status

    @throttle_status.setter
    def throttle_status(self, status: int) -> None:
        self._throttle_status = _check_status(status)

    # --- scripting ------------------------------------------------------------

    def respond(
        self,
        image: ImageKey,
        response: Mapping[str, Any],
        *,
        operation: Operation | None = None,
    ) -> None:
        """Answer ``response`` (status 200) to every call of ``operation`` for
        ``image`` (bytes, hex sha256, or ``s3://bucket/name[?versionId=V]``),
        replacing what was scripted for it before. ``operation`` defaults to
        the one whose response ``response`` looks like."""
        op = _check_operation(operation) or _operation_of(response)
        key = image_key(image)
        copied = _json_copy(response, "response")
        with self._lock:
            self._responses[(op, key)] = copied

    def set_default(
        self, response: Mapping[str, Any], *, operation: Operation | None = None
    ) -> None:
        """Answer ``response`` to every image nothing else is scripted for."""
        op = _check_operation(operation) or _operation_of(response)
        copied = _json_copy(response, "response")
        with self._lock:
            self._defaults[op] = copied

    def fail(
        self,
        image: ImageKey | AnyImage = ANY,
        code: str = "InvalidImageFormatException",
        *,
        status: int = 400,
        message: str | None = None,
        times: int | None = None,
        operation: Operation | None = None,
        fields: Mapping[str, Any] | None = None,
        body: bytes | str | None = None,
    ) -> None:
        """Answer an error to calls for ``image`` (:data:`ANY`: every call).

        :param code: the ``__type`` (e.g. ``AccessDeniedException``).
        :param status: the HTTP status, 400 to 599.
        :param message: the ``Message``; default: a sentence naming the code.
        :param times: for this many calls (None: for every call).
        :param operation: only calls of this operation (None: both).
        :param fields: more fields for the body; ``HumanLoopQuotaExceededException``
            gets placeholder ``ResourceType``, ``QuotaCode`` and ``ServiceCode``.
        :param body: send this body as it is instead (``b""``, or an HTML page,
            which botocore names by the status: ``"500"``, ``"503"``).

        Scripted outcomes apply oldest first: ``fail(times=2, code="A")`` then
        ``fail(times=1, code="B")`` answers A, A, B.
        """
        reply: _Reply
        _check_status(status)
        if body is not None:
            raw = body.encode() if isinstance(body, str) else bytes(body)
            content_type = (
                "text/html; charset=utf-8" if raw.lstrip().startswith(b"<") else _JSON_CONTENT_TYPE
            )
            reply = _Reply(status, raw, str(status), content_type)
        else:
            if not code:
                raise ValueError("code must be an AWS error code such as AccessDeniedException")
            extra: dict[str, Any] = {}
            if code == "HumanLoopQuotaExceededException":
                extra.update(_HUMAN_LOOP_QUOTA_FIELDS)
            extra.update(_json_copy(fields or {}, "fields"))
            message = message or f"Scripted {code} from FakeRekognition"
            reply = _error_reply(code, message, status, extra)
        self._script(
            _Scripted(
                image=None if image is ANY else image_key(image),
                operation=_check_operation(operation),
                remaining=_check_times(times),
                reply=reply,
            )
        )

    def throttle(
        self,
        times: int = 1,
        *,
        then: Mapping[str, Any] | None = None,
        image: ImageKey | AnyImage = ANY,
        operation: Operation | None = None,
        status: int | None = None,
    ) -> None:
        """Throttle the next ``times`` calls (``ThrottlingException``, status
        :attr:`throttle_status` unless ``status``), then succeed: with ``then``
        for the one call after them if given (its operation taken from its
        keys unless ``operation``), else as scripted for the image or by default.
        With botocore's retries, ``times`` below the client's attempts is a call
        that succeeds after ``times`` retries."""
        _check_times(times)
        self.fail(
            image,
            "ThrottlingException",
            status=self._throttle_status if status is None else status,
            message="Rate exceeded",
            times=times,
            operation=operation,
        )
        if then is not None:
            op = _check_operation(operation) or _operation_of(then)
            self._script(
                _Scripted(
                    image=None if image is ANY else image_key(image),
                    operation=op,
                    remaining=1,
                    response=_json_copy(then, "then"),
                )
            )

    def _script(self, scripted: _Scripted) -> None:
        with self._lock:
            self._scripted.append(scripted)

    def reset(self) -> None:
        """Forget every scripted outcome and response, restore the default
        responses and clear :attr:`calls` (latency, tps and status stay)."""
        with self._lock:
            self._scripted.clear()
            self._responses.clear()
            self._defaults = {
                op: _json_copy(response, "default") for op, response in DEFAULT_RESPONSES.items()
            }
            self._calls.clear()
            self._window.clear()

    # --- inspection -----------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        """Every request answered so far, oldest first (a copy). A request cut
        short by :meth:`stop` gets no answer and is not recorded."""
        with self._lock:
            return list(self._calls)

    def call_count(self, operation: str | None = None) -> int:
        """How many requests were received (of ``operation`` only, if given),
        failed and throttled ones included."""
        with self._lock:
            return sum(1 for call in self._calls if operation in (None, call.operation))

    # --- serving (request threads) -------------------------------------------

    def _handle(self, headers: Mapping[str, str], raw_body: bytes) -> tuple[_Reply, str] | None:
        """The reply to one request and its request id, and records the call;
        None when :meth:`stop` came first."""
        timestamp = time.time()
        request_id = str(uuid.uuid4())
        target = headers.get("x-amz-target", "")
        operation_name = target.removeprefix(TARGET_PREFIX)
        recorded: Mapping[str, Any] = {}
        image: str | None = None
        sha256: str | None = None
        try:
            reply = self._check_transport(headers, target)
            if reply is None:
                request = self._parse(_check_target(target), raw_body)
                recorded, image = request.recorded, request.image
                if request.image_bytes is not None:
                    sha256 = request.image
                reply = self._decide(request)
        except _FakeError as error:
            reply = _error_reply(error.code, error.message, error.status)
        if self._latency and self._stopping.wait(self._latency):
            return None  # stop() during the wait: no answer, nothing recorded
        with self._lock:
            self._calls.append(
                RecordedCall(
                    operation=operation_name,
                    request=recorded,
                    image=image,
                    image_sha256=sha256,
                    timestamp=timestamp,
                    status=reply.status,
                    outcome=reply.outcome,
                    request_id=request_id,
                )
            )
        return reply, request_id

    @staticmethod
    def _check_transport(headers: Mapping[str, str], target: str) -> _Reply | None:
        authorization = headers.get("authorization", "")
        if not authorization:
            return _error_reply(
                "MissingAuthenticationTokenException", "Missing Authentication Token", 403
            )
        if not authorization.startswith("AWS4-HMAC-SHA256 ") or "Credential=" not in authorization:
            return _error_reply(
                "IncompleteSignatureException",
                "Authorization header requires a SigV4 (AWS4-HMAC-SHA256) signature",
                403,
            )
        return None

    def _parse(self, operation: Operation, raw_body: bytes) -> _Request:
        try:
            body = json.loads(raw_body or b"{}")
        except ValueError as exc:
            raise _FakeError("SerializationException", f"Request body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _FakeError("SerializationException", "Request body must be a JSON object")
        request = _Request(operation=operation, body=body, recorded=copy.deepcopy(body))
        image = body.get("Image")
        if not isinstance(image, dict):
            return request
        if "Bytes" in image:
            encoded = image["Bytes"]
            try:
                if not isinstance(encoded, str):
                    raise ValueError("not a string")
                data = base64.b64decode(encoded, validate=True)
            except (ValueError, binascii.Error) as exc:
                raise _FakeError(
                    "InvalidParameterException", f"Image.Bytes is not valid base64: {exc}"
                ) from exc
            request.image_bytes = data
            request.image = hashlib.sha256(data).hexdigest()
            recorded_image = {k: v for k, v in image.items() if k != "Bytes"}
            recorded_image.update({"Sha256": request.image, "Size": len(data)})
            request.recorded["Image"] = recorded_image
        elif isinstance(image.get("S3Object"), dict):
            s3 = image["S3Object"]
            if isinstance(s3.get("Bucket"), str) and isinstance(s3.get("Name"), str):
                request.image = _s3_key(s3)
        return request

    def _decide(self, request: _Request) -> _Reply:
        with self._lock:
            if self._over_tps():
                return _error_reply("ThrottlingException", "Rate exceeded", self._throttle_status)
            scripted = next(
                (s for s in self._scripted if s.matches(request.operation, request.image)), None
            )
            if scripted is not None and scripted.reply is not None:
                if scripted.remaining is not None:
                    scripted.remaining -= 1
                return scripted.reply
        _validate(request)  # outside the lock: it may look at megabytes
        with self._lock:
            if scripted is not None and scripted.response is not None and scripted.remaining:
                scripted.remaining -= 1
                response: Mapping[str, Any] = scripted.response
            else:
                response = self._responses.get(
                    (request.operation, request.image or ""), self._defaults[request.operation]
                )
            body = json.dumps(response).encode()
        return _Reply(200, body, OK)

    def _over_tps(self) -> bool:
        """Whether one more call now exceeds :attr:`tps`; if not, count it.
        Called with the lock held."""
        if self._tps is None:
            return False
        now = self._clock()
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        if len(self._window) >= self._tps:
            return True
        self._window.append(now)
        return False


def _check_target(target: str) -> Operation:
    for known in OPERATIONS:
        if target == TARGET_PREFIX + known:
            return known
    raise _FakeError(
        "UnknownOperationException",
        f"Unknown operation {target!r}: FakeRekognition serves "
        f"{', '.join(TARGET_PREFIX + op for op in OPERATIONS)}",
    )


def _validate(request: _Request) -> None:
    """What the service checks and botocore does not; raises :class:`_FakeError`."""
    body, operation = request.body, request.operation
    image = body.get("Image")
    if not isinstance(image, dict):
        raise _FakeError("InvalidParameterException", "Image is required and must be an object")
    if ("Bytes" in image) == ("S3Object" in image):
        raise _FakeError(
            "InvalidParameterException", "Image must have exactly one of Bytes and S3Object"
        )
    if operation == "DetectCustomLabels":
        arn = body.get("ProjectVersionArn")
        if not isinstance(arn, str) or not arn:
            raise _FakeError("InvalidParameterException", "ProjectVersionArn is required")
        max_results = body.get("MaxResults")
        if max_results is not None and (
            not isinstance(max_results, int) or isinstance(max_results, bool) or max_results < 0
        ):
            raise _FakeError(
                "InvalidParameterException", f"MaxResults must be >= 0, got {max_results!r}"
            )
    if "MinConfidence" in body:
        confidence = body["MinConfidence"]
        if not _is_number(confidence) or not 0 <= confidence <= 100:
            raise _FakeError(
                "InvalidParameterException",
                f"MinConfidence must be between 0 and 100, got {confidence!r}",
            )
    if "S3Object" in image:
        s3 = image["S3Object"]
        if not (
            isinstance(s3, dict)
            and isinstance(s3.get("Bucket"), str)
            and s3["Bucket"]
            and isinstance(s3.get("Name"), str)
            and s3["Name"]
        ):
            raise _FakeError(
                "InvalidParameterException", "Image.S3Object needs a Bucket and a Name"
            )
        return
    data = request.image_bytes or b""
    if not data:
        raise _FakeError("InvalidParameterException", "Image.Bytes must not be empty")
    limit = MAX_IMAGE_BYTES[operation]
    if len(data) > limit:
        raise _FakeError(
            "ImageTooLargeException",
            f"Image size {len(data)} bytes exceeds the {limit} bytes allowed for {operation}",
        )
    if not (data.startswith(_JPEG_MAGIC) or data.startswith(_PNG_MAGIC)):
        raise _FakeError(
            "InvalidImageFormatException", "Request has invalid image format: not a JPEG or PNG"
        )
    size = read_pixel_size(data)  # an unreadable header passes: the fake decodes nothing
    if size is not None:
        _check_pixels(operation, *size)


def _check_pixels(operation: Operation, width: int, height: int) -> None:
    """In the order the detectors check: the minimum side, the aspect ratio, the maximum."""
    limits = _PIXEL_LIMITS[operation]
    shorter, longer = sorted((width, height))
    too_long = limits.max_aspect_ratio is not None and longer > limits.max_aspect_ratio * shorter
    if shorter < limits.min_side or too_long:
        raise _FakeError(
            "InvalidParameterException",
            f"Image of {width}x{height} pixels is outside {limits.min_side} to "
            f"{limits.max_side} pixels a side"
            + (f" or over {limits.max_aspect_ratio:g}:1" if limits.max_aspect_ratio else ""),
        )
    if longer > limits.max_side:
        raise _FakeError(
            "ImageTooLargeException",
            f"Image of {width}x{height} pixels exceeds {limits.max_side} pixels a side",
        )


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections and request threads, so
    that stopping ends idle keep-alive connections and joins every thread
    (the standard class joins only non-daemon threads, and non-daemon threads
    would hold up interpreter exit if a test forgot to stop the fake)."""

    daemon_threads = True
    # socketserver's default backlog of 5 overflows when a client opens a
    # pool of connections at once; the kernel then drops the extra SYNs and
    # those connections start a whole second late (the SYN retransmit).
    request_queue_size = socket.SOMAXCONN

    def __init__(self, fake: FakeRekognition) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._request_threads: list[threading.Thread] = []
        self._tracking_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"FakeRekognition request from port {client_address[1]}",
            daemon=True,
        )
        with self._tracking_lock:
            self._connections.add(request)
            self._request_threads = [t for t in self._request_threads if t.is_alive()]
            self._request_threads.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._tracking_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.fake._stopping.is_set():
            return  # a connection cut by stop(): expected
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._tracking_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                connection.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        super().server_close()
        with self._tracking_lock:
            threads, self._request_threads = self._request_threads, []
        for thread in threads:
            thread.join()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as AWS; Content-Length always sent
    # Headers and body go out in two writes: without TCP_NODELAY the second
    # waits for the client's delayed ACK, adding about 40 ms to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        return "FakeRekognition"

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY_BYTES:
            self.close_connection = True
            reply = _error_reply("SerializationException", "Bad or too large Content-Length", 413)
            self._send(reply, str(uuid.uuid4()))
            return
        raw_body = self.rfile.read(length)
        headers = {key.lower(): value for key, value in self.headers.items()}
        answer = self.server.fake._handle(headers, raw_body)
        if answer is None:
            self.close_connection = True
            return
        self._send(*answer)

    def _send(self, reply: _Reply, request_id: str) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("x-amzn-RequestId", request_id)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`FakeRekognition.calls` instead of a log."""
