"""An example upload service that moderates every upload with policy-engine.

Standard library only (``wsgiref``). One :class:`policy_engine.Moderator` is
built at start-up and shared by every request thread:

- ``POST /upload/<surface>`` (or ``POST /upload``), the image as the request
  body, the context as the path segment and query parameters
  (``?audience=teen``), optional ``X-Upload-Id`` header: ``allow`` stores it
  and answers 201, ``review`` stores it in the review folder and answers 202,
  ``block`` answers 422 with the reasons. A body over the limit is refused
  with 413 before it is read, and one that is not a JPEG or PNG image (the
  formats Rekognition takes) with 415. Serving a policy set, a context the set cannot
  route (a dimension missing or unknown, a value not in its list, two values
  for one dimension) is refused with 400 before the body is read.
- ``GET /healthz``: the policy's (or set's) name and digest, and a set's
  dimensions and routes.
- ``POST /reload``: reload the policy file; a policy that does not load
  keeps the old one serving, and the answer (422) lists its errors.

Run it with ``python -m examples.upload_service`` or
``python examples/upload_service/app.py`` from the repository root.
Configuration comes from the environment (see :meth:`Config.from_env`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import socket
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIServer, make_server

from policy_engine import Moderator
from policy_engine.decision import Decision
from policy_engine.errors import ContextError
from policy_engine.image import sniff_format
from policy_engine.policy_set import PolicySet, SetDecision

logger = logging.getLogger("upload_service")

ROOT = Path(__file__).resolve().parents[2]
"""The repository root: the defaults below are relative to it."""

DEFAULT_POLICY = ROOT / "policies" / "community.set.yaml"
DEFAULT_REPLAY = ROOT / "examples" / "recordings"
DEFAULT_MAX_BYTES = 5 * 1024 * 1024  # Rekognition's limit for image bytes
DEFAULT_PATH_DIMENSION = "surface"
UPLOAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
CONTEXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Context keys and values: a set's dimension names and values follow these
characters (the rule-id rule), and nothing else reaches the audit log."""
UPLOAD_PREFIX = "/upload/"
IMAGE_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png"}
"""The formats an upload may be (Rekognition's), by :func:`sniff_format`'s name."""

StartResponse = Callable[..., Any]
Environ = Mapping[str, Any]

STATUS = {
    200: "200 OK",
    201: "201 Created",
    202: "202 Accepted",
    400: "400 Bad Request",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    411: "411 Length Required",
    413: "413 Content Too Large",
    415: "415 Unsupported Media Type",
    422: "422 Unprocessable Content",
    500: "500 Internal Server Error",
}


@dataclass(frozen=True)
class Config:
    """What the service needs; :meth:`from_env` reads it from the environment."""

    policy_file: Path = DEFAULT_POLICY
    store_dir: Path = Path("uploads")
    review_dir: Path = Path("uploads-review")
    replay: Path | None = DEFAULT_REPLAY
    """A recordings folder to replay with the ``stub`` detector instead of the
    policy's detectors (as ``check --replay``); None runs the policy's own."""
    shadow_policy_file: Path | None = None
    audit_log: Path | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    path_dimension: str = DEFAULT_PATH_DIMENSION
    """The context key that ``POST /upload/<value>`` gives a value."""

    def __post_init__(self) -> None:
        if not CONTEXT_NAME.fullmatch(self.path_dimension):
            raise ValueError(f"PATH_DIMENSION {self.path_dimension!r} is not a dimension name")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """``POLICY_FILE`` (default ``policies/community.set.yaml`` replaying
        ``examples/recordings``), ``REPLAY_DIR`` (default: replay only with the
        default policy; set it empty to call the real detectors), ``STORE_DIR``,
        ``REVIEW_DIR``, ``SHADOW_POLICY_FILE``, ``AUDIT_LOG``, ``MAX_UPLOAD_BYTES``,
        ``PATH_DIMENSION`` (default ``surface``)."""
        env = os.environ if environ is None else environ
        policy = env.get("POLICY_FILE")
        replay_default = None if policy else str(DEFAULT_REPLAY)
        replay = env.get("REPLAY_DIR", replay_default)
        return cls(
            policy_file=Path(policy) if policy else DEFAULT_POLICY,
            store_dir=Path(env.get("STORE_DIR") or "uploads"),
            review_dir=Path(env.get("REVIEW_DIR") or "uploads-review"),
            replay=Path(replay) if replay else None,
            shadow_policy_file=Path(env["SHADOW_POLICY_FILE"])
            if env.get("SHADOW_POLICY_FILE")
            else None,
            audit_log=Path(env["AUDIT_LOG"]) if env.get("AUDIT_LOG") else None,
            max_bytes=int(env.get("MAX_UPLOAD_BYTES") or DEFAULT_MAX_BYTES),
            path_dimension=env.get("PATH_DIMENSION") or DEFAULT_PATH_DIMENSION,
        )


class HttpError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        headers: Iterable[tuple[str, str]] = (),
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = list(headers)
        self.details = dict(details or {})
        """More fields of the JSON answer, beside ``error``."""


# -- the request's context ------------------------------------------------


def _context_refused(message: str, **details: Any) -> HttpError:
    return HttpError(400, message, details={"code": ContextError.code, **details})


def _allowed(policy_set: PolicySet | None, key: str) -> dict[str, Any]:
    """A dimension's values and default, for an answer that refuses a context."""
    for dimension in policy_set.dimensions if policy_set is not None else ():
        if dimension.name == key:
            return {"allowed": list(dimension.values), "default": dimension.default}
    return {}


def request_context(
    path_value: str | None, query: str, path_dimension: str, policy_set: PolicySet | None
) -> dict[str, str]:
    """The context a request gives: the path segment as ``path_dimension`` and
    every query parameter. Refused (400): a key or value that is not a name,
    ``upload_id`` (the ``X-Upload-Id`` header gives it), one key given two
    values and, serving a set, a key that is no dimension of it (a misspelt
    ``audiance=teen`` would otherwise be decided under the default audience)
    or a context the set cannot resolve (:meth:`PolicySet.resolve_context`).
    With a single policy the context goes to the audit log only."""
    pairs = [(path_dimension, path_value)] if path_value is not None else []
    given: dict[str, str] = {}
    for key, value in [*pairs, *parse_qsl(query, keep_blank_values=True)]:
        if key == "upload_id":
            raise _context_refused("upload_id comes from the X-Upload-Id header", key=key)
        if not CONTEXT_NAME.fullmatch(key):
            raise _context_refused(
                f"{key!r} is not a context key: letters, digits, '.', '_' or '-', at most 64",
                key=key,
            )
        if given.setdefault(key, value) != value:
            raise _context_refused(
                f"{key!r} is given two values, {given[key]!r} and {value!r}",
                dimension=key,
                given=[given[key], value],
                **_allowed(policy_set, key),
            )
    if policy_set is not None:
        _resolve(policy_set, given)
    for key, value in given.items():  # a set's dimensions checked theirs already
        if not CONTEXT_NAME.fullmatch(value):
            raise _context_refused(
                f"{value!r} is not a value of {key!r}: letters, digits, '.', '_' or '-', "
                "at most 64",
                dimension=key,
            )
    return given


def _resolve(policy_set: PolicySet, given: Mapping[str, str]) -> None:
    """Refuse (400) a context ``policy_set`` cannot route; no detector is called."""
    names = policy_set.dimension_names
    for key in given:
        if key not in names:
            raise _context_refused(
                f"{key!r} is not a dimension of policy set {policy_set.name!r} "
                f"(dimensions: {', '.join(names)})",
                key=key,
                dimensions=list(names),
            )
    try:
        policy_set.resolve_context(given)
    except ContextError as exc:
        raise refused_context(exc, policy_set) from None


def refused_context(exc: ContextError, policy_set: PolicySet | None) -> HttpError:
    """The 400 for a context a set refused: the dimension and its values."""
    return _context_refused(
        str(exc), dimension=exc.dimension, **_allowed(policy_set, exc.dimension)
    )


# -- the request, the answer: shared with the ASGI example -----------------


def upload_id_of(header: str | None) -> str | None:
    """The ``X-Upload-Id`` header's value, refused (400) unless it is a name."""
    upload_id = header or None
    if upload_id is not None and not UPLOAD_ID.fullmatch(upload_id):
        raise HttpError(400, "X-Upload-Id: letters, digits, '.', '_', ':' or '-', at most 128")
    return upload_id


def declared_length(length_text: str | None, max_bytes: int) -> int:
    """The body's ``Content-Length``, refused before any of the body is read:
    absent (411), not a number or zero (400), over ``max_bytes`` (413)."""
    length_text = length_text or ""
    if not length_text.strip():
        raise HttpError(411, "send the image as the body, with a Content-Length")
    try:
        length = int(length_text)
    except ValueError:
        raise HttpError(400, f"bad Content-Length: {length_text!r}") from None
    if length > max_bytes:
        raise HttpError(413, f"the image is {length} bytes; the limit is {max_bytes}")
    if length <= 0:
        raise HttpError(400, "the body is empty: send the image as the body")
    return length


def image_extension(data: bytes) -> str:
    """The stored file's extension; 415 for a body that is not a JPEG or PNG
    image by its magic bytes: no detector could read it, so it is refused
    rather than held for review."""
    found = sniff_format(data)
    if found not in IMAGE_EXTENSIONS:
        what = f"a {found} file" if found else "not an image this service knows"
        raise HttpError(
            415, f"the body is {what}: send a JPEG or PNG image", details={"format": found}
        )
    return IMAGE_EXTENSIONS[found]


def build_moderator(config: Config) -> Moderator:
    """The service's one :class:`Moderator`, replaying ``config.replay`` if set."""
    return Moderator.from_policy_file(
        config.policy_file,
        shadow=config.shadow_policy_file,
        audit_log=config.audit_log,
        detectors=(
            {"stub": {"recordings": str(config.replay.resolve())}}
            if config.replay is not None
            else None
        ),
    )


def serving_note(moderator: Moderator, config: Config) -> str:
    """The start-up log line: what serves, and whether it replays or calls out."""
    serving = moderator.serving
    source = (
        f"replaying recordings from {config.replay} (stub detector: no AWS calls)"
        if config.replay is not None
        else "calling the policy's own detectors (Rekognition: AWS, with boto3's credentials)"
    )
    return f"policy {serving.name} ({serving.digest}) from {serving.path}, {source}"


def decided_answer(
    config: Config,
    decided: Decision | SetDecision,
    given: Mapping[str, str],
    upload_id: str | None,
    data: bytes,
    extension: str,
) -> tuple[int, dict[str, Any]]:
    """The status and JSON answer for a decision, storing an allowed upload
    in ``store_dir`` (201) and a reviewed one in ``review_dir`` (202); a
    blocked one is not stored (422)."""
    # a set's record names its context (defaults included), route and set, as `check` writes
    answer: dict[str, Any] = {"upload_id": upload_id, **decided.to_dict()}
    if isinstance(decided, SetDecision):
        answer["defaulted"] = [name for name in answer["context"] if name not in given]
    decision = decided.decision if isinstance(decided, SetDecision) else decided
    verdict = decision.verdict.value
    if verdict == "block":
        return 422, answer
    name = f"{hashlib.sha256(data).hexdigest()}{extension}"
    folder = config.store_dir if verdict == "allow" else config.review_dir
    stored = _store(folder, name, data)
    answer["stored"] = str(stored)
    return (201 if verdict == "allow" else 202), answer


def health(moderator: Moderator, config: Config) -> dict[str, Any]:
    """``GET /healthz``: the policy's (or set's) name and digest, a set's
    dimensions and routes."""
    serving = moderator.serving  # one read: name and digest of one policy
    policy_set = serving.engine.policy_set
    return {
        "status": "ok",
        "policy": {"name": serving.name, "digest": serving.digest, "path": serving.path},
        "policy_set": None
        if policy_set is None
        else {
            "name": policy_set.name,
            "digest": serving.digest,
            "dimensions": {
                d.name: {"values": list(d.values), "default": d.default}
                for d in policy_set.dimensions
            },
            "routes": [route.to_dict() for route in policy_set.routes],
        },
        "path_dimension": config.path_dimension,
        "shadow": serving.shadow_digest,
    }


def reloaded(moderator: Moderator) -> tuple[int, dict[str, Any]]:
    """``POST /reload``: 200 with the new digest, or 422 with the errors."""
    result = moderator.reload()
    return (200 if result.ok else 422), result.to_dict()


def error_answer(exc: HttpError) -> dict[str, Any]:
    return {"error": str(exc), **exc.details}


def json_bytes(body: Mapping[str, Any]) -> bytes:
    return (json.dumps(body, ensure_ascii=False) + "\n").encode("utf-8")


def _store(folder: Path, name: str, data: bytes) -> Path:
    """Write atomically: a reader never sees half an upload."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


class UploadService:
    """The WSGI application. Build it once; it is safe for a threaded server."""

    def __init__(self, config: Config, moderator: Moderator | None = None) -> None:
        self.config = config
        self.moderator = moderator if moderator is not None else build_moderator(config)

    def __call__(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        try:
            routes: dict[str, dict[str, Callable[[Environ], tuple[int, dict[str, Any]]]]] = {
                "/upload": {"POST": self.upload},
                "/healthz": {"GET": self.healthz},
                "/reload": {"POST": self.reload},
            }
            segment = path[len(UPLOAD_PREFIX) :] if path.startswith(UPLOAD_PREFIX) else ""
            if segment and "/" not in segment:
                routes[path] = {"POST": lambda environ: self.upload(environ, segment)}
            handlers = routes.get(path)
            if handlers is None:
                raise HttpError(404, f"no such path: {path}")
            handler = handlers.get(method)
            if handler is None:
                allowed = ", ".join(sorted(handlers))
                raise HttpError(405, f"use {allowed} for {path}", [("Allow", allowed)])
            status, body = handler(environ)
            headers: list[tuple[str, str]] = []
        except HttpError as exc:
            status, body, headers = exc.status, error_answer(exc), exc.headers
        except Exception:
            logger.exception("%s %s failed", method, path)
            status, body, headers = 500, {"error": "internal error"}, []
        payload = json_bytes(body)
        start_response(
            STATUS[status],
            [
                ("Content-Type", "application/json; charset=utf-8"),
                ("Content-Length", str(len(payload))),
                *headers,
            ],
        )
        return [payload]

    # -- routes ----------------------------------------------------------

    def upload(self, environ: Environ, path_value: str | None = None) -> tuple[int, dict[str, Any]]:
        upload_id = upload_id_of(environ.get("HTTP_X_UPLOAD_ID"))
        given = request_context(  # before the body is read: a refused context costs nothing
            path_value,
            environ.get("QUERY_STRING", ""),
            self.config.path_dimension,
            self.moderator.serving.engine.policy_set,
        )
        data = self._read_body(environ)
        extension = image_extension(data)
        context = {**given, "upload_id": upload_id} if upload_id else given
        try:
            decided = self.moderator.check_in(data, context=context, name=upload_id or "upload")
        except ContextError as exc:  # a reload since the context was resolved changed the set
            raise refused_context(exc, self.moderator.serving.engine.policy_set) from None
        return decided_answer(self.config, decided, given, upload_id, data, extension)

    def healthz(self, environ: Environ) -> tuple[int, dict[str, Any]]:
        return 200, health(self.moderator, self.config)

    def reload(self, environ: Environ) -> tuple[int, dict[str, Any]]:
        return reloaded(self.moderator)

    def _read_body(self, environ: Environ) -> bytes:
        length = declared_length(environ.get("CONTENT_LENGTH"), self.config.max_bytes)
        stream = environ["wsgi.input"]
        chunks: list[bytes] = []
        remaining = length
        while remaining > 0:
            chunk = stream.read(min(remaining, 64 * 1024))
            if not chunk:
                raise HttpError(400, f"the body ended {remaining} bytes short of Content-Length")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)


def create_app(config: Config | None = None) -> UploadService:
    return UploadService(config if config is not None else Config.from_env())


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """One thread per request; the moderator is shared by them all."""

    daemon_threads = True
    # socketserver's default backlog of 5 drops the SYNs of a burst of
    # uploads, and each dropped one waits a second for its retransmit.
    request_queue_size = socket.SOMAXCONN


def server_arguments(description: str, argv: list[str] | None) -> argparse.Namespace:
    """``--host`` and ``--port`` (default ``HOST``, ``PORT``, else 127.0.0.1:8000);
    sets up the log a server writes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return args


def main(argv: list[str] | None = None) -> int:
    args = server_arguments("An example upload service with moderation.", argv)
    app = create_app()
    logger.info("%s", serving_note(app.moderator, app.config))
    with make_server(args.host, args.port, app, server_class=ThreadingWSGIServer) as server:
        logger.info("listening on http://%s:%d", args.host, args.port)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            app.moderator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
