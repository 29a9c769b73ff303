"""The function's logs and metrics, through AWS Lambda Powertools.

Logs: one JSON object a line on stdout (CloudWatch keeps it), by Powertools'
``Logger`` (service ``policy-engine``), for the function's own logger and the
engine's and the Rekognition plugin's. Each line of an invocation carries the
Lambda request id (``function_request_id``); each line about an object, its
``bucket``, ``key`` and ``version_id``. Events and settings are never logged.

Metrics: CloudWatch embedded metric format (EMF) on stdout, by Powertools'
``single_metric``, in the namespace ``POWERTOOLS_METRICS_NAMESPACE``
(default ``PolicyEngine``), all with the dimension ``service``, counted over one
invocation and written once at its end:

* ``Decisions``, by ``verdict`` (a decision made or reused);
* ``DetectorErrors``, by ``code`` (a stable error code);
* ``QuarantineCopies`` (a quarantined copy made);
* ``Failures``, by ``status`` (``TemporaryFailure``, ``PermanentFailure``).

Bookkeeping never decides enforcement: a metric that cannot be written is a
warning in the log, never a failed object or invocation.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from policy_engine_lambda.events import ObjectRef
from policy_engine_lambda.moderate import Outcome, Status

SERVICE = "policy-engine"
DEFAULT_NAMESPACE = "PolicyEngine"
NAMESPACE_VARIABLE = "POWERTOOLS_METRICS_NAMESPACE"
LOGGED = ("policy_engine_lambda", "policy_engine", "policy_engine_rekognition")
"""The loggers whose records the Powertools logger formats."""

LOG = logging.getLogger("policy_engine_lambda")

Dimensions = tuple[tuple[str, str], ...]


class _Stdout(io.StringIO):
    """sys.stdout as it is when a line is written, not when the logger was made."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


_logger: Logger | None = None


def logger() -> Logger:
    """The Powertools logger, made and given to :data:`LOGGED` on first use;
    its level is ``LOG_LEVEL`` (default INFO)."""
    global _logger
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    if _logger is None:
        _logger = Logger(service=SERVICE, level=level, stream=_Stdout())
        for name in LOGGED:
            logging.getLogger(name)  # registered, so that its configuration is copied
        copy_config_to_registered_loggers(source_logger=_logger, include=set(LOGGED))
    elif _logger.log_level != logging.getLevelName(level):
        _logger.setLevel(level)
        for name in LOGGED:
            logging.getLogger(name).setLevel(level)
    return _logger


@contextmanager
def invocation(request_id: str | None) -> Iterator[None]:
    """Every line logged within carries the invocation's request id."""
    with logger().append_context_keys(function_request_id=request_id):
        yield


@contextmanager
def about(ref: ObjectRef) -> Iterator[None]:
    """Every line logged within names the object."""
    with logger().append_context_keys(bucket=ref.bucket, key=ref.key, version_id=ref.version_id):
        yield


def namespace() -> str:
    return os.environ.get(NAMESPACE_VARIABLE, "").strip() or DEFAULT_NAMESPACE


@dataclass(slots=True)
class Tally:
    """The metrics of one invocation, counted per object and written once."""

    counts: Counter[tuple[str, Dimensions]] = field(default_factory=Counter)

    def count(self, outcome: Outcome) -> None:
        if outcome.decision is not None:
            self.counts["Decisions", (("verdict", outcome.decision),)] += 1
        for code in outcome.detector_errors:
            self.counts["DetectorErrors", (("code", code),)] += 1
        if outcome.quarantined:
            self.counts["QuarantineCopies", ()] += 1
        if outcome.status is not Status.SUCCEEDED:
            self.counts["Failures", (("status", outcome.status.value),)] += 1

    def emit(self) -> None:
        """Write the metrics counted as EMF lines; never raises."""
        try:
            where = namespace()
            for (name, dimensions), value in sorted(self.counts.items()):
                with single_metric(
                    name=name,
                    unit=MetricUnit.Count,
                    value=value,
                    namespace=where,
                    default_dimensions={"service": SERVICE},
                ) as metric:
                    for dimension, dimension_value in dimensions:
                        metric.add_dimension(name=dimension, value=dimension_value)
        except Exception as exc:
            LOG.warning("metrics not written: %s: %s", type(exc).__name__, exc)
        finally:
            self.counts.clear()
