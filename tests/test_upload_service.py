"""The example upload service (examples/upload_service), end to end through its
WSGI interface, with the example images replayed from examples/recordings."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import importlib.util
import io
import itertools
import json
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.util import setup_testing_defaults

import pytest
import yaml

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
    query: str = "",
) -> tuple[Response, Body]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
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


def make_app(policy_file: Path, folder: Path) -> Any:
    """The app serving ``policy_file`` with the recordings replayed, its files in ``folder``."""
    config = app_module.Config(
        policy_file=policy_file,
        store_dir=folder / "stored",
        review_dir=folder / "review",
        replay=ROOT / "examples" / "recordings",
        audit_log=folder / "audit.jsonl",
    )
    return app_module.create_app(config)


@pytest.fixture
def service(tmp_path: Path) -> Any:
    policy = tmp_path / "general-ugc.yaml"
    shutil.copy(ROOT / "policies" / "general-ugc.yaml", policy)
    app = make_app(policy, tmp_path)
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


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"hello, this is text", None),
        (b"GIF89a" + bytes(32), "GIF"),
        (b"%PDF-1.7\n" + bytes(32), "PDF"),
        (b"\x89PNG\r\n", None),  # a PNG signature cut short
    ],
)
def test_a_body_that_is_not_a_jpeg_or_png_is_refused_and_never_decided(
    service: Any, body: bytes, named: str | None
) -> None:
    response, stream = call(service, "POST", "/upload", body, {"X-Upload-Id": "u-9"})
    assert response.code == 415
    answer = response.json()
    assert "JPEG or PNG" in answer["error"] and answer["format"] == named
    assert stream.read_bytes == len(body)
    assert service.config.audit_log.read_text(encoding="utf-8") == ""  # nothing decided
    assert not service.config.store_dir.exists() and not service.config.review_dir.exists()


def test_the_start_up_line_says_whether_it_replays_or_calls_aws(service: Any) -> None:
    replaying = app_module.serving_note(service.moderator, service.config)
    live = app_module.serving_note(
        service.moderator, dataclasses.replace(service.config, replay=None)
    )
    digest = service.moderator.policy_digest
    assert "general-ugc" in replaying and digest in replaying and digest in live
    assert f"replaying recordings from {service.config.replay}" in replaying
    assert "no AWS calls" in replaying and "AWS" in live and "replaying" not in live


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
    assert default.policy_file == ROOT / "policies" / "community.set.yaml"
    assert default.replay == ROOT / "examples" / "recordings"
    assert default.path_dimension == "surface"
    assert app_module.Config.from_env({"PATH_DIMENSION": "placement"}).path_dimension == "placement"
    with pytest.raises(ValueError, match="PATH_DIMENSION"):
        app_module.Config.from_env({"PATH_DIMENSION": "../x"})

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


# -- a policy set, over real HTTP ------------------------------------------

SET_FILE = ROOT / "policies" / "community.set.yaml"
SET = yaml.safe_load(SET_FILE.read_text(encoding="utf-8"))
RECORDED = sorted(p.name for p in IMAGES.iterdir() if p.name != "unrecorded.png")


def every_context() -> list[dict[str, str]]:
    """Every combination of the reference set's dimension values, from its file."""
    names = list(SET["context"])
    values = [SET["context"][name]["values"] for name in names]
    return [
        dict(zip(names, combination, strict=True)) for combination in itertools.product(*values)
    ]


def expected_route(context: dict[str, str]) -> tuple[int, str]:
    """The route the set file gives ``context`` for an image with no content type
    reported (the recordings report none): the first whose ``when`` holds."""
    for index, route in enumerate(SET["routes"]):
        when = route.get("when") or {}
        if "content_type" in when:
            continue
        if all(context[d] in (v if isinstance(v, list) else [v]) for d, v in when.items()):
            return index, route["policy"]
    raise AssertionError(f"no route for {context}")


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def listening(app: Any) -> Iterator[tuple[str, int]]:
    server = make_server(
        "127.0.0.1", 0, app, server_class=app_module.ThreadingWSGIServer, handler_class=QuietHandler
    )
    # a short poll: shutdown() waits up to one poll interval
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def send(
    address: tuple[str, int],
    method: str,
    path: str,
    image: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection(*address, timeout=10)
    try:
        body = (IMAGES / image).read_bytes() if image else None
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def set_service(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One server for the module's tests (loading the set is most of their time)."""
    app = make_app(SET_FILE, tmp_path_factory.mktemp("set-service"))
    with listening(app) as address:
        yield app, address
    app.moderator.close()


def audit_lines(app: Any) -> list[Any]:
    text = app.config.audit_log.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def stored_files(app: Any) -> set[Path]:
    folders = (app.config.store_dir, app.config.review_dir)
    return {path for folder in folders if folder.exists() for path in folder.iterdir()}


@pytest.mark.parametrize(
    ("path", "headers", "context", "defaulted"),
    [
        ("/upload/feed", {}, {"surface": "feed", "audience": "adult"}, ["audience"]),
        ("/upload/chat?audience=teen", {}, {"surface": "chat", "audience": "teen"}, []),
        ("/upload?surface=profile", {}, {"surface": "profile", "audience": "adult"}, ["audience"]),
        (
            "/upload/marketplace?audience=adult",
            {"X-Upload-Id": "u-7"},
            {"surface": "marketplace", "audience": "adult"},
            [],
        ),
    ],
)
def test_the_context_from_the_path_and_the_query_routes_the_upload(
    set_service: Any,
    path: str,
    headers: dict[str, str],
    context: dict[str, str],
    defaulted: list[str],
) -> None:
    app, address = set_service
    audited_before = audit_lines(app)
    code, answer = send(address, "POST", path, "landscape.png", headers)
    assert code == 201, answer
    index, policy = expected_route(context)
    assert answer["context"] == context
    assert answer["defaulted"] == defaulted
    assert answer["route"]["index"] == index
    assert answer["route"]["policy"] == policy
    assert answer["policy"]["name"] == Path(policy).stem  # the routed policy decided
    _, health = send(address, "GET", "/healthz")
    assert answer["policy_set"] == {"name": SET["name"], "digest": health["policy"]["digest"]}
    (audited,) = audit_lines(app)[len(audited_before) :]
    given = {key: value for key, value in context.items() if key not in defaulted}
    upload_id = headers.get("X-Upload-Id")
    assert audited["context"] == ({**given, "upload_id": upload_id} if upload_id else given)
    assert (audited["route"]["index"], audited["route"]["context"]) == (index, context)


def test_the_audience_and_the_surface_change_the_decision(set_service: Any) -> None:
    _, address = set_service
    adult, adult_answer = send(address, "POST", "/upload/feed", "cocktail-bar.png")
    teen, teen_answer = send(address, "POST", "/upload/feed?audience=teen", "cocktail-bar.png")
    assert (adult, adult_answer["decision"]) == (201, "allow")
    assert (teen, teen_answer["decision"]) == (422, "block")
    assert adult_answer["route"]["policy"] != teen_answer["route"]["policy"]
    assert "stored" not in teen_answer

    feed = send(address, "POST", "/upload/feed", "party-smoking.png")[1]
    market = send(address, "POST", "/upload/marketplace", "party-smoking.png")[1]
    assert (feed["route"]["policy"], market["route"]["policy"]) == (
        expected_route({"surface": "feed", "audience": "adult"})[1],
        expected_route({"surface": "marketplace", "audience": "adult"})[1],
    )
    assert feed["route"]["policy"] != market["route"]["policy"]
    assert {r["rule"] for r in feed["reasons"]} != {r["rule"] for r in market["reasons"]}


def _values(dimension: str) -> list[str]:
    return list(SET["context"][dimension]["values"])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/upload", {"dimension": "surface", "allowed": _values("surface")}),
        ("/upload?audience=teen", {"dimension": "surface", "allowed": _values("surface")}),
        ("/upload/lobby", {"dimension": "surface", "allowed": _values("surface")}),
        ("/upload/feed?audience=kid", {"dimension": "audience", "allowed": _values("audience")}),
        ("/upload/feed?audience=", {"dimension": "audience", "allowed": _values("audience")}),
        ("/upload/feed?surface=chat", {"dimension": "surface", "given": ["feed", "chat"]}),
        (
            "/upload/feed?audience=teen&audience=adult",
            {"dimension": "audience", "given": ["teen", "adult"]},
        ),
        ("/upload/feed?audiance=teen", {"key": "audiance", "dimensions": list(SET["context"])}),
        ("/upload/feed?upload_id=u-1", {"key": "upload_id"}),
    ],
)
def test_a_context_the_set_cannot_route_is_refused_and_nothing_is_decided(
    set_service: Any, path: str, expected: dict[str, Any]
) -> None:
    app, address = set_service
    audited, stored = audit_lines(app), stored_files(app)
    code, answer = send(address, "POST", path, "landscape.png")  # allowed in every context
    assert code == 400
    assert answer["code"] == "invalid-context"
    assert {k: answer[k] for k in expected} == expected
    assert answer["error"]
    named = expected.get("dimension") or expected["key"]
    assert named in answer["error"]
    assert audit_lines(app) == audited  # no check was made: no detector called
    assert stored_files(app) == stored


def test_a_refused_context_is_answered_before_the_body_is_read(tmp_path: Path) -> None:
    app = make_app(SET_FILE, tmp_path)
    try:
        response, body = call(app, "POST", "/upload", (IMAGES / "landscape.png").read_bytes())
    finally:
        app.moderator.close()
    assert response.code == 400
    assert response.json()["dimension"] == "surface"
    assert body.read_bytes == 0


def test_only_one_path_segment_names_a_surface(set_service: Any) -> None:
    _, address = set_service
    assert send(address, "POST", "/upload/feed/extra", "landscape.png")[0] == 404
    assert send(address, "POST", "/upload/", "landscape.png")[0] == 404
    assert send(address, "GET", "/upload/feed")[0] == 405


def test_healthz_shows_the_sets_dimensions_and_routes(set_service: Any) -> None:
    _, address = set_service
    code, health = send(address, "GET", "/healthz")
    assert code == 200
    served = health["policy_set"]
    assert served["name"] == SET["name"] == health["policy"]["name"]
    assert served["digest"] == health["policy"]["digest"]
    assert served["digest"].startswith("sha256:")
    assert served["dimensions"] == {
        name: {"values": spec["values"], "default": spec.get("default")}
        for name, spec in SET["context"].items()
    }
    assert [route["policy"] for route in served["routes"]] == [r["policy"] for r in SET["routes"]]
    assert health["path_dimension"] == "surface"


def test_the_recordings_cover_every_image_under_every_routed_policy(tmp_path: Path) -> None:
    """The example's replay answers for every detector of every route: no
    recorded image is held for review for want of a recording in any context."""
    app = make_app(SET_FILE, tmp_path)
    routed: set[str] = set()
    try:
        for image, context in itertools.product(RECORDED, every_context()):
            query = "&".join(f"{key}={value}" for key, value in context.items())
            response, _ = call(app, "POST", "/upload", (IMAGES / image).read_bytes(), query=query)
            answer = response.json()
            assert response.code in (201, 202, 422), (image, context, answer)
            assert answer["errors"] == [], (image, context)
            assert answer["route"]["index"] == expected_route(context)[0]
            routed.add(answer["route"]["policy"])
    finally:
        app.moderator.close()
    reachable = {expected_route(context)[1] for context in every_context()}
    assert routed == reachable


def test_with_a_single_policy_the_context_only_goes_to_the_audit_log(service: Any) -> None:
    with listening(service) as address:
        code, answer = send(
            address,
            "POST",
            "/upload/feed?audience=teen",
            "cocktail-bar.png",
            {"X-Upload-Id": "u-3"},
        )
        bad, refused = send(address, "POST", "/upload/feed?audience=a%20b", "cocktail-bar.png")
        unnamed, _ = send(address, "POST", "/upload", "landscape.png")
        _, health = send(address, "GET", "/healthz")
    assert (code, answer["decision"]) == (201, "allow")  # general-ugc allows it: nothing routes
    assert "route" not in answer and "policy_set" not in answer
    audit = [json.loads(line) for line in service.config.audit_log.read_text().splitlines()]
    assert audit[0]["context"] == {"surface": "feed", "audience": "teen", "upload_id": "u-3"}
    assert audit[1]["context"] == {}
    assert (bad, refused["dimension"]) == (400, "audience")
    assert unnamed == 201
    assert health["policy_set"] is None
