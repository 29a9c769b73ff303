"""The built-in JSON Lines audit log: what each line holds, and what it never holds."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import logging
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# -- secrets, in every shape a caller may hand them over -----------------------------------

SECRET = "ZqvMaterialWxyZ"  # no hex digit, so no digest in the line can contain it
AKIA = "AKIAZQVXWYPRSTUKMNPQ"


def event_with(context: Any, *, name: str = "upload.png") -> DecisionEvent:
    registry = DetectorRegistry([RegisteredDetector(SeeingDetector(), "test")])
    decision = compile_policy(parse_policy(POLICY, registry=registry), registry).evaluate(
        [Label("Violence", 60.0, "seeing", model_version="7.0")], [], {}
    )
    return DecisionEvent("2024-01-01T00:00:00.000Z", name, "k" * 64, decision, context)


def logged(context: Any, **options: Any) -> bytes:
    stream = io.BytesIO()
    AuditLog(stream, **options).write(event_with(context))
    return stream.getvalue()


SECRET_SHAPES: dict[str, Any] = {
    "header pairs": [("Authorization", f"Bearer {SECRET}"), ("Accept", "image/png")],
    "header pairs as lists": [["X-Api-Key", SECRET]],
    "a flat name, value list": ["set-cookie", f"id={SECRET}", "user", "bob"],
    "nested in lists": {"list": [["auth", SECRET], ("pwd", SECRET), [{"cookie": SECRET}]]},
    "keys": {
        "bearer": SECRET,
        "jwt": SECRET,
        "Set-Cookie": SECRET,
        "x-api-key": SECRET,
        "refreshToken": SECRET,
        "client_secret": SECRET,
        "sessionId": SECRET,
        "aws_credentials": {"id": AKIA, "key": SECRET},
        "privateKey": SECRET,
        "passwd": SECRET,
    },
    "bytes names": [(b"authorization", SECRET)],
    "a pre-signed URL (SigV4)": (
        "https://bucket.s3.amazonaws.com/k.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={AKIA}%2F20240101%2Fus-east-1%2Fs3%2Faws4_request"
        f"&X-Amz-Date=20240101T000000Z&X-Amz-Security-Token={SECRET}%2B%2F{SECRET}"
        f"&X-Amz-Signature={SECRET}"
    ),
    "a pre-signed URL (SigV2)": (
        f"https://b.s3.amazonaws.com/k?AWSAccessKeyId={AKIA}&Expires=1&Signature={SECRET}%3D"
    ),
    "a SAS URL": f"https://a.blob.core.windows.net/c/b?sv=2020&sig={SECRET}&se=2024",
    "an encoded URL in a URL": f"next=https%3A%2F%2Fh%2Fp%3Ftoken%3D{SECRET}%26a%3D1",
    "URL userinfo": f"postgres://app:{SECRET}@db:5432/x",
    "raw headers": f"GET / HTTP/1.1\r\nCookie: a={SECRET}; b={SECRET}\r\nHost: x",
    "an Authorization header value": (
        f"AWS4-HMAC-SHA256 Credential={AKIA}/20240101/us-east-1/s3/aws4_request, "
        f"SignedHeaders=host, Signature={SECRET}"
    ),
    "basic credentials": f"Basic {SECRET}",
    "JSON text": f'{{"password": "{SECRET}", "user": "bob"}}',
    "a JWT": f"eyJhbGciOiJIUzI1NiJ9.eyJ{SECRET}.{SECRET}",
    "an access key id in prose": f"uploaded with key {AKIA} today",
    "a private key": f"-----BEGIN RSA PRIVATE KEY-----\n{SECRET}\n-----END RSA PRIVATE KEY-----",
}


def test_secrets_in_every_shape_never_reach_the_log() -> None:
    readable = {"upload_id": "u-1", "author": "Jane", "signal": "on", "key": "uploads/a.png"}
    raw = logged({**SECRET_SHAPES, **readable})
    text = raw.decode("utf-8")
    for secret in (SECRET, AKIA, "RSA PRIVATE"):
        assert secret not in text
    context = json.loads(text)["context"]
    assert {key: context[key] for key in readable} == readable  # what names no secret stays
    assert context["header pairs"] == [["Authorization", "<redacted>"], ["Accept", "image/png"]]
    assert context["a flat name, value list"] == ["set-cookie", "<redacted>", "user", "bob"]
    assert context["a SAS URL"] == (
        "https://a.blob.core.windows.net/c/b?sv=2020&sig=<redacted>&se=2024"
    )


@pytest.mark.parametrize("shape", sorted(SECRET_SHAPES))
def test_each_secret_shape_is_redacted_on_its_own(shape: str) -> None:
    raw = logged({"value": SECRET_SHAPES[shape]})
    assert SECRET.encode() not in raw and AKIA.encode() not in raw, raw


SECRET_NAMES = [
    "Authorization", "auth", "AUTH_TOKEN", "x-api-key", "apiKey", "pwd", "Password",
    "bearer", "jwt", "cookie", "Set-Cookie", "token", "secret", "session", "credentials",
    "aws_secret_access_key", "X-Amz-Security-Token", "sig", "Signature", "passphrase",
]  # fmt: skip
NO_HEX = "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ"  # so no digest can hold a planted secret
secrets_ = st.text(alphabet=NO_HEX, min_size=12, max_size=24)
access_key_ids = st.text(alphabet="GHJKLMNPQRSTUVWXYZ", min_size=16, max_size=16).map(
    lambda tail: "AKIA" + tail
)
VALUE_TEMPLATES = [
    "Bearer {}", "basic {}", "token={}", "https://h/p?X-Amz-Signature={}&a=1",
    "X-Amz-Security-Token={}", "https://h/p?Signature={}", "?sig={}&se=1",
    "Cookie: sid={}; theme=dark", "https://user:{}@host/", "eyJhbGciOi.eyJ{}.x",
    '{{"api_key": "{}"}}', "password: {}", "jwt={}",
]  # fmt: skip


@st.composite
def planted(draw: st.DrawFn) -> tuple[Any, list[str]]:
    """A context value holding secrets: under a secret name in a mapping, a pair or a
    flat list, or in a value of a recognisable shape, nested in ordinary containers."""
    secrets: list[str] = []

    def secret_value() -> Any:
        secret = draw(st.one_of(secrets_, access_key_ids))
        secrets.append(secret)
        if secret.startswith("AKIA"):
            template = draw(st.sampled_from(["{}", "key {} here", "X-Amz-Credential={}%2F2024"]))
            return template.format(secret)
        return secret

    def node(depth: int) -> Any:
        shape = draw(st.integers(0, 6 if depth < 3 else 3))
        name = draw(st.sampled_from(SECRET_NAMES))
        if shape == 0:
            return {name: secret_value(), "plain": draw(st.integers())}
        if shape == 1:
            return [(name, secret_value())]
        if shape == 2:
            return ["x", name, secret_value()]
        if shape == 3:
            secret = draw(secrets_)
            secrets.append(secret)
            return draw(st.sampled_from(VALUE_TEMPLATES)).format(secret)
        if shape == 4:
            return {draw(st.sampled_from(["meta", "items", "upload"])): node(depth + 1)}
        if shape == 5:
            return (node(depth + 1), "ordinary")
        return [node(depth + 1) for _ in range(draw(st.integers(1, 3)))]

    return node(0), secrets


@settings(max_examples=150, deadline=None)
@given(planted())
def test_planted_secrets_never_reach_the_log(case: tuple[Any, list[str]]) -> None:
    context, secrets = case
    raw = logged({"planted": context})
    assert json.loads(raw)  # still one valid line
    for secret in secrets:
        assert secret.encode() not in raw, (secret, raw)


def test_only_the_context_keys_declared_are_logged() -> None:
    context = {"upload_id": "u-9", "note": f"hunter2{SECRET}", "user": {"token": SECRET}}
    raw = logged(context, log_context_keys=("upload_id", "user"))
    line = json.loads(raw)
    assert line["context"] == {"upload_id": "u-9", "user": {"token": "<redacted>"}}
    assert SECRET.encode() not in raw and b"hunter2" not in raw
    with pytest.raises(TypeError, match="not one string"):
        AuditLog(io.BytesIO(), log_context_keys="upload_id")


# -- the writer never breaks a line, and never raises into the caller ----------------------


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


class BrokenMapping(dict[str, Any]):
    def items(self) -> Any:
        raise RuntimeError("cannot iterate")


def test_unencodable_and_unserialisable_values_keep_the_line_whole(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    context = {
        "name": "\ud800 caf\u00e9",
        "nan": float("nan"),
        "inf": [float("inf")],
        "object": object(),
        Unprintable(): 1,
        "broken": BrokenMapping(a=1),
        "deep": [[[[[[[[[["bottom"]]]]]]]]]],
    }
    with AuditLog(log) as audit:
        assert audit.write(event_with(context, name="\udcff-name.jpg"))
        assert audit.write(event_with({"upload_id": "after"}))
    raw = log.read_bytes()
    raw.decode("utf-8")  # valid UTF-8 throughout
    first, second = lines(log)
    # shown escaped as text (strict JSON readers refuse lone surrogates), bytes kept
    assert first["input"] == "\\xff-name.jpg"
    assert base64.b64decode(first["input_base64"]) == b"\xff-name.jpg"
    assert first["context"]["name"] == "\\ud800 caf\u00e9"  # escaped as text
    assert first["context"]["nan"] == "nan" and first["context"]["inf"] == ["inf"]
    assert first["context"]["object"] == "<object omitted>"
    assert first["context"]["<Unprintable>"] == 1
    assert first["context"]["broken"] == "<BrokenMapping unreadable>"
    assert "<nested too deep>" in json.dumps(first["context"]["deep"])
    assert second["context"] == {"upload_id": "after"}


def test_a_text_stream_that_cannot_take_utf8_gets_ascii_json() -> None:
    buffer = io.BytesIO()
    stream = io.TextIOWrapper(buffer, encoding="ascii")
    assert AuditLog(stream).write(event_with({"who": "caf\u00e9 \ud800"}))
    stream.flush()
    assert json.loads(buffer.getvalue())["context"] == {"who": "caf\u00e9 \\ud800"}


class FailingStream(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raise OSError(28, "No space left on device")


def test_a_failing_write_is_logged_and_counted_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failing = AuditLog(FailingStream())
    with caplog.at_level(logging.ERROR, logger="policy_engine.audit"):
        assert failing.write(event_with({"upload_id": "u"})) is False
    assert failing.failures == 1 and failing.lines == 0
    assert "No space left on device" in caplog.text

    closed = AuditLog(tmp_path / "audit.jsonl")
    closed.close()
    assert closed.write(event_with({})) is False
    assert closed.failures == 1

    # through a Moderator, the decision comes back all the same
    moderator = moderator_for(tmp_path, failing)
    assert moderator.check(b"image").verdict.value == "review"
    assert failing.failures == 2


def test_a_line_that_cannot_be_made_in_full_keeps_the_decision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(decision: Any) -> Any:
        raise RuntimeError("a plugin's odd metadata")

    monkeypatch.setattr("policy_engine.audit.model_versions", broken)
    stream = io.BytesIO()
    assert AuditLog(stream).write(event_with({"token": SECRET}))
    line = json.loads(stream.getvalue())
    assert line["decision"] == "review" and line["input"] == "upload.png"
    assert line["audit_error"] == "the full line could not be made: RuntimeError"
    assert "context" not in line and SECRET not in stream.getvalue().decode()


def test_a_line_that_cannot_be_made_in_full_still_names_the_route_and_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(decision: Any) -> Any:
        raise RuntimeError("a plugin's odd metadata")

    monkeypatch.setattr("policy_engine.audit.model_versions", broken)
    routed = dataclasses.replace(
        event_with({"surface": "chat"}),
        route={"index": 2, "policy": "general-ugc.yaml", "context": {"surface": "chat"}},
        policy_set={"name": "community", "digest": "sha256:" + "0" * 64},
    )
    stream = io.BytesIO()
    assert AuditLog(stream).write(routed)
    line = json.loads(stream.getvalue())
    assert line["audit_error"] == "the full line could not be made: RuntimeError"
    assert line["route"]["index"] == 2 and line["route"]["policy"] == "general-ugc.yaml"
    assert line["policy_set"]["name"] == "community"
