"""``s3://`` inputs: parsing S3 URIs, and listing them for ``policy-engine check``.

A URI names a bucket and a key, percent-encoded where the key has characters
a URI cannot hold as they are (``%``, ``?``, ``#``, spaces and other control
characters); ``+`` is a plus and non-ASCII letters may be written as they
are (``s3://photos/caf%C3%A9 2+1.jpg`` and ``s3://photos/café%202+1.jpg``
name the same key). ``?versionId=V`` names one version of the object.

The images :func:`expand_s3_input` yields carry no bytes: the detectors send
them to Rekognition as ``Image.S3Object`` and Rekognition reads them itself.
boto3 is imported only when a listing starts.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from policy_engine import DetectorError, Image
from policy_engine_rekognition import __version__

if TYPE_CHECKING:
    from policy_engine_rekognition.client import ClientSettings

SCHEME = "s3"
LIST_PAGE_SIZE = 1000
"""Keys per ListObjectsV2 page (S3's maximum): one page is in memory at a time."""

# Rekognition's S3Bucket shape: 3-255 of these (S3 itself allows fewer today,
# but older us-east-1 buckets may have capitals and underscores).
_BUCKET = re.compile(r"^[0-9A-Za-z._-]{3,255}$")
_MAX_KEY_BYTES = 1024
# What a key must have percent-encoded to survive the trip through a URI.
_ENCODE = re.compile(r"[%?#\x00-\x20\x7f]")
# What urlsplit would silently drop (tabs, newlines) or strip (spaces at the ends).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]|^ | $")


class S3InputError(ValueError):
    """An ``s3://`` input that is malformed or cannot be listed or read."""


@dataclass(frozen=True, slots=True)
class S3Location:
    """A bucket and a key (decoded), and optionally an object version. An
    empty key, or one ending in ``/``, is a prefix (only listings take it)."""

    bucket: str
    key: str
    version: str | None = None

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    @property
    def uri(self) -> str:
        """The URI that :func:`parse_s3_uri` turns back into this location."""
        uri = f"s3://{self.bucket}/{_encode_key(self.key)}"
        if self.version is not None:
            uri += f"?versionId={quote(self.version, safe='')}"
        return uri

    def s3_object(self) -> dict[str, str]:
        """Rekognition's ``Image.S3Object``."""
        s3_object = {"Bucket": self.bucket, "Name": self.key}
        if self.version is not None:
            s3_object["Version"] = self.version
        return s3_object


def _encode_key(key: str) -> str:
    return _ENCODE.sub(lambda match: quote(match.group(), safe=""), key)


def parse_s3_uri(uri: str, *, prefix_allowed: bool = False) -> S3Location:
    """The bucket, decoded key and version of ``uri``; :class:`S3InputError`
    saying what is wrong unless it is ``s3://bucket/key[?versionId=V]`` (or,
    with ``prefix_allowed``, ``s3://bucket[/prefix/]``)."""
    if not isinstance(uri, str):
        raise S3InputError(f"an S3 URI must be a string, got {type(uri).__name__}")
    if _CONTROL.search(uri):
        raise S3InputError(
            f"{uri!r} has a control character or a space at an end: percent-encode it (%09, %20)"
        )
    if uri[:5].lower() != "s3://":
        raise S3InputError(f"{uri!r} is not an s3:// URI (expected s3://bucket/key)")
    try:
        parts = urlsplit(uri)
        key = unquote(parts.path.removeprefix("/"), errors="strict")
        version = _version(uri, parts.query)
    except ValueError as exc:  # UnicodeDecodeError included: bad %-encoded UTF-8
        if isinstance(exc, S3InputError):
            raise
        raise S3InputError(f"{uri!r} is not a valid URI: {exc}") from exc
    expected = "s3://bucket/prefix/ or s3://bucket/key" if prefix_allowed else "s3://bucket/key"
    bucket = parts.netloc
    if not bucket:
        raise S3InputError(f"{uri!r} names no bucket (expected {expected})")
    if not _BUCKET.match(bucket):
        raise S3InputError(
            f"{uri!r}: {bucket!r} is not a valid bucket name (3 to 255 letters, digits, "
            "'.', '-' or '_'; no user, port or percent-encoding)"
        )
    if parts.fragment or uri.endswith("#"):
        raise S3InputError(f"{uri!r} has a '#' fragment: percent-encode '#' in a key as %23")
    if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
        raise S3InputError(f"{uri!r}: the key is over S3's {_MAX_KEY_BYTES} bytes")
    location = S3Location(bucket, key, version)
    if location.is_prefix and (version is not None or not prefix_allowed):
        raise S3InputError(
            f"{uri!r} names a folder (prefix), not an object (expected s3://bucket/key"
            + ("?versionId=V)" if version is not None else ")")
        )
    return location


def _version(uri: str, query: str) -> str | None:
    if not query and not uri.endswith("?"):
        return None
    fields: dict[str, str] = {}
    for part in query.split("&"):
        name, equals, value = part.partition("=")
        if name != "versionId" or not equals or name in fields:
            raise S3InputError(
                f"{uri!r}: the only query an S3 URI takes is ?versionId=<version id> "
                "(percent-encode '?' in a key as %3F)"
            )
        fields[name] = unquote(value, errors="strict")
    version = fields["versionId"]
    if not version or len(version) > 1024:
        raise S3InputError(f"{uri!r}: versionId must be 1 to 1024 characters")
    return version


# --- listing ------------------------------------------------------------------------


def expand_s3_input(
    spec: str, *, client: Any = None, page_size: int = LIST_PAGE_SIZE
) -> Iterator[Image] | None:
    """The images an ``s3://`` input names, or None for any other input.

    * ``s3://bucket/prefix/`` (or ``s3://bucket``): every ``.jpg``, ``.jpeg``
      and ``.png`` key under the prefix, at any depth, in S3's order;
    * ``s3://bucket/key``: that object (whatever its suffix) and, if ``key``
      is also a folder, the images under ``key/``; an error if neither exists;
    * ``s3://bucket/key?versionId=V``: that version (HeadObject).

    Listed lazily with the ListObjectsV2 paginator, ``page_size`` keys a page,
    so that a prefix of any size is never in memory at once. A malformed URI
    raises :class:`S3InputError` now; an S3 failure (missing bucket, access
    denied, no credentials) raises it from the iteration. ``client`` replaces
    the S3 client built from the standard chain (tests).
    """
    if not isinstance(spec, str) or urlsplit(spec).scheme.lower() != SCHEME:
        return None
    location = parse_s3_uri(spec, prefix_allowed=True)
    return _images(location, spec, client, page_size)


def _images(location: S3Location, spec: str, client: Any, page_size: int) -> Iterator[Image]:
    try:
        s3 = client if client is not None else build_s3_client()
        if location.version is not None:
            yield _head(s3, location)
        else:
            yield from _listed(s3, location, page_size)
    except S3InputError:
        raise
    except Exception as exc:
        mapped = s3_error(exc, location, spec)
        if mapped is None:
            raise
        raise mapped from exc


def _listed(s3: Any, location: S3Location, page_size: int) -> Iterator[Image]:
    exact = None if location.is_prefix else location.key
    folder = location.key if exact is None else exact + "/"
    found = False
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=location.bucket,
        Prefix=location.key,
        PaginationConfig={"PageSize": page_size},
    )
    for page in pages:
        for entry in page.get("Contents", ()):
            key = entry["Key"]
            # every object, whatever its name: an upload stored as "upload-17" or
            # "x.gif" is checked (Rekognition refuses what it cannot read, and
            # on_error decides), never skipped in silence; "folder/" markers are no objects
            if key == exact or (key.startswith(folder) and not key.endswith("/")):
                found = True
                yield _image(S3Location(location.bucket, key), entry.get("Size"), entry.get("ETag"))
    if exact is not None and not found:
        raise S3InputError(
            f"no object s3://{location.bucket}/{_encode_key(exact)} "
            f"(and no images under s3://{location.bucket}/{_encode_key(folder)})"
        )


def _head(s3: Any, location: S3Location, name: str | None = None) -> Image:
    """The object (HeadObject; that version, if ``location`` names one) as an
    image known by URI, size and ETag; on a versioned bucket, a location
    without a version gets the current version id in its URI."""
    version = {"VersionId": location.version} if location.version is not None else {}
    head = s3.head_object(Bucket=location.bucket, Key=location.key, **version)
    version_id = head.get("VersionId")
    # "null": an object stored before versioning was enabled; not pinned
    if location.version is None and isinstance(version_id, str) and version_id not in ("", "null"):
        location = S3Location(location.bucket, location.key, version_id)
    return _image(location, head.get("ContentLength"), head.get("ETag"), name)


def _image(location: S3Location, size: object, etag: object, name: str | None = None) -> Image:
    uri = location.uri
    return Image(
        name=name if name is not None else uri,
        uri=uri,
        size=size if isinstance(size, int) else None,
        version=etag if isinstance(etag, str) and etag else None,
    )


def identify_s3_image(image: Image, s3: Any) -> Image:
    """``image``, known by its ``s3://`` URI only, with what identifies its
    bytes (HeadObject): its ETag as ``version``, its size, and, on a versioned
    bucket, the current version id in its URI, so that Rekognition is sent
    that version and no later one. An image whose URI names a version and
    that has an ETag already is returned as it is (a version never changes).
    Its ``name`` is kept. Raises :class:`S3InputError` when the object cannot
    be read, or the URI is not an S3 object's.

    On a bucket without versioning nothing pins the bytes Rekognition will
    read: the object may be swapped between this HeadObject and that read,
    and swapped back, so that an answer for other bytes would be kept under
    this ETag. Such an image comes back without ``version`` (unidentified):
    it is checked every time, never answered from a cache nor recorded."""
    if image.uri is None:
        raise S3InputError(f"image {image.name!r} has no s3:// URI")
    location = parse_s3_uri(image.uri)
    if location.version is not None and image.version is not None:
        return image
    try:
        found = _head(s3, location, image.name)
    except Exception as exc:
        mapped = s3_error(exc, location, image.uri, listing=False)
        if mapped is None:
            raise
        raise mapped from exc
    if found.uri is None or parse_s3_uri(found.uri).version is None:
        return dataclasses.replace(found, version=None)  # no version: nothing pins the bytes
    return found


def build_s3_client(settings: ClientSettings | None = None) -> Any:
    """An S3 client from boto3's standard chain (AWS_PROFILE, AWS_DEFAULT_REGION,
    AWS_ENDPOINT_URL_S3, the config files) plus AWS_REGION, which boto3
    ignores. Given a detector's client ``settings``, with their profile,
    region, timeouts and pool: the identity and region Rekognition reads the
    object with (never their ``endpoint_url``, which is Rekognition's)."""
    import botocore.config

    from policy_engine_rekognition.client import ClientSettings, aws_sessions

    chosen = settings if settings is not None else ClientSettings()
    session, _ = aws_sessions(ClientSettings(profile=chosen.profile, region=chosen.region))
    options: dict[str, Any] = {"user_agent_extra": f"policy-engine-rekognition/{__version__}"}
    if settings is not None:
        options["max_pool_connections"] = settings.max_pool_connections
        if settings.connect_timeout is not None:
            options["connect_timeout"] = settings.connect_timeout
        if settings.read_timeout is not None:
            options["read_timeout"] = settings.read_timeout
    return session.client("s3", config=botocore.config.Config(**options))


_NOT_FOUND = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NotFound"})
_DENIED = frozenset({"403", "AccessDenied", "AllAccessDisabled", "Forbidden"})
_BAD_CREDENTIALS = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
)


def s3_error(
    exc: BaseException, location: S3Location, spec: str, *, listing: bool | None = None
) -> S3InputError | None:
    """A clear :class:`S3InputError` for a boto3 failure; None for other
    exceptions. ``listing``: whether ``spec`` was being listed (by default,
    unless it names a version) rather than read (HeadObject)."""
    from botocore import exceptions as aws

    from policy_engine_rekognition.errors import redact

    if listing is None:
        listing = location.version is None
    action = f"listing {spec}" if listing else f"reading {spec}"
    if isinstance(exc, aws.NoCredentialsError | aws.PartialCredentialsError):
        return S3InputError(
            f"no AWS credentials for {action}: set AWS_PROFILE or the standard AWS "
            "credential environment variables, or run where an IAM role provides them"
        )
    if isinstance(exc, aws.NoRegionError):
        return S3InputError(f"no AWS region for {action}: set AWS_REGION or AWS_DEFAULT_REGION")
    if isinstance(exc, DetectorError):  # building the client
        return S3InputError(f"{action}: {exc}")
    if isinstance(exc, aws.ClientError):
        response: Mapping[str, Any] = getattr(exc, "response", None) or {}
        error = response.get("Error", {})
        code = str(error.get("Code") or "UnknownError")
        aws_message = str(error.get("Message") or "").strip()
        detail = f"{code}" + (f": {aws_message}" if aws_message else "")
        if code == "NoSuchBucket":
            advice = f"S3 bucket {location.bucket!r} does not exist ({detail})"
        elif code in _DENIED:
            permission = (
                f"s3:ListBucket on arn:aws:s3:::{location.bucket}"
                if listing
                else f"s3:GetObject and s3:GetObjectVersion on arn:aws:s3:::{location.bucket}/*"
            )
            advice = (
                f"access denied {action} ({detail}): the AWS identity in use needs {permission}"
            )
        elif code in _NOT_FOUND:
            advice = f"no such object {spec} ({detail})"
        elif code in _BAD_CREDENTIALS:
            advice = f"the AWS credentials were rejected {action} ({detail}); refresh them"
        else:
            advice = f"S3 failed {action} ({detail})"
        return S3InputError(redact(advice))
    if isinstance(exc, aws.BotoCoreError):
        return S3InputError(redact(f"S3 failed {action}: {exc}"))
    return None
