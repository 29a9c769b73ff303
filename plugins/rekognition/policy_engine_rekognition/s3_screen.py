"""Screening an S3 object before Rekognition reads it (the ``screen_s3``
setting): an animated PNG whose default image is not part of its animation
shows browsers the animation and Rekognition only the default image, which
can be a decoy. Bytes sent with the request are checked where they are
prepared (:mod:`.images`); an object Rekognition reads from S3 itself is
checked here, from its first bytes (one ranged GetObject of the version the
request names), never downloaded whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy_engine import DetectorError
from policy_engine.image import AMBIGUOUS, HIDDEN, PNG_SIGNATURE, SHOWN, DefaultImageScan
from policy_engine_rekognition.errors import sdk_failure
from policy_engine_rekognition.s3_inputs import S3Location, s3_error

SCREEN_S3_SETTING: Mapping[str, Mapping[str, Any]] = {
    "screen_s3": {
        "type": "boolean",
        "default": True,
        "description": "Before sending an S3 object, read its first bytes (one ranged "
        "GetObject, more only for a PNG with long metadata) and refuse an animated PNG "
        "whose default image is not part of its animation (a decoy: browsers show the "
        "animation, Rekognition only the default image), code hidden-default-image. "
        "Unset: true.",
    }
}

FIRST_READ = 64 * 1024
"""Bytes read first: every chunk before the first IDAT of a usual PNG."""
MORE_READS = 16
"""Chunks read one by one after the first read, for a PNG whose metadata
before its first IDAT runs longer (large ICC profiles, XMP)."""
CHUNK_READ = 8 + 26
"""Bytes of each such read: a chunk's header and the most of its data the
scan needs (an fcTL's 26 bytes)."""


def screen_s3_object(s3: Any, location: S3Location, *, name: str, detector: str) -> None:
    """Raise :class:`DetectorError` (``hidden-default-image``) when the object
    at ``location`` is an animated PNG hiding its default image, or a PNG whose
    first image data is not found within the reads allowed (it may hide one:
    refused, never sent); ``s3-screen-failed`` when the object cannot be read.
    Anything else is left to Rekognition."""
    first = _read(s3, location, 0, FIRST_READ - 1, name=name, detector=detector)
    if not first.startswith(PNG_SIGNATURE):
        return
    scan = DefaultImageScan().read(first, 0)
    reads = 0
    while scan.verdict is None and len(first) == FIRST_READ and reads < MORE_READS:
        last = scan.next_chunk + CHUNK_READ - 1
        piece = _read(s3, location, scan.next_chunk, last, name=name, detector=detector)
        before = scan
        scan = scan.read(piece, scan.next_chunk)
        if scan == before:
            return  # the file ends before an IDAT: not a PNG Rekognition can read
        reads += 1
    if scan.verdict is None and len(first) < FIRST_READ:
        return  # the whole file was read and holds no IDAT: Rekognition refuses it
    if scan.verdict == SHOWN:
        return
    why = {
        HIDDEN: "is an animated PNG whose default image is not part of its animation: "
        "browsers show the animation, while Rekognition would read only the default image",
        AMBIGUOUS: "is an animated PNG whose animation chunks are malformed, so decoders "
        "disagree on what it shows, and Rekognition may read a decoy",
    }.get(
        scan.verdict or "",
        f"is a PNG whose first image data was not found in {MORE_READS + 1} reads, "
        "so it may hide its default image from browsers",
    )
    raise DetectorError(
        f"{detector} refuses S3 object {name!r}: it {why}; send its first shown frame "
        "as bytes (a local file with `convert: true`) to check it",
        code="hidden-default-image",
        sent=False,
    )


def _read(
    s3: Any, location: S3Location, first: int, last: int, *, name: str, detector: str
) -> bytes:
    version = {"VersionId": location.version} if location.version is not None else {}
    try:
        answer = s3.get_object(
            Bucket=location.bucket, Key=location.key, Range=f"bytes={first}-{last}", **version
        )
        body = answer["Body"]
        try:
            return bytes(body.read(last - first + 1))
        finally:
            body.close()
    except Exception as exc:
        if _code(exc) == "InvalidRange":  # an empty object, or a range past its end
            return b""
        mapped = s3_error(exc, location, location.uri, listing=False)
        if mapped is None:
            raise
        raise DetectorError(
            f"{detector} cannot screen S3 object {name!r} before sending it: {mapped}",
            code="s3-screen-failed",
            retryable=_transient(exc),  # S3 busy or unreachable: try again, as a call would
            sent=False,
        ) from exc


def _transient(exc: BaseException) -> bool:
    failure = sdk_failure(exc)  # timeouts and connections, as for a Rekognition call
    if failure is not None:
        return failure.retryable
    response = getattr(exc, "response", None)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") if response else None
    return (isinstance(status, int) and status >= 500) or _code(exc) == "RequestTimeout"


def _code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code is not None else None
