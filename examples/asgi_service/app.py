"""The upload service example on ASGI: Starlette, served by uvicorn.

The same requests and answers as the WSGI example
(``examples/upload_service/app.py``, whose request and answer helpers it
uses): ``POST /upload/<surface>`` and ``POST /upload`` (201 allow, 202
review, 422 block; 400 for a context the set cannot route, 411/413 before
the body is read, 415 for a body that is not a JPEG or PNG), ``GET /healthz``
and ``POST /reload``, every answer JSON.

The app's lifespan builds the one :class:`policy_engine.Moderator` at
start-up (off the event loop: loading compiles the policy) and closes it on
shutdown; uploads are decided with ``await moderator.acheck_in(...)``, so the
event loop never waits on a detector, and at most the moderator's
``concurrency`` decisions run at once.

Run it with ``python -m examples.asgi_service`` from the repository root, or
``uvicorn --factory examples.asgi_service.app:create_app``. Configuration is
the WSGI example's environment (:meth:`Config.from_env`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from examples.upload_service.app import (
    Config,
    HttpError,
    build_moderator,
    decided_answer,
    declared_length,
    error_answer,
    health,
    image_extension,
    json_bytes,
    refused_context,
    reloaded,
    request_context,
    server_arguments,
    serving_note,
    upload_id_of,
)
from policy_engine import Moderator
from policy_engine.errors import ContextError

logger = logging.getLogger("asgi_service")


def json_response(
    status: int, body: dict[str, Any], headers: Iterable[tuple[str, str]] = ()
) -> Response:
    return Response(
        json_bytes(body),
        status_code=status,
        media_type="application/json; charset=utf-8",
        headers=dict(headers),
    )


def _moderator(request: Request) -> Moderator:
    moderator: Moderator = request.app.state.moderator
    return moderator


def _config(request: Request) -> Config:
    config: Config = request.app.state.config
    return config


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, after its ``Content-Length`` was checked (411/400/413 before
    any of it is read)."""
    length = declared_length(request.headers.get("content-length"), max_bytes)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        received += len(chunk)
    if received < length:
        raise HttpError(400, f"the body ended {length - received} bytes short of Content-Length")
    return b"".join(chunks)


async def upload(request: Request) -> Response:
    moderator, config = _moderator(request), _config(request)
    upload_id = upload_id_of(request.headers.get("x-upload-id"))
    given = request_context(  # before the body is read: a refused context costs nothing
        request.path_params.get("segment"),
        request.url.query,
        config.path_dimension,
        moderator.serving.engine.policy_set,
    )
    data = await read_body(request, config.max_bytes)
    extension = image_extension(data)
    context = {**given, "upload_id": upload_id} if upload_id else given
    try:
        decided = await moderator.acheck_in(data, context=context, name=upload_id or "upload")
    except ContextError as exc:  # a reload since the context was resolved changed the set
        raise refused_context(exc, moderator.serving.engine.policy_set) from None
    status, answer = await run_in_threadpool(  # it writes the file
        decided_answer, config, decided, given, upload_id, data, extension
    )
    return json_response(status, answer)


async def healthz(request: Request) -> Response:
    return json_response(200, health(_moderator(request), _config(request)))


async def reload(request: Request) -> Response:
    status, answer = await run_in_threadpool(reloaded, _moderator(request))
    return json_response(status, answer)


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return json_response(exc.status, error_answer(exc), exc.headers)


async def not_routed(request: Request, exc: Exception) -> Response:
    """Starlette's 404 and 405, in the WSGI example's words and as JSON."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = f"no such path: {path}"
    elif exc.status_code == 405:
        message = f"use {headers.get('Allow', '')} for {path}"
    else:
        message = str(exc.detail)
    return json_response(exc.status_code, {"error": message}, headers.items())


async def failed(request: Request, exc: Exception) -> Response:
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return json_response(500, {"error": "internal error"})


def create_app(config: Config | None = None) -> Starlette:
    """The app; its moderator is built when the server starts the lifespan,
    and is ``app.state.moderator`` until it stops."""
    chosen = config if config is not None else Config.from_env()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        moderator = await run_in_threadpool(build_moderator, chosen)
        app.state.moderator = moderator
        logger.info("%s", serving_note(moderator, chosen))
        try:
            yield
        finally:
            moderator.close()  # after the server has finished its requests

    app = Starlette(
        routes=[
            Route("/upload", upload, methods=["POST"]),
            Route("/upload/{segment}", upload, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/reload", reload, methods=["POST"]),
        ],
        exception_handlers={HttpError: refused, HTTPException: not_routed, Exception: failed},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # /upload/ names no surface: 404, as in WSGI
    app.state.config = chosen
    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn  # the server only; the app needs Starlette alone

    args = server_arguments("The example upload service, on ASGI.", argv)
    uvicorn.run(create_app(), host=args.host, port=args.port)
    return 0
