"""The built-in JSON Lines audit log: what each line holds, and what it never holds."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from pathlib import Path
from typing import Any, ClassVar

from policy_engine import (
    AuditLog,
    DetectContext,
    Detector,
    DetectorError,
    DetectorResult,
    Image,
    Label,
    Moderator,
    parse_policy,
)
from policy_engine.audit import AUDIT_FORMAT, audit_record, model_versions
from policy_engine.compiler import compile_policy
from policy_engine.decision import DetectorFailure
from policy_engine.events import DecisionEvent
from policy_engine.plugins import DetectorRegistry, RegisteredDetector, make_plugin_manager

ROOT = Path(__file__).resolve().parent.parent
POLICY = (
    "version: 1\nname: audited\ndetectors: {seeing: {}}\n"
    "rules:\n  - id: violence\n    match: {name: Violence}\n    review_at: 50\n    block_at: 90\n"
)
CANDIDATE = POLICY.replace("name: audited", "name: candidate").replace(
    "block_at: 90", "block_at: 55"
)

# Distinctive image content: if any form of it reaches the log, the scan finds it.
PIXELS = b"\x89PNG\r\n\x1a\n" + b"PIXEL-DATA-4f1c-" * 64 + bytes(range(256))


class SeeingDetector(Detector):
    """Violence at 60, a model version in its metadata; fails for b'explode'."""

    name: ClassVar[str] = "seeing"

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        if image.data == b"explode":
            raise DetectorError("throttled", code="ThrottlingException", retryable=True)
        label = Label("Violence", 60.0, self.name, model_version="7.0")
        return DetectorResult(
            self.name, (label,), metadata={"model_version": "7.0", "request_id": "r-1"}
        )


def moderator_for(tmp_path: Path, audit: Any, **options: Any) -> Moderator:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    return Moderator.from_policy_file(
        policy,
        registry=DetectorRegistry([RegisteredDetector(SeeingDetector(), "test")]),
        plugin_manager=make_plugin_manager(load_entry_points=False),
        audit_log=audit,
        **options,
    )


def lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_each_decision_is_one_line_with_what_an_audit_needs(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    moderator = moderator_for(tmp_path, log)
    decision = moderator.check(PIXELS, context={"upload_id": "u-42", "user": 7}, name="u-42")
    moderator.check(b"explode")
    moderator.close()

    first, second = lines(log)
    assert set(first) == {
        "format",
        "time",
        "input",
        "key",
        "context",
        "policy",
        "detectors",
        "decision",
        "reasons",
        "errors",
    }
    assert first["format"] == AUDIT_FORMAT
    assert first["time"].endswith("Z")
    assert first["input"] == "u-42"
    assert first["key"] == hashlib.sha256(PIXELS).hexdigest()
    assert first["context"] == {"upload_id": "u-42", "user": 7}
    assert first["policy"] == {"name": "audited", "digest": decision.policy_digest}
    assert first["detectors"] == {"seeing": {"model_version": "7.0"}}
    assert first["decision"] == "review"
    assert first["reasons"] == [r.to_dict() for r in decision.reasons()]
    assert first["reasons"][0]["rule"] == "violence"
    assert first["errors"] == []
    assert "shadow" not in first

    assert second["decision"] == "review"
    assert second["errors"] == [
        {"source": "seeing", "error": "throttled", "code": "ThrottlingException", "retryable": True}
    ]
    assert second["reasons"][0]["rule"] == "on_error"


def test_the_log_never_holds_image_bytes_nor_secrets(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    moderator = moderator_for(tmp_path, log)
    secret = "AKIA-not-a-real-key-9f8e7d"
    moderator.check(
        PIXELS,
        context={
            "upload_id": "u-1",
            "thumbnail": PIXELS,  # a careless caller
            "nested": {"Authorization": f"Bearer {secret}", "raw": bytearray(PIXELS)},
            "password": secret,
            "api_key": secret,
            "object": object(),
        },
    )
    moderator.check(Image("by-name", PIXELS))
    moderator.close()

    raw = log.read_bytes()
    text = raw.decode("utf-8")
    forms = {
        "raw bytes": PIXELS,
        "a distinctive slice": b"PIXEL-DATA-4f1c-",
        "base64": base64.b64encode(PIXELS),
        "base64 of a slice": base64.b64encode(PIXELS[8:200])[:40],
        "urlsafe base64": base64.urlsafe_b64encode(PIXELS),
        "hex": PIXELS.hex().encode(),
        "a secret": secret.encode(),
    }
    for what, form in forms.items():
        assert form not in raw, f"the audit log holds the image's {what}"
    assert "PIXEL-DATA" not in json.dumps([json.loads(line) for line in text.splitlines()])
    context = lines(log)[0]["context"]
    assert context["thumbnail"] == f"<{len(PIXELS)} bytes omitted>"
    assert context["nested"] == {
        "Authorization": "<redacted>",
        "raw": f"<{len(PIXELS)} bytes omitted>",
    }
    assert context["password"] == context["api_key"] == "<redacted>"
    assert context["object"] == "<object omitted>"
    assert "request_id" not in text  # detector metadata other than model versions stays out


def test_the_shadow_decision_is_on_the_same_line(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(CANDIDATE, encoding="utf-8")
    moderator = moderator_for(tmp_path, log, shadow=candidate)
    moderator.check(b"image")
    moderator.close()

    (line,) = lines(log)
    assert line["decision"] == "review"
    shadow = line["shadow"]
    assert shadow["decision"] == "block"
    assert shadow["agrees"] is False
    assert shadow["policy"]["name"] == "candidate"
    assert shadow["policy"]["digest"] == moderator.serving.shadow_digest
    assert shadow["reasons"][0]["threshold"] == 55
    assert shadow["errors"] == []


def test_lines_from_many_threads_are_whole(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    moderator = moderator_for(tmp_path, log)

    def upload(thread: int) -> None:
        for index in range(40):
            moderator.check(f"{thread}-{index}".encode(), context={"upload_id": "x" * 3000})

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    moderator.close()

    found = lines(log)
    assert len(found) == 12 * 40
    assert len({line["key"] for line in found}) == 12 * 40


def test_a_path_is_appended_to_and_a_stream_is_left_open(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text('{"earlier": true}\n', encoding="utf-8")
    with moderator_for(tmp_path, log) as moderator:
        moderator.check(b"one")
    assert len(lines(log)) == 2

    text, binary = io.StringIO(), io.BytesIO()
    for stream in (text, binary):
        moderator = moderator_for(tmp_path, stream)
        moderator.check(b"one")
        moderator.close()
    assert not text.closed and not binary.closed
    assert json.loads(text.getvalue())["decision"] == "review"
    assert json.loads(binary.getvalue())["decision"] == "review"


def test_an_audit_log_given_is_shared_and_left_to_its_owner(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    with AuditLog(log) as audit:
        first = moderator_for(tmp_path, audit)
        first.check(b"one")
        first.close()  # does not close a log it was given
        audit.policy_engine_decision_made(
            DecisionEvent("2024-01-01T00:00:00.000Z", "direct", "k", first.check(b"two"))
        )
        assert audit.lines == 3  # two checks and one direct call
    assert len(lines(log)) == 3


def test_model_versions_include_replayed_detectors() -> None:
    registry = DetectorRegistry([RegisteredDetector(SeeingDetector(), "test")])
    compiled = compile_policy(parse_policy(POLICY, registry=registry), registry)
    decision = compiled.evaluate(
        [Label("Violence", 97.0, "rekognition-moderation", model_version="7.0")],
        [DetectorFailure("custom", "down")],
        {
            "stub": {
                "recording": "abc.json",
                "replayed": ("rekognition-moderation",),
                "rekognition-moderation": {"model_version": "7.0", "content_types": []},
            },
            "custom": {"project_version_arn": "arn:aws:rekognition:...:project/x/version/1"},
        },
    )
    assert model_versions(decision) == {
        "custom": {"project_version_arn": "arn:aws:rekognition:...:project/x/version/1"},
        "rekognition-moderation": {"model_version": "7.0"},
        "stub": {},
    }
    record = audit_record(DecisionEvent("t", "in", "k", decision))
    assert record["errors"][0]["source"] == "custom"
    assert json.loads(json.dumps(record)) == record
