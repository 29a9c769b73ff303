"""The library's log lines carry structured fields (``extra=``) under one
``policy_engine`` attribute, so a JSON log formatter writes them."""

from __future__ import annotations

import ast
import functools
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from test_moderator import STRICT, CachableDetector, Exploding, moderator_for, write

from policy_engine.audit import AuditLog
from policy_engine.log_fields import LOG_FIELD

PACKAGE = Path(__file__).resolve().parent.parent / "policy_engine"
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}


class JsonFormatter(logging.Formatter):
    """What a JSON log formatter does with a record: its message and its extras."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"message": record.getMessage(), **getattr(record, LOG_FIELD, {})})


@functools.cache
def parsed() -> tuple[tuple[Path, ast.Module], ...]:
    paths = sorted(PACKAGE.rglob("*.py"))
    return tuple((path, ast.parse(path.read_text(encoding="utf-8"))) for path in paths)


def calls() -> Iterator[tuple[Path, ast.Call]]:
    """Every call in the library's source, with its file."""
    for path, tree in parsed():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                yield path, node


def fields_of(caplog: pytest.LogCaptureFixture, event: str) -> dict[str, Any]:
    (found,) = [
        json.loads(JsonFormatter().format(r))
        for r in caplog.records
        if getattr(r, LOG_FIELD, {}).get("event") == event
    ]
    return found


def test_every_log_call_of_the_library_passes_fields() -> None:
    missing, checked = [], 0
    for path, node in calls():
        if (
            isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "logger"
            and node.func.attr in LOG_METHODS
        ):
            checked += 1
            if not any(k.arg == "extra" for k in node.keywords):
                missing.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert missing == []
    assert checked >= 15  # the walk found the library's log calls


def test_a_decision_is_logged_at_debug_with_what_metrics_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    moderator = moderator_for(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="policy_engine.moderator"):
        moderator.check(b"explode", name="upload-1?X-Amz-Signature=abc")

    found = fields_of(caplog, "decision-made")
    assert found["decision"] == "review"
    assert (found["policy"], found["policy_digest"]) == ("lenient", moderator.policy_digest)
    assert (found["calls"], found["cache_hits"], found["route"]) == (1, 0, None)
    assert [(d["detector"], d["error_code"]) for d in found["detectors"]] == [
        ("counting", "unavailable")
    ]
    assert "abc" not in found["input"]  # redacted, as in the message


def test_shadow_disagreements_hook_failures_and_reloads_carry_fields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    candidate = write(tmp_path / "candidate.yaml", STRICT)
    moderator = moderator_for(tmp_path, shadow=candidate, plugins=[Exploding()])
    with caplog.at_level(logging.INFO, logger="policy_engine"):
        moderator.check(b"x", name="u-1")
        moderator.reload(write(tmp_path / "broken.yaml", "version: 1\nname: nodetectors\n"))
        moderator.reload(shadow=None)

    shadow = fields_of(caplog, "shadow-disagreement")
    assert (shadow["decision"], shadow["shadow_decision"]) == ("review", "block")
    assert (shadow["policy"], shadow["shadow_policy"], shadow["input"]) == (
        "lenient",
        "strict",
        "u-1",
    )
    hook = fields_of(caplog, "hook-failed")
    assert (hook["error_type"], hook["input"]) == ("RuntimeError", "u-1")
    failed = fields_of(caplog, "reload-failed")
    assert (failed["error_type"], failed["policy_digest"]) == (
        "PolicyLoadError",
        moderator.policy_digest,
    )
    assert failed["error_code"] is not None
    reloaded = fields_of(caplog, "policy-reloaded")
    assert reloaded["policy_digest"] == moderator.policy_digest == reloaded["previous_digest"]


class FailingStore:
    def lookup(self, key: str, detector: str, settings: str) -> Mapping[str, Any] | None:
        return None

    def record(self, key: str, detector: str, settings: str, response: Mapping[str, Any]) -> None:
        raise OSError(28, "No space left on device")


def test_a_response_not_recorded_and_an_audit_line_not_written_carry_fields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    audit.close()
    moderator = moderator_for(
        tmp_path, detector=CachableDetector(), record=FailingStore(), audit_log=audit
    )
    with caplog.at_level(logging.WARNING, logger="policy_engine"):
        assert moderator.check(b"fight").verdict == "block"

    unrecorded = fields_of(caplog, "response-not-recorded")
    assert (unrecorded["detector"], unrecorded["error_type"]) == ("counting", "OSError")
    unwritten = fields_of(caplog, "audit-line-not-written")
    assert (unwritten["decision"], unwritten["failures"]) == ("block", 1)


def test_every_log_event_is_named_in_the_readme() -> None:
    events = {
        node.args[0].value
        for _, node in calls()
        if isinstance(node.func, ast.Name)
        and node.func.id == "fields"
        and isinstance(node.args[0], ast.Constant)
    }
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**Structured logs.**") :]
    assert len(events) >= 15
    assert [e for e in sorted(events) if f"`{e}`" not in section] == []
