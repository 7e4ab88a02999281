"""The FastAPI application: API key, body-size limit, CORS, error mapping, the A1111 and native routers,
the progress stream and the gallery page."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import MlDiffusionError
from .errors import ApiError, api_error, error_response, library_error
from .limits import ServerLimits
from .state import ServerState
from .worker import Worker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ..facade import ImageGenerator

__all__ = ["create_app"]


class BodyLimit:
    """ASGI middleware: a body over ``max_body`` bytes (declared or sent) is refused with 413 before any
    route reads it."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = error_response(413, f"The request body is over {self.max_body} bytes.", "BodyTooLarge")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await too_big(scope, receive, send)
            return
        messages: list[Message] = []  # read (at most max_body bytes) before the app sees any of it
        seen, more = 0, True
        while more:
            message = await receive()
            messages.append(message)
            seen += len(message.get("body", b""))
            more = message["type"] == "http.request" and bool(message.get("more_body"))
            if seen > self.max_body:
                await too_big(scope, receive, send)
                return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def create_app(
    generator: ImageGenerator,
    *,
    api_key: str | None = None,
    cors_origins: Sequence[str] = (),
    limits: ServerLimits | None = None,
) -> FastAPI:
    """The service over ``generator`` (one worker, FIFO); every route needs ``api_key`` when it is set."""
    from . import a1111, native, stream
    from .page import add_page

    limits = limits or ServerLimits(generation=generator.settings.limits)
    worker = Worker(generator)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker.warm_up()
        yield
        worker.close()

    app = FastAPI(title="ml-diffusion", version="1", lifespan=lifespan)
    app.state.ml = ServerState(worker, limits)
    app.add_exception_handler(MlDiffusionError, library_error)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    if api_key:
        _require_key(app, api_key)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["*"], allow_headers=["*"]
        )
    app.add_middleware(BodyLimit, max_body=limits.max_body)
    app.include_router(a1111.router)
    app.include_router(native.router)
    app.include_router(stream.router)
    add_page(app)
    return app


def _require_key(app: FastAPI, api_key: str) -> None:
    expected = api_key.encode()

    @app.middleware("http")
    async def check_key(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if not hmac.compare_digest(_given_key(request), expected):
            message = "Missing or wrong API key: send it as X-API-Key, Bearer, or the Basic password."
            refused = error_response(401, message, "Unauthorized")
            refused.headers["WWW-Authenticate"] = 'Basic realm="ml-diffusion"'  # a browser asks for the key
            return refused
        return await call_next(request)


def _given_key(request: Request) -> bytes:
    """The key a request sends: ``X-API-Key``, ``Authorization: Bearer K`` or Basic ``user:K`` (as A1111's
    ``--api-auth`` clients send it)."""
    if given := request.headers.get("x-api-key"):
        return given.encode()
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer":
        return value.encode()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value, validate=True).partition(b":")[2]
        except (binascii.Error, ValueError):
            return b""
    return b""


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return error_response(422, f"{where or 'body'}: {first.get('msg', 'invalid request')}", "ValidationError")
