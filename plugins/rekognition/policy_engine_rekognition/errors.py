"""Turning boto3/botocore failures into :class:`~policy_engine.DetectorError`.

botocore is imported inside the functions that map its errors, which run
only once boto3 is in use, so importing this module stays free of it;
:func:`region_doubt` reads botocore's endpoint data without importing it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from policy_engine import DetectorError

# AWS access key ids never belong in a message; secrets never reach one, as we
# only quote AWS's own error text and botocore's exception text.
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA|ABIA|ACCA)[A-Z0-9]{12,}\b")


def redact(text: str) -> str:
    return _ACCESS_KEY_ID.sub("[redacted access key id]", text)


@dataclass(frozen=True, slots=True)
class AwsErrorKind:
    """What a service error code means for the user: may the same call succeed
    later, and what to do about it."""

    retryable: bool
    advice: str


def _arn_region(arn: str) -> str | None:
    """The region field of ``arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE``."""
    fields = arn.split(":", 5)
    if len(fields) != 6 or fields[0] != "arn" or not fields[3]:
        return None
    return fields[3]


def _version_name(project_version_arn: str) -> str | None:
    """VERSION in ``...:project/PROJECT/version/VERSION/CREATED``."""
    _, found, after = project_version_arn.partition("/version/")
    name = after.split("/", 1)[0]
    return name if found and name else None


def _start_model_advice(project_version_arn: str | None) -> str:
    """How to start a Custom Labels model that is not running, with the AWS CLI
    commands filled in as far as ``project_version_arn`` allows. The project's
    ARN ends in its own creation time, which the version's ARN does not hold:
    it stays a placeholder, with where to find it."""
    arn = project_version_arn or "<project_version_arn>"
    version = (project_version_arn and _version_name(project_version_arn)) or "<version_name>"
    region = project_version_arn and _arn_region(project_version_arn)
    # The model is in its ARN's region, whatever the AWS CLI's default region is.
    in_region = f" --region {region}" if region else ""
    return (
        "the model is not running: start it with `aws rekognition "
        f"start-project-version --project-version-arn {arn} --min-inference-units 1"
        f"{in_region}`, wait until it runs with `aws rekognition wait project-version-running "
        f"--project-arn <project_arn> --version-names {version}{in_region}` (<project_arn>: "
        f"the model's project, listed by `aws rekognition describe-projects{in_region}`), "
        "and stop it when done with `aws rekognition stop-project-version "
        f"--project-version-arn {arn}{in_region}` (a running model is billed per hour, "
        "idle or not)"
    )


# API_FACTS.md's error table; retryable as AWS documents it.
AWS_ERRORS: Mapping[str, AwsErrorKind] = {
    "ThrottlingException": AwsErrorKind(
        True,
        "Rekognition is throttling this account; lower the request rate (`policy-engine "
        "check --rate`) or ask AWS for a higher quota",
    ),
    "ProvisionedThroughputExceededException": AwsErrorKind(
        True,
        "the account's transactions-per-second quota for this region was exceeded; "
        "lower the request rate or ask AWS for a higher quota",
    ),
    "InternalServerError": AwsErrorKind(True, "Rekognition had an internal error; try again later"),
    "LimitExceededException": AwsErrorKind(
        False, "an Amazon Rekognition service limit was exceeded for this account"
    ),
    "InvalidImageFormatException": AwsErrorKind(
        False, "Rekognition could not decode the image; send a valid JPEG or PNG"
    ),
    "ImageTooLargeException": AwsErrorKind(
        False, "the image is too large for Rekognition, in bytes or in pixels; resize it"
    ),
    "InvalidParameterException": AwsErrorKind(
        False,
        "Rekognition rejected a request parameter; check the detector settings and "
        "that the image's dimensions are within the operation's limits",
    ),
    "InvalidS3ObjectException": AwsErrorKind(
        False,
        "Rekognition could not read the S3 object: check that it exists, that the bucket is "
        "in the region Rekognition is called in, and that the AWS identity in use may "
        "s3:GetObject it (Rekognition reads it with the caller's permissions)",
    ),
    "AccessDeniedException": AwsErrorKind(
        False,
        "the AWS identity in use may not call this operation (or use this model or "
        "adapter); grant it the rekognition permission named in the operation",
    ),
    "ResourceNotFoundException": AwsErrorKind(
        False,
        "the model version or adapter ARN in the detector settings does not exist in "
        "this account and region",
    ),
    "ResourceNotReadyException": AwsErrorKind(
        False,
        "the Custom Moderation adapter named in adapter_arn is not ready for use yet "
        "(still training, or its training failed)",
    ),
    "HumanLoopQuotaExceededException": AwsErrorKind(
        False, "the Amazon Augmented AI human-loop quota was exceeded"
    ),
}

# Outside the table, but common enough to deserve advice.
_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
        "InvalidClientTokenId",
    }
)
_CREDENTIAL_ADVICE = (
    "the AWS credentials in use were rejected; check the profile or environment "
    "credentials, and refresh them if they expired"
)


_NOT_READY_WITHOUT_ADAPTER = (
    "Rekognition says a resource is not ready, although the base moderation model needs "
    "no starting; try again later, and contact AWS support if it persists"
)
_CONNECTION_ADVICE = "could not reach Rekognition; check the network, proxy and endpoint_url"
_REGION_SOURCES = "the `region` setting, AWS_REGION, AWS_DEFAULT_REGION or the profile's region"


def _names_region(endpoint_url: str | None, region: str) -> bool:
    """Whether ``endpoint_url`` is one botocore built from ``region``, as it
    does without an endpoint_url: AWS's endpoints name the region as a host
    label (rekognition.REGION.amazonaws.com, rekognition-fips.REGION...,
    rekognition.REGION.api.aws), a local fake or a proxy does not."""
    if not endpoint_url:
        return False
    host = urlsplit(endpoint_url).hostname or ""
    return region.lower() in host.split(".")


@functools.cache
def _known_rekognition_regions() -> frozenset[str]:
    """Every region botocore's endpoint data lists for Rekognition, in any
    partition (aws, aws-cn, aws-us-gov...): what ``get_available_regions``
    answers, read from botocore's data file without importing botocore, as a
    policy's ``region`` is checked when the policy loads (``validate`` never
    imports botocore); through a botocore session where that file is not
    found."""
    data = _botocore_endpoint_data()
    if data is None:
        import botocore.session

        session = botocore.session.Session()
        return frozenset(
            region
            for partition in session.get_available_partitions()
            for region in session.get_available_regions("rekognition", partition_name=partition)
        )
    return frozenset(
        region
        for partition in data["partitions"]
        for region in partition["services"].get("rekognition", {}).get("endpoints", {})
        if region in partition["regions"]
    )


def _botocore_endpoint_data() -> Any:
    """botocore's ``data/endpoints.json`` (or ``.json.gz``), found without importing
    botocore; None where it is not there."""
    import gzip
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.find_spec("botocore")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "data"
    try:
        plain = folder / "endpoints.json"
        if plain.is_file():
            return json.loads(plain.read_text(encoding="utf-8"))
        packed = folder / "endpoints.json.gz"
        if packed.is_file():
            return json.loads(gzip.decompress(packed.read_bytes()).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return None


def _typo_distance(typed: str, meant: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) from ``typed`` to
    ``meant``: optimal string alignment, so that us-esat-1 is one edit from
    us-east-1 (difflib's ratio prefers us-west-1)."""
    previous: list[int] = []
    row = list(range(len(meant) + 1))
    for i, typed_char in enumerate(typed, 1):
        before, previous, row = previous, row, [i] + [0] * len(meant)
        for j, meant_char in enumerate(meant, 1):
            row[j] = min(
                previous[j] + 1,
                row[j - 1] + 1,
                previous[j - 1] + (typed_char != meant_char),
            )
            if i > 1 and j > 1 and typed_char == meant[j - 2] and typed[i - 2] == meant_char:
                row[j] = min(row[j], before[j - 2] + 1)
    return row[-1]


# More edits than this and a guess is more likely wrong than helpful.
_MAX_TYPO_EDITS = 2


def _nearest(region: str, known: frozenset[str]) -> list[str]:
    """The known regions fewest edits from ``region`` (at most 3 of them), if
    few enough edits to be a typo."""
    distances = {candidate: _typo_distance(region, candidate) for candidate in known}
    best = min(distances.values())
    if best > _MAX_TYPO_EDITS:
        return []
    return sorted(candidate for candidate, distance in distances.items() if distance == best)[:3]


def region_doubt(region: str) -> str | None:
    """Why ``region`` looks mistyped (``not a Rekognition region botocore knows (did
    you mean us-east-1?)``), or None where botocore knows it or its data cannot
    be read. Only a doubt, never a refusal: botocore learns of new regions
    only when upgraded."""
    try:
        known = _known_rekognition_regions()
    except Exception:  # botocore's data is only a hint here: never hide an error for it
        return None
    if not known or region.lower() in known:
        return None
    doubt = "not a Rekognition region botocore knows"
    guesses = _nearest(region.lower(), known)
    if guesses:
        doubt += f" (did you mean {' or '.join(guesses)}?)"
    return doubt


def _regional_endpoint_advice(region: str) -> str:
    """Advice when AWS's endpoint for ``region`` cannot be reached: a mistyped
    region gives a host name that does not exist. An unknown region is not
    refused outright: botocore learns of new regions only when upgraded."""
    doubt = region_doubt(region)
    return (
        f"could not reach Rekognition in region {region}{', ' + doubt if doubt else ''}; "
        f"check the region ({_REGION_SOURCES}), the network, proxy and endpoint_url"
    )


# Codes after which the attempt count is worth saying.
_THROTTLING_CODES = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException"})


def _error_kind(
    code: str, operation: str, http_status: int | None, model_arn: str | None = None
) -> AwsErrorKind:
    if code == "ResourceNotReadyException" and operation == "DetectCustomLabels":
        return AwsErrorKind(False, _start_model_advice(model_arn))
    if code == "ResourceNotReadyException" and model_arn is None:
        return AwsErrorKind(False, _NOT_READY_WITHOUT_ADAPTER)
    known = AWS_ERRORS.get(code)
    if known is not None:
        return known
    if code in _CREDENTIAL_CODES:
        return AwsErrorKind(False, _CREDENTIAL_ADVICE)
    # botocore names an empty or HTML 5xx body by its status ("500", "503").
    server_side = http_status is not None and http_status >= 500
    return AwsErrorKind(server_side, "try again later" if server_side else "")


def _quota_details(response: Mapping[str, Any]) -> str:
    # HumanLoopQuotaExceededException carries these beside (or inside) Error.
    error = response.get("Error", {})
    parts = [
        f"{key} {value}"
        for key in ("ResourceType", "QuotaCode", "ServiceCode")
        if (value := response.get(key) or error.get(key))
    ]
    return f" ({', '.join(parts)})" if parts else ""


def _attempts(response: Mapping[str, Any]) -> str:
    """``" after 3 attempts"``, from the retries botocore reports making; ``""``
    when it reports none (a stubbed client)."""
    retries = response.get("ResponseMetadata", {}).get("RetryAttempts")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        return ""
    attempts = retries + 1
    return f" after {attempts} attempt{'s' if attempts != 1 else ''}"


def _client_error(
    exc: Any, *, detector: str, operation: str, image_name: str, model_arn: str | None = None
) -> DetectorError:
    response: Mapping[str, Any] = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    code = str(error.get("Code") or "UnknownError")
    aws_message = str(error.get("Message") or "").strip()
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    operation = getattr(exc, "operation_name", None) or operation
    kind = _error_kind(code, operation, status if isinstance(status, int) else None, model_arn)
    message = f"{detector}: {operation} failed for image {image_name!r}: {code}"
    if aws_message:
        message += f" ({aws_message})"
    if code in _THROTTLING_CODES:
        message += f", throttled{_attempts(response)}"
    if code == "HumanLoopQuotaExceededException":
        message += _quota_details(response)
    if kind.advice:
        message += f"; {kind.advice}"
    return DetectorError(redact(message), code=code, retryable=kind.retryable)


def to_detector_error(
    exc: BaseException,
    *,
    detector: str,
    operation: str,
    image_name: str,
    model_arn: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> DetectorError | None:
    """The :class:`DetectorError` for a boto3/botocore exception, or None when
    ``exc`` is not one (the caller re-raises it as it is).

    ``model_arn`` is the adapter or project version the call named (None: the
    base moderation model).
    ``region`` and ``endpoint_url`` are where the client sent the call, for
    the advice after a failed connection."""
    if isinstance(exc, DetectorError):
        return exc
    try:
        from botocore import exceptions as aws
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return None

    if isinstance(exc, aws.ClientError):
        return _client_error(
            exc,
            detector=detector,
            operation=operation,
            image_name=image_name,
            model_arn=model_arn,
        )

    prefix = f"{detector}: {operation} failed for image {image_name!r}"
    failure = sdk_failure(exc, region=region, endpoint_url=endpoint_url)
    if failure is None:
        return None
    code, advice, retryable, sent = failure
    message = f"{prefix}: {exc}"
    if advice:
        message += f"; {advice}"
    return DetectorError(redact(message), code=code, retryable=retryable, sent=sent)


NO_CREDENTIALS_ADVICE = (
    "no usable AWS credentials: set `profile` in the detector settings, or "
    "AWS_PROFILE, or the standard AWS credential environment variables, or "
    "run where an IAM role provides them"
)
NO_REGION_ADVICE = (
    "no AWS region: set `region` in the detector settings, or AWS_REGION / "
    "AWS_DEFAULT_REGION, or a region in the AWS profile"
)


class SdkFailure(NamedTuple):
    """What a botocore exception (other than a service's answer) means."""

    code: str
    advice: str
    retryable: bool = False
    sent: bool = True
    """False when botocore gave up before the request left the machine."""


def sdk_failure(
    exc: BaseException, *, region: str | None = None, endpoint_url: str | None = None
) -> SdkFailure | None:
    """The code, advice, retryability and whether the request was sent, for a
    botocore exception that is not a service error; None for any other
    exception. A connection that could not be made sent nothing (when every
    attempt failed so: an earlier attempt that was sent and throttled is not
    told apart)."""
    from botocore import exceptions as aws

    if isinstance(exc, aws.ReadTimeoutError | aws.ConnectTimeoutError):
        advice = "Rekognition did not answer in time; raise connect_timeout or read_timeout"
        # a connection never made sent nothing
        return SdkFailure("timeout", advice, True, not isinstance(exc, aws.ConnectTimeoutError))
    if (
        isinstance(exc, aws.EndpointConnectionError)
        and region
        and _names_region(endpoint_url, region)
    ):
        return SdkFailure("connection-error", _regional_endpoint_advice(region), True, False)
    if isinstance(exc, aws.EndpointConnectionError | aws.ProxyConnectionError):
        return SdkFailure("connection-error", _CONNECTION_ADVICE, True, False)
    if isinstance(exc, aws.ConnectionError | aws.HTTPClientError):
        return SdkFailure("connection-error", _CONNECTION_ADVICE, True)
    if isinstance(exc, aws.NoCredentialsError | aws.PartialCredentialsError):
        return SdkFailure("no-credentials", NO_CREDENTIALS_ADVICE, sent=False)
    if isinstance(exc, aws.CredentialRetrievalError | aws.TokenRetrievalError | aws.SSOError):
        advice = "the AWS credentials could not be obtained; for SSO, run `aws sso login`"
        return SdkFailure("no-credentials", advice, sent=False)
    if isinstance(exc, aws.NoRegionError):
        return SdkFailure("no-region", NO_REGION_ADVICE, sent=False)
    if isinstance(exc, aws.ProfileNotFound):
        advice = "the AWS profile is not in the AWS config or credentials files"
        return SdkFailure("profile-not-found", advice, sent=False)
    if isinstance(exc, aws.ParamValidationError):
        advice = "the request does not match the API; check the detector settings"
        return SdkFailure("invalid-request", advice, sent=False)
    if isinstance(exc, aws.BotoCoreError):
        return SdkFailure("aws-sdk-error", "")
    return None
