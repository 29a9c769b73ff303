"""The ASGI example (examples/asgi_service) over real HTTP, under uvicorn:
its lifespan builds and closes the moderator, and every request gets the
answer the WSGI example gives it."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from test_upload_service import listening

from examples.asgi_service.app import create_app
from examples.upload_service import app as wsgi
from policy_engine import Moderator

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "examples" / "images"
SET_FILE = ROOT / "policies" / "community.set.yaml"
LIMIT = 4096  # over every example image


def config(folder: Path, policy: Path = SET_FILE) -> wsgi.Config:
    return wsgi.Config(
        policy_file=policy,
        store_dir=folder / "stored",
        review_dir=folder / "review",
        replay=ROOT / "examples" / "recordings",
        audit_log=folder / "audit.jsonl",
        max_bytes=LIMIT,
    )


@contextlib.contextmanager
def serving_asgi(app: Any) -> Iterator[tuple[str, int]]:
    """uvicorn in a thread on a free port of 127.0.0.1, lifespan and all."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        for _ in range(1000):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.01)
        assert server.started, "uvicorn did not start"
        yield "127.0.0.1", listener.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


@dataclass(frozen=True)
class NoBody:
    """A request whose headers announce a body that is never sent: the answer
    must come without the server reading it (and without a race with a
    server that closes a connection whose body it refused)."""

    header: str
    value: str


def send(
    address: tuple[str, int],
    method: str,
    path: str,
    body: bytes | NoBody | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection(address[0], address[1], timeout=10)
    try:
        if isinstance(body, NoBody):
            connection.putrequest(method, path)
            for name, value in [*(headers or {}).items(), (body.header, body.value)]:
                connection.putheader(name, value)
            connection.endheaders()
        else:
            connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Any]]:
    """The ASGI app and the WSGI app, each serving the reference set over HTTP."""
    asgi_app = create_app(config(tmp_path_factory.mktemp("asgi")))
    wsgi_app = wsgi.create_app(config(tmp_path_factory.mktemp("wsgi")))
    with serving_asgi(asgi_app) as asgi_address, listening(wsgi_app) as wsgi_address:
        yield asgi_app, asgi_address, wsgi_address
    wsgi_app.moderator.close()


def image(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def comparable(answer: Any) -> Any:
    """An answer without the folder it was stored in (each app has its own)."""
    if isinstance(answer, dict) and "stored" in answer:
        return {**answer, "stored": Path(answer["stored"]).name}
    return answer


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("POST", "/upload/feed", image("landscape.png"), {"X-Upload-Id": "u-1"}, 201),
        ("POST", "/upload/feed?audience=teen", image("cocktail-bar.png"), {}, 422),
        ("POST", "/upload?surface=marketplace", image("party-smoking.png"), {}, 202),
        ("POST", "/upload/profile", image("unrecorded.png"), {}, 202),
        ("POST", "/upload/chat", image("knife-fight.jpg"), {}, 422),
        ("POST", "/upload", image("landscape.png"), {}, 400),
        ("POST", "/upload/feed?audience=kid", image("landscape.png"), {}, 400),
        ("POST", "/upload/feed?audiance=teen", image("landscape.png"), {}, 400),
        ("POST", "/upload/feed?surface=chat", image("landscape.png"), {}, 400),
        ("POST", "/upload/feed", image("beach.png"), {"X-Upload-Id": "../x"}, 400),
        ("POST", "/upload/feed", b"GIF89a" + bytes(16), {}, 415),
        ("POST", "/upload/feed", b"not an image at all", {}, 415),
        ("POST", "/upload/feed", None, {}, 400),  # Content-Length: 0
        ("POST", "/upload/feed", NoBody("Transfer-Encoding", "chunked"), {}, 411),
        ("POST", "/upload/feed", NoBody("Content-Length", str(50 * 1024 * 1024)), {}, 413),
        ("POST", "/upload/feed", NoBody("Content-Length", str(LIMIT + 1)), {}, 413),
        ("POST", "/upload/feed/more", image("landscape.png"), {}, 404),
        ("POST", "/upload/", image("landscape.png"), {}, 404),
        ("GET", "/nowhere", None, {}, 404),
        ("GET", "/healthz", None, {}, 200),
    ],
    ids=lambda value: f"{len(value)}-bytes" if isinstance(value, bytes) else None,
)
def test_every_request_gets_the_wsgi_examples_answer(
    both: tuple[Any, Any, Any],
    method: str,
    path: str,
    body: bytes | NoBody | None,
    headers: dict[str, str],
    status: int,
) -> None:
    _, asgi_address, wsgi_address = both
    asgi_status, asgi_headers, asgi_answer = send(asgi_address, method, path, body, headers)
    wsgi_status, _, wsgi_answer = send(wsgi_address, method, path, body, headers)
    assert (asgi_status, wsgi_status) == (status, status), asgi_answer
    assert comparable(asgi_answer) == comparable(wsgi_answer)
    assert asgi_headers["content-type"].startswith("application/json")
    if 201 <= status <= 202:
        assert Path(asgi_answer["stored"]).read_bytes() == body


def test_a_wrong_method_is_refused_with_the_allowed_ones(both: tuple[Any, Any, Any]) -> None:
    _, address, _ = both
    status, headers, answer = send(address, "GET", "/upload/feed")
    assert status == 405 and headers["allow"] == "POST"
    assert answer == {"error": "use POST for /upload/feed"}


def test_reload_answers_as_the_wsgi_example(tmp_path: Path) -> None:
    policy = tmp_path / "general-ugc.yaml"
    shutil.copy(ROOT / "policies" / "general-ugc.yaml", policy)
    app = create_app(config(tmp_path, policy))
    with serving_asgi(app) as address:
        good = policy.read_text(encoding="utf-8")
        policy.write_text(good.replace("block_at: 90", "block_at: [90]", 1), encoding="utf-8")
        broken_status, _, broken = send(address, "POST", "/reload")
        assert (broken_status, broken["ok"]) == (422, False) and broken["diagnostics"]
        assert send(address, "POST", "/upload", image("knife-fight.jpg"))[0] == 422
        policy.write_text(good.replace("block_at: 90", "block_at: 99"), encoding="utf-8")
        status, _, result = send(address, "POST", "/reload")
        assert (status, result["ok"], result["changed"]) == (200, True, True)
        assert send(address, "POST", "/upload", image("knife-fight.jpg"))[0] == 202


def test_the_lifespan_builds_the_moderator_and_closes_it_on_shutdown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(config(tmp_path))
    assert not hasattr(app.state, "moderator")  # nothing is loaded before the server starts
    with caplog.at_level(logging.INFO, logger="asgi_service"), serving_asgi(app) as address:
        moderator: Moderator = app.state.moderator
        health = send(address, "GET", "/healthz")[2]
        assert health["policy"]["digest"] == moderator.policy_digest
    assert any("replaying recordings from" in r.getMessage() for r in caplog.records)
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(moderator.acheck(image("landscape.png"), context={"surface": "feed"}))


def test_a_failure_is_a_json_500_without_a_traceback(tmp_path: Path) -> None:
    app = create_app(config(tmp_path))
    with serving_asgi(app) as address:
        app.state.moderator.close()  # the next decision fails inside the app
        status, _, answer = send(address, "POST", "/upload/feed", image("landscape.png"))
    assert (status, answer) == (500, {"error": "internal error"})
