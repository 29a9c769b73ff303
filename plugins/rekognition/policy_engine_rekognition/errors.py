"""Turning boto3/botocore failures into :class:`~policy_engine.DetectorError`.

botocore is imported inside :func:`to_detector_error` only, which runs after
a client exists, so importing this module stays free of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policy_engine.errors import DetectorError

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


_START_MODEL = (
    "the model is not running: start it with `aws rekognition start-project-version "
    "--project-version-arn <project_version_arn> --min-inference-units 1`, wait until "
    "`aws rekognition describe-project-versions` shows it RUNNING, and stop it when "
    "done (a running model is billed per hour, idle or not)"
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
# Codes after which the attempt count is worth saying.
_THROTTLING_CODES = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException"})


def _error_kind(
    code: str, operation: str, http_status: int | None, adapter_arn: str | None = None
) -> AwsErrorKind:
    if code == "ResourceNotReadyException" and operation == "DetectCustomLabels":
        return AwsErrorKind(False, _START_MODEL)
    if code == "ResourceNotReadyException" and adapter_arn is None:
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
    exc: Any, *, detector: str, operation: str, image_name: str, adapter_arn: str | None = None
) -> DetectorError:
    response: Mapping[str, Any] = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    code = str(error.get("Code") or "UnknownError")
    aws_message = str(error.get("Message") or "").strip()
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    operation = getattr(exc, "operation_name", None) or operation
    kind = _error_kind(code, operation, status if isinstance(status, int) else None, adapter_arn)
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
    adapter_arn: str | None = None,
) -> DetectorError | None:
    """The :class:`DetectorError` for a boto3/botocore exception, or None when
    ``exc`` is not one (the caller re-raises it as it is)."""
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
            adapter_arn=adapter_arn,
        )

    prefix = f"{detector}: {operation} failed for image {image_name!r}"
    code: str
    retryable = False
    if isinstance(exc, aws.ReadTimeoutError | aws.ConnectTimeoutError):
        code, retryable = "timeout", True
        advice = "Rekognition did not answer in time; raise connect_timeout or read_timeout"
    elif isinstance(exc, aws.ConnectionError | aws.HTTPClientError):
        code, retryable = "connection-error", True
        advice = "could not reach Rekognition; check the network, proxy and endpoint_url"
    elif isinstance(exc, aws.NoCredentialsError | aws.PartialCredentialsError):
        code = "no-credentials"
        advice = (
            "no usable AWS credentials: set `profile` in the detector settings, or "
            "AWS_PROFILE, or the standard AWS credential environment variables, or "
            "run where an IAM role provides them"
        )
    elif isinstance(exc, aws.CredentialRetrievalError | aws.TokenRetrievalError | aws.SSOError):
        code = "no-credentials"
        advice = "the AWS credentials could not be obtained; for SSO, run `aws sso login`"
    elif isinstance(exc, aws.NoRegionError):
        code = "no-region"
        advice = (
            "no AWS region: set `region` in the detector settings, or AWS_REGION / "
            "AWS_DEFAULT_REGION, or a region in the AWS profile"
        )
    elif isinstance(exc, aws.ProfileNotFound):
        code = "profile-not-found"
        advice = "the AWS profile is not in the AWS config or credentials files"
    elif isinstance(exc, aws.ParamValidationError):
        code = "invalid-request"
        advice = "the request does not match the API; check the detector settings"
    elif isinstance(exc, aws.BotoCoreError):
        code = "aws-sdk-error"
        advice = ""
    else:
        return None
    message = f"{prefix}: {exc}"
    if advice:
        message += f"; {advice}"
    return DetectorError(redact(message), code=code, retryable=retryable)
