"""The FastAPI application: every operation of ``spec/tinker-rest.yaml``, plus the spec and docs.

:func:`create_app` includes one router per resource (``api/routes/*.py``) and puts the app's
shared parts in ``app.state``: the :class:`~tinker_rest.server.store.Store`, the
:class:`~tinker_rest.server.archives.ArchiveBuilder`, the
:class:`~tinker_rest.server.signing.UrlSigner` and the public base URL of signed links.

Cross-cutting rules, each in one place:

- request bodies are bounded before they are buffered (``max_body_size``, Starlette's limit):
  beyond :data:`MAX_BODY_BYTES` the answer is a 413 and the rest is never read;
- :class:`RequestIdMiddleware` gives every response an ``x-request-id`` and turns an unhandled
  exception into a logged JSON 500 that carries it;
- every error body is ``{"detail": "..."}``: :class:`~tinker_rest.server.errors.ApiError`
  from anywhere, invalid input as a 400 naming the field (never a 422), unknown routes as JSON
  404s, a wrong method as a 405 with an ``Allow`` header listing every method of the path;
- a busy SQLite database ("database is locked" after the busy timeout) is a 503 with
  ``Retry-After``, so a client retries instead of waiting;
- a request with a recorded ``X-Idempotency-Key`` is answered by the recorded response
  (:class:`~tinker_rest.server.idempotency.Replay`).

The server serves the source spec itself at ``/openapi.yaml`` and ``/openapi.json`` and a
self-contained docs page at ``/docs``; FastAPI's own generated schema is switched off.
"""

from __future__ import annotations

import concurrent.futures
import logging
import uuid
from collections.abc import Iterator

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tinker_rest.server.api.deps import (
    DB_READ_THREADS,
    check_idempotency_key,
    reject_unknown_query,
    validation_detail,
)
from tinker_rest.server.api.routes import (
    audit,
    auth,
    billing,
    capabilities,
    checkpoints,
    client,
    meta,
    samplers,
    sessions,
    storage,
    training_runs,
)
from tinker_rest.server.archives import ArchiveBuilder
from tinker_rest.server.errors import ApiError, Unavailable, error_response
from tinker_rest.server.idempotency import Replay
from tinker_rest.server.signing import UrlSigner
from tinker_rest.server.store import Store
from tinker_rest.server.writer import GroupCommitWriter

log = logging.getLogger("tinker_rest.server")

# The largest request body: API calls send a few hundred bytes of JSON; 1 MiB leaves room for
# big telemetry batches and metadata while a flood of huge bodies cannot fill memory.
MAX_BODY_BYTES = 1 << 20

METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
ROUTERS = (
    meta.router,
    client.router,
    training_runs.router,
    checkpoints.router,
    sessions.router,
    samplers.router,
    audit.router,
    storage.router,
    auth.router,
    capabilities.router,
    billing.router,
)


class RequestIdMiddleware:
    """Adds ``x-request-id`` to every response; logs an unhandled error and answers a JSON 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unhandled error in %s %s (request id %s)",
                scope.get("method"),
                scope.get("path"),
                request_id,
            )
            if started:
                raise
            response = error_response(500, f"Internal server error (request id {request_id})")
            await response(scope, receive, send_with_id)


def is_busy(exc: OperationalError) -> bool:
    """Whether a database error says another writer holds the lock (SQLite's busy timeout)."""
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text


def leaf_routes(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, with those of included routers.

    FastAPI keeps an included router as one entry (its ``original_router``), so the paths of
    its routes are only seen by walking into it; the routers here take no prefix at inclusion.
    """
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from leaf_routes(included.routes)
        else:
            yield route


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> list[str]:
    """The methods the path of ``scope`` takes, for a 405's ``Allow`` header.

    A literal path (``/api/v1/sessions/search``) is its own resource, not a value of another
    route's parameter (``/api/v1/sessions/{session_id}``): when one matches, only its methods count.
    """
    leaves = list(leaf_routes(routes))
    for literal_only in (True, False):
        allowed = [
            method
            for method in METHODS
            if any(
                route.matches({**scope, "method": method})[0] == Match.FULL
                and (not literal_only or getattr(route, "path", None) == scope["path"])
                for route in leaves
            )
        ]
        if allowed:
            return allowed
    return []


def create_app(
    store: Store,
    builder: ArchiveBuilder,
    signer: UrlSigner,
    *,
    archive_url_ttl: int = 900,
    public_url: str | None = None,
) -> FastAPI:
    """Build the ASGI app serving every operation of the spec over ``store``.

    Args:
        store: the domain service every route calls.
        builder: builds checkpoint archives for signed downloads.
        signer: signs and checks download URLs.
        archive_url_ttl: how long a signed URL stays valid, in seconds.
        public_url: the base of signed URLs (``https://tinker.example``); None uses the
            address the server is bound to.
    """
    app = FastAPI(
        title="Tinker REST reference server",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(reject_unknown_query), Depends(check_idempotency_key)],
        max_body_size=MAX_BODY_BYTES,
    )
    app.router.redirect_slashes = False
    app.state.store = store
    app.state.builder = builder
    app.state.signer = signer
    app.state.archive_url_ttl = archive_url_ttl
    app.state.public_url = public_url
    app.state.db_threads = concurrent.futures.ThreadPoolExecutor(
        DB_READ_THREADS, thread_name_prefix="tinker-rest-db"
    )
    app.state.db_writer = (
        GroupCommitWriter(store) if store.engine.dialect.name == "sqlite" else app.state.db_threads
    )
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return exc.response()

    @app.exception_handler(Replay)
    async def _replay(request: Request, exc: Replay) -> Response:
        return exc.stored.replay()

    @app.exception_handler(OperationalError)
    async def _database_error(request: Request, exc: OperationalError) -> Response:
        if not is_busy(exc):
            raise exc
        return Unavailable("The database is busy; try again").response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_response(400, validation_detail(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(404, "Not found")
        if exc.status_code == 405:
            allow = ", ".join(allowed_methods(app.routes, request.scope))
            return error_response(405, "Method not allowed", {"Allow": allow})
        return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    app.add_middleware(RequestIdMiddleware)
    return app
