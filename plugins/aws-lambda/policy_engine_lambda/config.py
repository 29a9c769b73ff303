"""What the function does with each decision, from its environment variables.

``POLICY_FILE``
    The policy, or a policy set (``kind: policy-set``); a relative path is
    taken from ``LAMBDA_TASK_ROOT`` (the code root). Unset: ``policy.yaml``
    beside the handler.
``CONTEXT_FROM_METADATA``, ``CONTEXT_PREFIXES``
    With a policy set: where each object's context comes from, its user
    metadata ``x-amz-meta-<dimension>`` (default ``true``) and a JSON map of
    key prefixes to dimension values (see :mod:`policy_engine_lambda.context`).
``TAG_OBJECTS``
    Tag each object with ``moderation-decision`` and
    ``moderation-policy-digest``, and ``moderation-version-id`` (in a
    versioned bucket) or ``moderation-content-sha256`` (in an unversioned
    one), which take precedence over the object's
    own tags when S3's 10 do not hold them all (default ``true``).
``QUARANTINE_ON``
    Decisions whose objects are copied to quarantine, comma-separated
    (default ``block``; empty: none).
``QUARANTINE_BUCKET``, ``QUARANTINE_PREFIX``
    Where quarantined copies go: ``<prefix><key>`` (default: the object's own
    bucket, ``quarantine/``). A key too long for that (S3 takes 1,024 UTF-8
    bytes) goes to ``<prefix><sha256 of key><extension>`` (:func:`fitted_key`).
``DELETE_ORIGINAL``
    Delete a quarantined original, only once its copy exists, and in an
    unversioned bucket only while it still holds the bytes decided
    (default ``false``).
``RECORDS``
    Where decision records go: ``beside`` (``<key>.moderation.json``, the
    default), ``prefix`` or ``off``.
``RESULTS_BUCKET``, ``RESULTS_PREFIX``
    Where ``RECORDS=prefix`` writes ``<prefix><key>.moderation.json``
    (default: the object's own bucket, ``moderation-results/``).
``RECORDINGS_BUCKET``, ``RECORDINGS_PREFIX``
    Keep every raw detector response in ``s3://<bucket>/<prefix><image key>.json``
    and answer from there before calling a detector (the engine's ``cache`` and
    ``record``; default prefix ``recordings/``). Unset bucket: no recordings.
    Per container, so not a ``userArguments`` setting.

S3 Batch Operations jobs with invocation schema 2.0 may override the action
settings (not the policy) for one job through ``userArguments``, with the
same names (``{"QUARANTINE_ON": "block,review"}``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from policy_engine import Verdict

HERE = Path(__file__).resolve().parent
DEFAULT_POLICY = HERE / "policy.yaml"
RECORD_SUFFIX = ".moderation.json"
RECORD_MODES = ("beside", "prefix", "off")
DEFAULT_RECORDINGS_PREFIX = "recordings/"
ACTION_VARIABLES = (
    "TAG_OBJECTS",
    "QUARANTINE_ON",
    "QUARANTINE_BUCKET",
    "QUARANTINE_PREFIX",
    "DELETE_ORIGINAL",
    "RECORDS",
    "RESULTS_BUCKET",
    "RESULTS_PREFIX",
)
"""What a Batch Operations job's ``userArguments`` may override."""

FUNCTION_VARIABLES = (
    "POLICY_FILE",
    "CONTEXT_FROM_METADATA",
    "CONTEXT_PREFIXES",
    *ACTION_VARIABLES,
    "RECORDINGS_BUCKET",
    "RECORDINGS_PREFIX",
    "AUDIT_LOG",
    "SHADOW_POLICY_FILE",
    "DETECTOR_TIMEOUT",
    "FINAL_ATTEMPT_AFTER",
    "POWERTOOLS_METRICS_NAMESPACE",
)
"""Every environment variable the function reads (besides AWS's own and ``LOG_LEVEL``)."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class ConfigError(ValueError):
    """A setting that makes no sense; raised when the function starts."""


def flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r}: expected true or false")


def _verdicts(name: str, value: str) -> frozenset[Verdict]:
    found: set[Verdict] = set()
    for part in value.split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            found.add(Verdict(part))
        except ValueError:
            raise ConfigError(f"{name}={value!r}: {part!r} is not review or block") from None
    if Verdict.ALLOW in found:
        raise ConfigError(f"{name}={value!r}: an allowed image is never quarantined")
    return frozenset(found)


MAX_KEY_BYTES = 1024
"""S3's limit on a key, in UTF-8 bytes."""
MAX_PREFIX_BYTES = 512
"""The longest prefix the function takes: room is left for a hashed name
(:func:`fitted_key`) and the record suffix."""
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,16}\Z")


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def fitted_key(prefix: str, key: str, suffix: str = "") -> str:
    """``prefix + key + suffix``, the key of something the function writes
    about the object ``key``; when that is longer than S3's 1,024 UTF-8 bytes,
    ``prefix + sha256(key) + the key's extension + suffix`` instead (the copy's
    metadata and the record keep the original key)."""
    whole = prefix + key + suffix
    if _utf8_length(whole) <= MAX_KEY_BYTES:
        return whole
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    extension = _EXTENSION.search(key.rpartition("/")[2])
    return prefix + digest + (extension.group() if extension else "") + suffix


def _prefix(name: str, value: str) -> str:
    value = value.lstrip("/")
    if value and not value.endswith("/"):
        raise ConfigError(f"{name}={value!r}: a prefix must end with '/'")
    if _utf8_length(value) > MAX_PREFIX_BYTES:
        raise ConfigError(
            f"{name}: a prefix of {_utf8_length(value)} bytes is too long "
            f"(at most {MAX_PREFIX_BYTES}, so that the keys under it fit S3's {MAX_KEY_BYTES})"
        )
    return value


@dataclass(frozen=True, slots=True)
class ActionConfig:
    """What to do with a decision (see the module's table)."""

    tag: bool = True
    quarantine_on: frozenset[Verdict] = frozenset({Verdict.BLOCK})
    quarantine_bucket: str | None = None
    quarantine_prefix: str = "quarantine/"
    delete_original: bool = False
    records: str = "beside"
    results_bucket: str | None = None
    results_prefix: str = "moderation-results/"

    def __post_init__(self) -> None:
        if self.records not in RECORD_MODES:
            raise ConfigError(
                f"RECORDS={self.records!r}: expected one of {', '.join(RECORD_MODES)}"
            )
        if self.delete_original and not self.quarantine_on:
            raise ConfigError(
                "DELETE_ORIGINAL=true needs QUARANTINE_ON: an original is deleted only "
                "once its quarantined copy exists"
            )
        if self.quarantine_on and self.quarantine_bucket is None and not self.quarantine_prefix:
            raise ConfigError(
                "QUARANTINE_PREFIX is empty and QUARANTINE_BUCKET unset: the copy would "
                "overwrite the original; set one of them"
            )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ActionConfig:
        return cls().updated(os.environ if environ is None else environ)

    def updated(self, values: Mapping[str, object]) -> ActionConfig:
        """This configuration with the ``ACTION_VARIABLES`` among ``values`` applied;
        any other key is an error (a typo must never be ignored)."""
        changes: dict[str, object] = {}
        for name, raw in values.items():
            if name not in ACTION_VARIABLES:
                continue
            value = str(raw)
            if name == "TAG_OBJECTS":
                changes["tag"] = flag(name, value)
            elif name == "QUARANTINE_ON":
                changes["quarantine_on"] = _verdicts(name, value)
            elif name == "QUARANTINE_BUCKET":
                changes["quarantine_bucket"] = value.strip() or None
            elif name == "QUARANTINE_PREFIX":
                changes["quarantine_prefix"] = _prefix(name, value.strip())
            elif name == "DELETE_ORIGINAL":
                changes["delete_original"] = flag(name, value)
            elif name == "RECORDS":
                changes["records"] = value.strip().lower()
            elif name == "RESULTS_BUCKET":
                changes["results_bucket"] = value.strip() or None
            elif name == "RESULTS_PREFIX":
                changes["results_prefix"] = _prefix(name, value.strip())
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_user_arguments(self, arguments: Mapping[str, object]) -> ActionConfig:
        unknown = sorted(str(name) for name in arguments if name not in ACTION_VARIABLES)
        if unknown:
            raise ConfigError(
                f"userArguments: unknown {', '.join(unknown)} "
                f"(known: {', '.join(ACTION_VARIABLES)})"
            )
        return self.updated(arguments)


def policy_path(environ: Mapping[str, str] | None = None) -> Path:
    """``POLICY_FILE``, relative to ``LAMBDA_TASK_ROOT`` (else the working
    directory), or the policy shipped beside the handler."""
    env = os.environ if environ is None else environ
    return _task_path(env.get("POLICY_FILE", ""), env) or DEFAULT_POLICY


def shadow_policy_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """``SHADOW_POLICY_FILE``: a candidate policy evaluated beside the active one
    on the same labels and logged where they disagree (never enforced)."""
    env = os.environ if environ is None else environ
    return _task_path(env.get("SHADOW_POLICY_FILE", ""), env)


def audit_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """``AUDIT_LOG``: ``stdout`` (the default; CloudWatch keeps it) or ``off``."""
    env = os.environ if environ is None else environ
    value = env.get("AUDIT_LOG", "stdout").strip().lower() or "stdout"
    if value not in ("stdout", "off"):
        raise ValueError(f"AUDIT_LOG must be 'stdout' or 'off', got {value!r}")
    return value == "stdout"


DEFAULT_DETECTOR_TIMEOUT = 40.0
"""Below the template's 60-second function timeout: a hanging detector fails
with code ``timeout`` (retried, as a throttle is) before Lambda ends the
whole invocation."""


def detector_timeout(environ: Mapping[str, str] | None = None) -> float:
    """``DETECTOR_TIMEOUT``: seconds one detector call may take (see
    :data:`DEFAULT_DETECTOR_TIMEOUT`); keep it below the function's timeout."""
    return _seconds(environ, "DETECTOR_TIMEOUT", DEFAULT_DETECTOR_TIMEOUT, zero=False)


def _seconds(environ: Mapping[str, str] | None, name: str, default: float, *, zero: bool) -> float:
    """A number of seconds from the environment variable ``name`` (``default``
    when unset or blank); finite, and positive (or, with ``zero``, >= 0)."""
    env = os.environ if environ is None else environ
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and (value >= 0 if zero else value > 0)):
        wanted = "a number of seconds >= 0" if zero else "a positive number of seconds"
        raise ConfigError(f"{name} must be {wanted}, got {text!r}")
    return value


DEFAULT_FINAL_ATTEMPT_AFTER = 900.0
"""Lambda retries a failed S3 notification about 1 and 3 minutes after the
first attempt: an event 15 minutes old has waited (throttled) or been
retried, and its attempt is the final one."""


def final_attempt_after(environ: Mapping[str, str] | None = None) -> float:
    """``FINAL_ATTEMPT_AFTER``: the age in seconds (from the S3 event's
    ``eventTime``) from which an attempt is the final one, where a detector
    failure that a retry might fix is decided by the policy's ``on_error``
    instead of waiting for a retry (see :data:`DEFAULT_FINAL_ATTEMPT_AFTER`;
    0: every attempt). Events re-driven from the failed-events queue are
    final whatever their age."""
    return _seconds(environ, "FINAL_ATTEMPT_AFTER", DEFAULT_FINAL_ATTEMPT_AFTER, zero=True)


def _task_path(value: str, env: Mapping[str, str]) -> Path | None:
    if not value.strip():
        return None
    path = Path(value.strip())
    if not path.is_absolute():
        path = Path(env.get("LAMBDA_TASK_ROOT") or os.getcwd()) / path
    return path


@dataclass(frozen=True, slots=True)
class RecordingsLocation:
    """Where the function keeps raw detector responses (``RECORDINGS_*``)."""

    bucket: str
    prefix: str = DEFAULT_RECORDINGS_PREFIX

    def holds(self, bucket: str, key: str) -> bool:
        """Whether ``s3://bucket/key`` is one of the recordings."""
        return bucket == self.bucket and key.startswith(self.prefix) and key.endswith(".json")


def recordings_location(environ: Mapping[str, str] | None = None) -> RecordingsLocation | None:
    """``RECORDINGS_BUCKET`` and ``RECORDINGS_PREFIX``, or None when no bucket is set."""
    env = os.environ if environ is None else environ
    bucket = env.get("RECORDINGS_BUCKET", "").strip()
    raw_prefix = env.get("RECORDINGS_PREFIX")
    prefix = (
        DEFAULT_RECORDINGS_PREFIX
        if raw_prefix is None
        else _prefix("RECORDINGS_PREFIX", raw_prefix.strip())
    )
    if not bucket:
        return None
    return RecordingsLocation(bucket, prefix)
