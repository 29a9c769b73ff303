"""Environment values that keep a test away from a real AWS account."""

from __future__ import annotations

import os
from typing import Final

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
