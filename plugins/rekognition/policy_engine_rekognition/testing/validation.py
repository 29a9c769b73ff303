"""Request validation: what the fake reads from a request, and what it refuses.

Pure functions over headers and bodies; no state, no I/O. A refused request
raises :class:`RequestRefused`, which the scripting layer turns into the
error reply the service would send.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from policy_engine_rekognition.images import (
    CUSTOM_LABELS_LIMITS,
    MODERATION_LIMITS,
    ImageLimits,
    read_pixel_size,
)

Operation = Literal["DetectModerationLabels", "DetectCustomLabels"]
"""The operations the fake serves (the ``X-Amz-Target`` is ``RekognitionService.<Operation>``)."""

OPERATIONS: Final[tuple[Operation, ...]] = get_args(Operation)
TARGET_PREFIX: Final = "RekognitionService."

# The service's limits on Image.Bytes (decoded), per operation.
MAX_IMAGE_BYTES: Final[Mapping[Operation, int]] = {
    "DetectModerationLabels": 5_242_880,
    "DetectCustomLabels": 4_194_304,
}
JSON_CONTENT_TYPE: Final = "application/x-amz-json-1.1"
OK: Final = "ok"

_JPEG_MAGIC: Final = b"\xff\xd8\xff"
_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
_PIXEL_LIMITS: Final[Mapping[Operation, ImageLimits]] = {
    "DetectModerationLabels": MODERATION_LIMITS,
    "DetectCustomLabels": CUSTOM_LABELS_LIMITS,
}


@dataclass(slots=True)
class Reply:
    """An answer as it goes on the wire."""

    status: int
    body: bytes
    outcome: str
    """``"ok"``, or the error code (what :attr:`RecordedCall.outcome` says)."""
    content_type: str = JSON_CONTENT_TYPE


@dataclass(slots=True)
class Request:
    """A request to one of :data:`OPERATIONS`, as far as it could be read."""

    operation: Operation
    body: Mapping[str, Any]
    image_bytes: bytes | None = None
    image: str | None = None
    """The image's key: the hex sha256 of ``Image.Bytes``, or the ``s3://`` URI."""
    recorded: dict[str, Any] = field(default_factory=dict)
    """The body as :attr:`RecordedCall.request` keeps it (no image bytes)."""


class RequestRefused(Exception):
    """The service would refuse the request with this error."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def error_reply(
    code: str, message: str, status: int, fields: Mapping[str, Any] | None = None
) -> Reply:
    """An AWS JSON 1.1 error: ``{"__type": code, "Message": message, ...fields}``."""
    body = {"__type": code, "Message": message, **(fields or {})}
    return Reply(status, json.dumps(body).encode(), code)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def s3_key(s3: Mapping[str, Any]) -> str:
    """``s3://bucket/name``, with ``?versionId=V`` when the request names a version."""
    key = f"s3://{s3['Bucket']}/{s3['Name']}"
    if s3.get("Version"):
        key += f"?versionId={s3['Version']}"
    return key


def check_transport(headers: Mapping[str, str]) -> Reply | None:
    """The 403 for a request that is not SigV4-signed (any credentials pass);
    None when it is. ``headers`` have lower-case names."""
    authorization = headers.get("authorization", "")
    if not authorization:
        return error_reply(
            "MissingAuthenticationTokenException", "Missing Authentication Token", 403
        )
    if not authorization.startswith("AWS4-HMAC-SHA256 ") or "Credential=" not in authorization:
        return error_reply(
            "IncompleteSignatureException",
            "Authorization header requires a SigV4 (AWS4-HMAC-SHA256) signature",
            403,
        )
    return None


def check_target(target: str) -> Operation:
    """The operation an ``X-Amz-Target`` names, if the fake serves it."""
    for known in OPERATIONS:
        if target == TARGET_PREFIX + known:
            return known
    raise RequestRefused(
        "UnknownOperationException",
        f"Unknown operation {target!r}: FakeRekognition serves "
        f"{', '.join(TARGET_PREFIX + op for op in OPERATIONS)}",
    )


def parse_request(operation: Operation, raw_body: bytes) -> Request:
    """The body read as JSON and its image identified; refuses only what cannot
    be read at all (the service's checks come later, in :func:`validate`)."""
    try:
        body = json.loads(raw_body or b"{}")
    except ValueError as exc:
        raise RequestRefused("SerializationException", f"Request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise RequestRefused("SerializationException", "Request body must be a JSON object")
    request = Request(operation=operation, body=body, recorded=copy.deepcopy(body))
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
            raise RequestRefused(
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
            request.image = s3_key(s3)
    return request


def validate(request: Request) -> None:
    """What the service checks and botocore does not; raises :class:`RequestRefused`."""
    body, operation = request.body, request.operation
    image = body.get("Image")
    if not isinstance(image, dict):
        raise RequestRefused("InvalidParameterException", "Image is required and must be an object")
    if ("Bytes" in image) == ("S3Object" in image):
        raise RequestRefused(
            "InvalidParameterException", "Image must have exactly one of Bytes and S3Object"
        )
    if operation == "DetectCustomLabels":
        arn = body.get("ProjectVersionArn")
        if not isinstance(arn, str) or not arn:
            raise RequestRefused("InvalidParameterException", "ProjectVersionArn is required")
        max_results = body.get("MaxResults")
        if max_results is not None and (
            not isinstance(max_results, int) or isinstance(max_results, bool) or max_results < 0
        ):
            raise RequestRefused(
                "InvalidParameterException", f"MaxResults must be >= 0, got {max_results!r}"
            )
    if "MinConfidence" in body:
        confidence = body["MinConfidence"]
        if not is_number(confidence) or not 0 <= confidence <= 100:
            raise RequestRefused(
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
            raise RequestRefused(
                "InvalidParameterException", "Image.S3Object needs a Bucket and a Name"
            )
        return
    data = request.image_bytes or b""
    if not data:
        raise RequestRefused("InvalidParameterException", "Image.Bytes must not be empty")
    limit = MAX_IMAGE_BYTES[operation]
    if len(data) > limit:
        raise RequestRefused(
            "ImageTooLargeException",
            f"Image size {len(data)} bytes exceeds the {limit} bytes allowed for {operation}",
        )
    if not (data.startswith(_JPEG_MAGIC) or data.startswith(_PNG_MAGIC)):
        raise RequestRefused(
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
        raise RequestRefused(
            "InvalidParameterException",
            f"Image of {width}x{height} pixels is outside {limits.min_side} to "
            f"{limits.max_side} pixels a side"
            + (f" or over {limits.max_aspect_ratio:g}:1" if limits.max_aspect_ratio else ""),
        )
    if longer > limits.max_side:
        raise RequestRefused(
            "ImageTooLargeException",
            f"Image of {width}x{height} pixels exceeds {limits.max_side} pixels a side",
        )
