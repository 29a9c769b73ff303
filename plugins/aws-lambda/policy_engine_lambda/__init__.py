"""policy-engine on AWS Lambda: moderate S3 uploads as they arrive (S3 event
notifications) and whole buckets as backfills (S3 Batch Operations).

The entry point is :func:`policy_engine_lambda.handler.handler`. It is no
policy-engine plugin (it registers no detector); it uses the installed ones.
"""

from __future__ import annotations

# The distribution's one version: plugins/aws-lambda/pyproject.toml reads it (dynamic version).
__version__ = "0.1.0"
