"""The scripting API: :class:`FakeRekognition`, what each image gets, and the calls it saw."""

from __future__ import annotations

import enum
import hashlib
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

from policy_engine_rekognition.testing.server import LOOPBACK, FakeServer
from policy_engine_rekognition.testing.validation import (
    JSON_CONTENT_TYPE,
    OK,
    OPERATIONS,
    TARGET_PREFIX,
    Operation,
    Reply,
    Request,
    RequestRefused,
    check_target,
    check_transport,
    error_reply,
    is_number,
    parse_request,
    validate,
)


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

# Placeholders for the extra fields of HumanLoopQuotaExceededException.
_HUMAN_LOOP_QUOTA_FIELDS: Final[Mapping[str, str]] = {
    "ResourceType": "HumanLoop",
    "QuotaCode": "L-FAKE0001",
    "ServiceCode": "sagemaker",
}
_SHA256_HEX: Final = re.compile(r"^[0-9a-fA-F]{64}$")


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
class _Scripted:
    """A scripted outcome: an error (``reply``) or a success (``response``)."""

    image: str | None  # None: any image
    operation: Operation | None  # None: either operation
    remaining: int | None  # None: forever
    reply: Reply | None = None
    response: Mapping[str, Any] | None = None

    def matches(self, operation: Operation, image: str | None) -> bool:
        if self.remaining == 0:
            return False
        if self.operation is not None and self.operation != operation:
            return False
        return self.image is None or self.image == image


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


class FakeRekognition:
    """An AWS JSON 1.1 Rekognition endpoint on ``127.0.0.1``, an ephemeral port.

    :param host: the address to listen on; loopback unless you mean otherwise
        (the fake accepts any credentials).
    :param port: the port (0: one the system chooses; see :attr:`endpoint_url`).
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
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        self._host, self._port = host, port
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
        self._server: FakeServer | None = None
        self._stopping = threading.Event()

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> FakeRekognition:
        """Listen on the host and port given (an ephemeral port of 127.0.0.1 by
        default) and serve from a background thread."""
        if self._server is not None:
            raise RuntimeError("FakeRekognition is already running")
        self._stopping.clear()
        self._server = FakeServer(self._handle, self._stopping, self._host, self._port).start()
        return self

    def stop(self) -> None:
        """Stop serving, close the port and every connection, and join every
        thread the fake started. Safe to call twice."""
        server = self._server
        if server is None:
            return
        self._stopping.set()  # cuts latency waits short
        server.stop()
        self._server = None

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
        return self._server.endpoint_url

    # --- settings -------------------------------------------------------------

    @property
    def latency(self) -> float:
        """Seconds every answer is delayed by (0: none)."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if not is_number(seconds) or not 0 <= seconds < float("inf"):
            raise ValueError(f"latency must be a number of seconds >= 0, got {seconds!r}")
        self._latency = float(seconds)

    @property
    def tps(self) -> float | None:
        """Calls allowed per sliding second across all threads (None: no limit)."""
        return self._tps

    @tps.setter
    def tps(self, limit: float | None) -> None:
        if limit is not None and (not is_number(limit) or not limit > 0):
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
        reply: Reply
        _check_status(status)
        if body is not None:
            raw = body.encode() if isinstance(body, str) else bytes(body)
            content_type = (
                "text/html; charset=utf-8" if raw.lstrip().startswith(b"<") else JSON_CONTENT_TYPE
            )
            reply = Reply(status, raw, str(status), content_type)
        else:
            if not code:
                raise ValueError("code must be an AWS error code such as AccessDeniedException")
            extra: dict[str, Any] = {}
            if code == "HumanLoopQuotaExceededException":
                extra.update(_HUMAN_LOOP_QUOTA_FIELDS)
            extra.update(_json_copy(fields or {}, "fields"))
            message = message or f"Scripted {code} from FakeRekognition"
            reply = error_reply(code, message, status, extra)
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

    def _handle(self, headers: Mapping[str, str], raw_body: bytes) -> tuple[Reply, str] | None:
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
            reply = check_transport(headers)
            if reply is None:
                request = parse_request(check_target(target), raw_body)
                recorded, image = request.recorded, request.image
                if request.image_bytes is not None:
                    sha256 = request.image
                reply = self._decide(request)
        except RequestRefused as error:
            reply = error_reply(error.code, error.message, error.status)
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

    def _decide(self, request: Request) -> Reply:
        with self._lock:
            if self._over_tps():
                return error_reply("ThrottlingException", "Rate exceeded", self._throttle_status)
            scripted = next(
                (s for s in self._scripted if s.matches(request.operation, request.image)), None
            )
            if scripted is not None and scripted.reply is not None:
                if scripted.remaining is not None:
                    scripted.remaining -= 1
                return scripted.reply
        validate(request)  # outside the lock: it may look at megabytes
        with self._lock:
            if scripted is not None and scripted.response is not None and scripted.remaining:
                scripted.remaining -= 1
                response: Mapping[str, Any] = scripted.response
            else:
                response = self._responses.get(
                    (request.operation, request.image or ""), self._defaults[request.operation]
                )
            body = json.dumps(response).encode()
        return Reply(200, body, OK)

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
