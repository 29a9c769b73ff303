"""The example upload service (examples/upload_service), end to end through its
WSGI interface, with the example images replayed from examples/recordings."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import shutil
import socket
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from wsgiref.simple_server import make_server
from wsgiref.util import setup_testing_defaults

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "examples" / "images"


def load_app() -> ModuleType:
    name = "upload_service_app"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, ROOT / "examples" / "upload_service" / "app.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


app_module = load_app()


class Response:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.code = int(status.split()[0])
        self.headers = dict(headers)
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class Body(io.BytesIO):
    """A request body that counts what the app read of it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.read_bytes += len(chunk)
        return chunk


def call(
    app: Any,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    content_length: str | None = None,
) -> tuple[Response, Body]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path}
    stream = Body(body or b"")
    environ["wsgi.input"] = stream
    if body is not None:
        environ["CONTENT_LENGTH"] = str(len(body))
    if content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    for key, value in (headers or {}).items():
        environ["HTTP_" + key.upper().replace("-", "_")] = value
    setup_testing_defaults(environ)
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        started.append((status, response_headers))

    chunks = app(environ, start_response)
    payload = b"".join(chunks)
    (started_once,) = started
    response = Response(started_once[0], started_once[1], payload)
    assert response.headers["Content-Type"].startswith("application/json")
    assert int(response.headers["Content-Length"]) == len(payload)
    return response, stream


@pytest.fixture
def service(tmp_path: Path) -> Any:
    policy = tmp_path / "general-ugc.yaml"
    shutil.copy(ROOT / "policies" / "general-ugc.yaml", policy)
    config = app_module.Config(
        policy_file=policy,
        store_dir=tmp_path / "stored",
        review_dir=tmp_path / "review",
        replay=ROOT / "examples" / "recordings",
        audit_log=tmp_path / "audit.jsonl",
    )
    app = app_module.create_app(config)
    yield app
    app.moderator.close()


def upload(app: Any, image: str, upload_id: str | None = None) -> Response:
    headers = {"X-Upload-Id": upload_id} if upload_id else {}
    response, _ = call(app, "POST", "/upload", (IMAGES / image).read_bytes(), headers)
    return response


def test_a_blocked_upload_is_rejected_with_its_reasons(service: Any) -> None:
    response = upload(service, "knife-fight.jpg", "u-1")
    assert response.code == 422
    answer = response.json()
    assert answer["decision"] == "block"
    assert answer["upload_id"] == "u-1"
    assert {"graphic-violence", "weapons"} <= {r["rule"] for r in answer["reasons"]}
    assert answer["reasons"][0]["verdict"] == "block"
    assert answer["policy"]["name"] == "general-ugc"
    assert "stored" not in answer
    assert not service.config.store_dir.exists() and not service.config.review_dir.exists()


def test_an_allowed_upload_is_stored(service: Any) -> None:
    data = (IMAGES / "landscape.png").read_bytes()
    response = upload(service, "landscape.png", "u-2")
    assert response.code == 201
    answer = response.json()
    assert answer["decision"] == "allow"
    assert answer["reasons"] == []
    stored = Path(answer["stored"])
    assert stored.parent == service.config.store_dir
    assert stored.name == hashlib.sha256(data).hexdigest() + ".png"
    assert stored.read_bytes() == data


def test_an_upload_the_detector_failed_on_is_held_for_review(service: Any) -> None:
    response = upload(service, "unrecorded.png")
    assert response.code == 202
    answer = response.json()
    assert answer["decision"] == "review"
    assert answer["errors"][0]["code"] == "no-recording"
    assert answer["reasons"][0]["rule"] == "on_error"
    stored = Path(answer["stored"])
    assert stored.parent == service.config.review_dir
    assert stored.read_bytes() == (IMAGES / "unrecorded.png").read_bytes()


def test_every_upload_is_audited_with_its_upload_id(service: Any) -> None:
    upload(service, "knife-fight.jpg", "u-1")
    upload(service, "landscape.png", "u-2")
    audit = service.config.audit_log.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in audit]
    assert [(r["context"], r["decision"]) for r in records] == [
        ({"upload_id": "u-1"}, "block"),
        ({"upload_id": "u-2"}, "allow"),
    ]


def test_an_oversize_body_is_refused_before_it_is_read(service: Any) -> None:
    limit = service.config.max_bytes
    response, body = call(service, "POST", "/upload", b"x" * 1024, content_length=str(limit + 1))
    assert response.code == 413
    assert body.read_bytes == 0
    assert str(limit) in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "content_length", "headers", "code"),
    [
        (None, None, {}, 411),
        (b"", None, {}, 400),
        (b"abc", "many", {}, 400),
        (b"abc", "10", {}, 400),  # the body ends short
        (b"abc", None, {"X-Upload-Id": "../../etc/passwd"}, 400),
    ],
)
def test_bad_requests_are_refused(
    service: Any, body: bytes | None, content_length: str | None, headers: dict[str, str], code: int
) -> None:
    response, _ = call(service, "POST", "/upload", body, headers, content_length)
    assert response.code == code
    assert response.json()["error"]


def test_healthz_names_the_policy_and_unknown_routes_are_refused(service: Any) -> None:
    response, _ = call(service, "GET", "/healthz")
    assert response.code == 200
    health = response.json()
    assert health["policy"]["name"] == "general-ugc"
    assert health["policy"]["digest"] == service.moderator.policy_digest
    assert health["policy"]["digest"].startswith("sha256:")

    assert call(service, "GET", "/nowhere")[0].code == 404
    wrong, _ = call(service, "GET", "/upload")
    assert wrong.code == 405
    assert wrong.headers["Allow"] == "POST"


def test_reload_with_a_broken_policy_keeps_serving_and_reports_the_errors(service: Any) -> None:
    before = call(service, "GET", "/healthz")[0].json()["policy"]["digest"]
    policy: Path = service.config.policy_file
    good = policy.read_text(encoding="utf-8")
    policy.write_text(good.replace("block_at: 90", "block_at: [90]", 1), encoding="utf-8")

    response, _ = call(service, "POST", "/reload")

    assert response.code == 422
    result = response.json()
    assert result["ok"] is False
    assert result["policy"]["digest"] == before
    assert result["diagnostics"]
    assert all(d["severity"] == "error" and d["line"] > 1 for d in result["diagnostics"])
    assert all(d["file"] == str(policy) for d in result["diagnostics"])
    assert call(service, "GET", "/healthz")[0].json()["policy"]["digest"] == before
    assert upload(service, "knife-fight.jpg").code == 422  # still serving the old policy

    # a good change then goes live
    policy.write_text(good.replace("block_at: 90", "block_at: 99"), encoding="utf-8")
    reloaded, _ = call(service, "POST", "/reload")
    assert reloaded.code == 200
    result = reloaded.json()
    assert result["ok"] is True and result["changed"] is True
    assert result["previous_digest"] == before
    assert (
        call(service, "GET", "/healthz")[0].json()["policy"]["digest"] == result["policy"]["digest"]
    )
    relaxed = upload(service, "knife-fight.jpg")
    assert relaxed.code == 202  # 97.3 is now below block_at
    assert relaxed.json()["policy"]["digest"] == result["policy"]["digest"]


def test_config_from_the_environment(tmp_path: Path) -> None:
    default = app_module.Config.from_env({})
    assert default.policy_file == ROOT / "policies" / "general-ugc.yaml"
    assert default.replay == ROOT / "examples" / "recordings"

    own = app_module.Config.from_env(
        {
            "POLICY_FILE": str(tmp_path / "p.yaml"),
            "STORE_DIR": str(tmp_path / "s"),
            "REVIEW_DIR": str(tmp_path / "r"),
            "MAX_UPLOAD_BYTES": "1000",
        }
    )
    assert own.policy_file == tmp_path / "p.yaml"
    assert own.replay is None  # a policy of your own runs its own detectors
    assert (own.store_dir, own.review_dir, own.max_bytes) == (tmp_path / "s", tmp_path / "r", 1000)
    replaying = app_module.Config.from_env({"POLICY_FILE": "p.yaml", "REPLAY_DIR": str(tmp_path)})
    assert replaying.replay == tmp_path


def test_a_burst_of_uploads_is_queued_while_the_server_is_busy(service: Any) -> None:
    """Sixty-four connections opened before the server accepts any all connect
    at once (socketserver's default backlog of 5 dropped the rest's SYNs, and
    each of those waited a second for its retransmit)."""
    server = make_server("127.0.0.1", 0, service, server_class=app_module.ThreadingWSGIServer)
    address = ("127.0.0.1", server.server_address[1])
    with server, contextlib.ExitStack() as connections:
        opened = [
            connections.enter_context(socket.create_connection(address, timeout=0.5))
            for _ in range(64)
        ]
        assert len(opened) == 64
