"""The FastAPI application: every operation of ``spec/tinker-rest.yaml``, plus the spec and docs.

:func:`create_app` wires the routes to a :class:`~tinker_rest.server.store.Store`, an
:class:`~tinker_rest.server.archives.ArchiveBuilder` and a
:class:`~tinker_rest.server.signing.UrlSigner`. Request and response bodies are the pydantic
models generated from the spec (``tinker_rest_models``).

Cross-cutting behaviour lives in two ASGI middlewares and the error handlers here:

- :class:`RequestIdMiddleware` gives every response an ``x-request-id`` and turns an unhandled
  exception into a logged JSON 500 that carries it.
- :class:`~tinker_rest.server.idempotency.IdempotencyMiddleware` replays the first response to a
  repeated ``X-Idempotency-Key``.
- Every error body is ``{"detail": "..."}``; invalid input is a 400 naming the field (never a
  422); unknown routes are JSON 404s; a wrong method is a 405 with an ``Allow`` header listing
  every method of the path.

The server serves the source spec itself at ``/openapi.yaml`` and ``/openapi.json`` and a
self-contained docs page at ``/docs``; FastAPI's own generated schema is switched off.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import functools
import html
import importlib.resources
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from functools import cache
from typing import Annotated, Any, TypeVar

import tinker_rest_models as m
import yaml
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tinker_rest.server.archives import ArchiveBuilder, iter_file, parse_range
from tinker_rest.server.idempotency import IdempotencyMiddleware
from tinker_rest.server.signing import UrlSigner
from tinker_rest.server.store import AUDIT_EVENT_PREFIXES, Caller, Store, StoreError

log = logging.getLogger("tinker_rest.server")

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

# `make generate` puts a copy of spec/tinker-rest.yaml beside the models made from it.
SPEC_RESOURCE = importlib.resources.files("tinker_rest_models") / "tinker-rest.yaml"
ARCHIVE_ID = re.compile(r"[A-Za-z0-9_-]+")
SIGNATURE = re.compile(r"[0-9a-f]+")
INTEGER = re.compile(r"-?[0-9]+")
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
INT64 = (-(2**63), 2**63 - 1)
JSON_WHITESPACE = b" \t\n\r"


class ApiError(Exception):
    """An HTTP error answered as ``{"detail": ...}`` with optional extra headers."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    """The one shape of every error: ``{"detail": "..."}``."""
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


# --- the spec and the docs page -------------------------------------------------------------


@cache
def spec_text() -> str:
    """The source spec, ``spec/tinker-rest.yaml``, as text."""
    return SPEC_RESOURCE.read_text(encoding="utf-8")


@cache
def spec_document() -> dict[str, Any]:
    """The source spec parsed into JSON-compatible data."""
    document = yaml.safe_load(spec_text())
    assert isinstance(document, dict)
    return document


def docs_page() -> str:
    """A self-contained HTML page describing every operation of the spec (no CDN)."""
    spec = spec_document()
    info = spec.get("info", {})
    rows = []
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if method not in {"get", "post", "put", "delete", "head", "patch"}:
                continue
            statuses = ", ".join(str(code) for code in op.get("responses", {}))
            rows.append(
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td><b>{}</b><br>{}</td>"
                "<td>{}</td></tr>".format(
                    method.upper(),
                    html.escape(path),
                    html.escape(op.get("summary", "")),
                    html.escape(op.get("description", "")).replace("\n", "<br>"),
                    html.escape(statuses),
                )
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(info.get('title', 'API'))}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{vertical-align:top;padding:.4em;"
        "border-bottom:1px solid #ddd}</style></head><body>"
        f"<h1>{html.escape(info.get('title', ''))} {html.escape(str(info.get('version', '')))}</h1>"
        f"<p>{html.escape(info.get('summary', ''))}</p>"
        "<p>The machine-readable spec: <a href='openapi.yaml'>openapi.yaml</a>, "
        "<a href='openapi.json'>openapi.json</a>.</p>"
        f"<pre>{html.escape(info.get('description', ''))}</pre>"
        "<table><tr><th>Method</th><th>Path</th><th>What</th><th>Statuses</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )


# --- request id and 500s --------------------------------------------------------------------


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


# --- input parsing: 400 with the field named ------------------------------------------------


def int_param(
    name: str, raw: str | None, *, default: int, minimum: int, maximum: int | None
) -> int:
    """Parse an integer query parameter strictly; out of range or malformed is a 400."""
    if raw is None:
        return default
    if not INTEGER.fullmatch(raw):
        raise ApiError(400, f"{name}: must be an integer, not {raw!r}")
    value = int(raw)
    if maximum is None and value < minimum:
        raise ApiError(400, f"{name}: must be at least {minimum}")
    if maximum is not None and not minimum <= value <= maximum:
        raise ApiError(400, f"{name}: must be between {minimum} and {maximum}")
    return value


def choice_param(name: str, raw: str | None, choices: tuple[str, ...], default: str) -> str:
    """Parse an enum query parameter; anything else is a 400 listing the choices."""
    if raw is None:
        return default
    if raw not in choices:
        raise ApiError(400, f"{name}: must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def _validation_detail(exc: ValidationError | RequestValidationError) -> str:
    """``"<field>: <what is wrong>"`` for the first error of a validation failure."""
    errors = exc.errors()
    if not errors:
        return "request: invalid"
    first = errors[0]
    where = ("body", "query", "path", "header")
    loc = [str(part) for part in first.get("loc", ()) if part not in where]
    return f"{'.'.join(loc) or 'body'}: {first.get('msg', 'invalid')}"


async def _json_object(request: Request, *, required: bool) -> dict[str, Any] | None:
    raw = await request.body()
    if not raw.strip(JSON_WHITESPACE):
        if required:
            raise ApiError(400, "body: a JSON object is required")
        return None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "body: not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body: must be a JSON object")
    return data


def _validate(model: type[M], data: dict[str, Any], nullable: frozenset[str]) -> M:
    """Validate ``data`` as the spec says: strict types, no null for a non-nullable field.

    JSON Schema counts ``3600.0`` as an integer, so integral floats become ints first.
    """
    for name, value in data.items():
        if value is None and name in model.model_fields and name not in nullable:
            raise ApiError(400, f"{name}: must not be null")
    cleaned = {
        name: int(value) if isinstance(value, float) and value.is_integer() else value
        for name, value in data.items()
    }
    try:
        # As JSON, so that strict mode still takes enum values and date-time strings.
        return model.model_validate_json(json.dumps(cleaned), strict=True)
    except ValidationError as exc:
        raise ApiError(400, _validation_detail(exc)) from None


def required_body(
    model: type[M], nullable: frozenset[str] = frozenset()
) -> Callable[[Request], Awaitable[M]]:
    """A dependency parsing a required JSON object body strictly into ``model``."""

    async def dependency(request: Request) -> M:
        data = await _json_object(request, required=True)
        assert data is not None
        return _validate(model, data, nullable)

    return dependency


def optional_body(model: type[M]) -> Callable[[Request], Awaitable[M | None]]:
    """A dependency parsing an optional JSON object body strictly into ``model``."""

    async def dependency(request: Request) -> M | None:
        data = await _json_object(request, required=False)
        return None if data is None else _validate(model, data, frozenset())

    return dependency


# --- auth and the shared parameters --------------------------------------------------------


# The thread pool that the hottest reads (a key lookup, get_training_run) go to from coroutines.
# An asyncio executor hop costs about a third of anyio's `run_in_threadpool` (which FastAPI uses
# for plain functions), and a few threads contend less for the GIL than anyio's 40: with it, the
# server figure of `make bench` (get_training_run against healthz, 64 clients) went from 0.52 to
# 0.66 (medians of 4 paired repeats).
DB_READ_THREADS = 8


async def in_db_thread(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on the app's database threads, awaited."""
    loop = asyncio.get_running_loop()
    pool: concurrent.futures.ThreadPoolExecutor = request.app.state.db_threads
    return await loop.run_in_executor(pool, functools.partial(fn, *args, **kwargs))


async def require_caller(
    request: Request,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
) -> Caller:
    """The caller behind ``X-API-Key``; a missing, unknown or revoked key is a 401.

    A coroutine: a key seen in the last few seconds is answered from the store's memory on the
    event loop, without a hop to a worker thread; any other key is looked up in the database
    on a worker thread, so the loop never waits on it.
    """
    store: Store = request.app.state.store
    caller = store.recent_caller(x_api_key)
    if caller is None:
        caller = await in_db_thread(request, store.authenticate, x_api_key)
    if caller is None:
        raise ApiError(401, "Invalid or missing API key")
    return caller


def _leaf_routes(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, with those of included routers (FastAPI keeps an included router as one
    entry, ``original_router``, and the included routers here have no prefix)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _leaf_routes(included.routes)
        else:
            yield route


def _query_names(dependant: Dependant) -> set[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def reject_unknown_query(request: Request) -> None:
    """A 400 for query parameters the operation does not declare (the spec allows none)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _query_names(dependant)
    for name in request.query_params:
        if name not in known:
            raise ApiError(400, f"{name or '(empty)'}: unknown query parameter")


Authed = Annotated[Caller, Depends(require_caller)]
Scope_ = Annotated[str | None, Query(alias="access_scope")]
Limit = Annotated[str | None, Query(alias="limit")]
Offset = Annotated[str | None, Query(alias="offset")]


# --- the application ------------------------------------------------------------------------


def create_app(
    store: Store,
    builder: ArchiveBuilder,
    signer: UrlSigner,
    *,
    archive_url_ttl: int = 900,
) -> FastAPI:
    """Build the ASGI app serving every operation of the spec over ``store``."""
    app = FastAPI(
        title="Tinker REST reference server",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(reject_unknown_query)],
    )
    app.router.redirect_slashes = False
    app.state.store = store
    app.state.signer = signer
    app.state.db_threads = concurrent.futures.ThreadPoolExecutor(
        DB_READ_THREADS, thread_name_prefix="tinker-rest-db"
    )

    # --- errors -----------------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.detail, exc.headers)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> Response:
        return error_response(exc.status, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_response(400, _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(404, "Not found")
        if exc.status_code == 405:
            matched = [
                route
                for route in _leaf_routes(app.routes)
                if route.matches({**request.scope, "method": "GET"})[0] != Match.NONE
            ]
            # A literal path (/sessions/search) is its own resource, not a value of a
            # parameter of another (/sessions/{session_id}).
            literal = [r for r in matched if getattr(r, "path", None) == request.url.path]
            methods: set[str] = set()
            for route in literal or matched:
                methods |= getattr(route, "methods", None) or set()
            allow = ", ".join(sorted(methods))
            return error_response(405, "Method not allowed", {"Allow": allow})
        return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    def scope_of(raw: str | None) -> str:
        return choice_param("access_scope", raw, ("owned", "accessible"), "owned")

    def offset_of(raw: str | None) -> int:
        return int_param("offset", raw, default=0, minimum=0, maximum=None)

    # --- spec, docs, health ------------------------------------------------------------------

    @app.get("/openapi.yaml", include_in_schema=False)
    def openapi_yaml() -> Response:
        """The source spec as YAML. ``GET /openapi.yaml``"""
        return PlainTextResponse(spec_text(), media_type="application/yaml")

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_json() -> Response:
        """The source spec as JSON. ``GET /openapi.json``"""
        return JSONResponse(spec_document())

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        """A docs page generated from the source spec. ``GET /docs``"""
        return HTMLResponse(docs_page())

    @app.get("/api/v1/healthz", response_model=m.HealthResponse)
    def healthz() -> m.HealthResponse:
        """Answer while the service can serve requests. ``GET /api/v1/healthz``"""
        return m.HealthResponse(status="ok")

    # --- client endpoints --------------------------------------------------------------------

    @app.post("/api/v1/client/config", response_model=m.ClientConfigResponse)
    def client_config(
        caller: Authed,
        body: Annotated[m.ClientConfigRequest, Depends(required_body(m.ClientConfigRequest))],
    ) -> dict[str, Any]:
        """SDK configuration; empty means defaults. ``POST /api/v1/client/config``"""
        return {}

    @app.post("/api/v1/client/dynamic_config", response_model=m.ClientConfigResponse)
    def client_dynamic_config(
        caller: Authed,
        body: Annotated[
            m.ClientConfigRequest | None, Depends(optional_body(m.ClientConfigRequest))
        ],
    ) -> dict[str, Any]:
        """Refreshable SDK configuration. ``POST /api/v1/client/dynamic_config``"""
        return {}

    @app.post("/api/v1/telemetry", response_model=m.TelemetryResponse)
    def telemetry(
        caller: Authed,
        body: Annotated[m.TelemetryRequest | None, Depends(optional_body(m.TelemetryRequest))],
    ) -> dict[str, Any]:
        """Accept a telemetry batch without looking at it. ``POST /api/v1/telemetry``"""
        return {"status": "accepted"}

    # --- training runs -----------------------------------------------------------------------

    @app.get("/api/v1/training_runs", response_model=m.TrainingRunsResponse)
    def list_training_runs(
        caller: Authed,
        limit: Limit = None,
        offset: Offset = None,
        access_scope: Scope_ = None,
        project_id: Annotated[str | None, Query(min_length=1)] = None,
    ) -> dict[str, Any]:
        """One page of training runs, most recently used first. ``GET /api/v1/training_runs``"""
        lim = int_param("limit", limit, default=20, minimum=1, maximum=1000)
        off = offset_of(offset)
        runs, total = store.list_training_runs(
            caller, limit=lim, offset=off, scope=scope_of(access_scope), project_id=project_id
        )
        return {
            "training_runs": runs,
            "cursor": {"offset": off, "limit": lim, "total_count": total},
        }

    @app.get("/api/v1/training_runs/{training_run_id}", response_model=m.TrainingRun)
    async def get_training_run(
        request: Request, caller: Authed, training_run_id: str, access_scope: Scope_ = None
    ) -> dict[str, Any]:
        """One training run. ``GET /api/v1/training_runs/{training_run_id}``

        A coroutine that sends only the store call to a database thread: FastAPI runs a plain
        function and then the validation of its response as two hops to its thread pool, and
        on this, the hottest read, the hops cost more than the query.
        """
        scope = scope_of(access_scope)
        return await in_db_thread(
            request, store.get_training_run, caller, training_run_id, scope=scope
        )

    # --- checkpoints -------------------------------------------------------------------------

    ckpt_path = (
        "/api/v1/training_runs/{training_run_id}/checkpoints/{checkpoint_kind}/{checkpoint_name}"
    )

    @app.get(
        "/api/v1/training_runs/{training_run_id}/checkpoints",
        response_model=m.CheckpointsListResponse,
    )
    def list_checkpoints(caller: Authed, training_run_id: str) -> dict[str, Any]:
        """A run's checkpoints, oldest first, not paginated.
        ``GET /api/v1/training_runs/{training_run_id}/checkpoints``"""
        return {"checkpoints": store.list_checkpoints(caller, training_run_id), "cursor": None}

    @app.delete(ckpt_path, status_code=204, response_class=Response)
    def delete_checkpoint(
        caller: Authed,
        training_run_id: str,
        checkpoint_kind: m.CheckpointKind,
        checkpoint_name: str,
    ) -> Response:
        """Delete an owned checkpoint and its files. ``DELETE …/checkpoints/{kind}/{name}``"""
        store.delete_checkpoint(caller, training_run_id, checkpoint_kind.value, checkpoint_name)
        return Response(status_code=204)

    @app.post(ckpt_path + "/publish", status_code=204, response_class=Response)
    def publish_checkpoint(
        caller: Authed,
        training_run_id: str,
        checkpoint_kind: m.CheckpointKind,
        checkpoint_name: str,
    ) -> Response:
        """Make an owned checkpoint public. ``POST …/checkpoints/{kind}/{name}/publish``"""
        store.set_public(caller, training_run_id, checkpoint_kind.value, checkpoint_name, True)
        return Response(status_code=204)

    @app.delete(ckpt_path + "/publish", status_code=204, response_class=Response)
    def unpublish_checkpoint(
        caller: Authed,
        training_run_id: str,
        checkpoint_kind: m.CheckpointKind,
        checkpoint_name: str,
    ) -> Response:
        """Make an owned checkpoint private. ``DELETE …/checkpoints/{kind}/{name}/publish``"""
        store.set_public(caller, training_run_id, checkpoint_kind.value, checkpoint_name, False)
        return Response(status_code=204)

    @app.put(ckpt_path + "/ttl", status_code=204, response_class=Response)
    def set_checkpoint_ttl(
        caller: Authed,
        training_run_id: str,
        checkpoint_kind: m.CheckpointKind,
        checkpoint_name: str,
        body: Annotated[
            m.SetCheckpointTtlRequest,
            Depends(required_body(m.SetCheckpointTtlRequest, frozenset({"ttl_seconds"}))),
        ],
    ) -> Response:
        """Set or remove an owned checkpoint's expiry. ``PUT …/checkpoints/{kind}/{name}/ttl``"""
        store.set_ttl(
            caller, training_run_id, checkpoint_kind.value, checkpoint_name, body.ttl_seconds
        )
        return Response(status_code=204)

    @app.get(ckpt_path + "/archive", response_model=m.CheckpointArchiveUrlResponse)
    def get_checkpoint_archive_url(
        request: Request,
        caller: Authed,
        training_run_id: str,
        checkpoint_kind: m.CheckpointKind,
        checkpoint_name: str,
    ) -> dict[str, Any]:
        """A signed URL for the checkpoint's tar archive; 503 while it is being built.
        ``GET …/checkpoints/{kind}/{name}/archive``"""
        files = store.checkpoint_files(
            caller, training_run_id, checkpoint_kind.value, checkpoint_name
        )
        built = builder.request(files)
        if built is None:
            raise ApiError(503, "The archive is being built", {"Retry-After": "1"})
        expires = int(time.time()) + archive_url_ttl
        path = f"/api/v1/storage/archives/{built.archive_id}"
        base = str(request.base_url).rstrip("/")
        expires_at = dt.datetime.fromtimestamp(expires, dt.UTC)
        store.audit_archive_url(caller, files.tinker_path, training_run_id)
        return {
            "url": f"{base}{path}?{signer.sign(path, expires)}",
            "expires": expires_at,
            "expires_at": expires_at,
        }

    @app.post("/api/v1/weights_info", response_model=m.WeightsInfoResponse)
    def get_weights_info(
        caller: Authed,
        body: Annotated[m.WeightsInfoRequest, Depends(required_body(m.WeightsInfoRequest))],
    ) -> dict[str, Any]:
        """The model behind an accessible or published checkpoint. ``POST /api/v1/weights_info``"""
        return store.weights_info(caller, body.tinker_path)

    @app.get("/api/v1/checkpoints", response_model=m.CheckpointsListResponse)
    def list_user_checkpoints(
        caller: Authed, limit: Limit = None, offset: Offset = None
    ) -> dict[str, Any]:
        """One page of the caller's checkpoints, newest first. ``GET /api/v1/checkpoints``"""
        lim = int_param("limit", limit, default=100, minimum=1, maximum=1000)
        off = offset_of(offset)
        ckpts, total = store.list_user_checkpoints(caller, limit=lim, offset=off)
        return {"checkpoints": ckpts, "cursor": {"offset": off, "limit": lim, "total_count": total}}

    # --- sessions and samplers ---------------------------------------------------------------

    @app.get("/api/v1/sessions", response_model=m.ListSessionsResponse)
    def list_sessions(
        caller: Authed, limit: Limit = None, offset: Offset = None, access_scope: Scope_ = None
    ) -> dict[str, Any]:
        """One page of session ids, newest first. ``GET /api/v1/sessions``"""
        lim = int_param("limit", limit, default=20, minimum=1, maximum=1000)
        sessions = store.list_sessions(
            caller, limit=lim, offset=offset_of(offset), scope=scope_of(access_scope)
        )
        return {"sessions": sessions}

    @app.get("/api/v1/sessions/{session_id}", response_model=m.GetSessionResponse)
    def get_session(caller: Authed, session_id: str, access_scope: Scope_ = None) -> dict[str, Any]:
        """A session with its run and sampler ids. ``GET /api/v1/sessions/{session_id}``"""
        return store.get_session(caller, session_id, scope=scope_of(access_scope))

    @app.put("/api/v1/sessions/{session_id}/project", status_code=204, response_class=Response)
    def assign_session_project(
        caller: Authed,
        session_id: str,
        body: Annotated[
            m.AssignSessionProjectRequest, Depends(required_body(m.AssignSessionProjectRequest))
        ],
    ) -> Response:
        """Move an owned session into a project. ``PUT /api/v1/sessions/{session_id}/project``"""
        store.assign_session_project(caller, session_id, body.project_id)
        return Response(status_code=204)

    @app.get("/api/v1/samplers/{sampler_id}", response_model=m.GetSamplerResponse)
    def get_sampler(caller: Authed, sampler_id: str) -> dict[str, Any]:
        """A sampler. ``GET /api/v1/samplers/{sampler_id}``"""
        return store.get_sampler(caller, sampler_id)

    # --- audit log ---------------------------------------------------------------------------

    @app.get("/api/v1/audit", response_model=m.AuditLogResponse)
    def get_audit_log(
        caller: Authed,
        event_type: Annotated[str | None, Query()] = None,
        day: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        """One UTC day of the organization's audit log; admins only. ``GET /api/v1/audit``"""
        kind = choice_param("event_type", event_type, tuple(AUDIT_EVENT_PREFIXES), "all")
        if day is None:
            when = dt.datetime.now(dt.UTC).date()
        else:
            try:
                if not DAY.fullmatch(day):
                    raise ValueError(day)
                when = dt.date.fromisoformat(day)
            except ValueError:
                raise ApiError(400, f"day: must be a date YYYY-MM-DD, not {day!r}") from None
        return {"entries": store.audit_log(caller, day=when, event_type=kind)}

    # --- signed downloads --------------------------------------------------------------------

    @app.api_route("/api/v1/storage/archives/{archive_id}", methods=["GET", "HEAD"])
    def download_archive(
        request: Request,
        archive_id: str,
        expires: Annotated[str | None, Query()] = None,
        signature: Annotated[str | None, Query()] = None,
        range_header: Annotated[str | None, Header(alias="Range")] = None,
    ) -> Response:
        """Serve an archive behind a signed URL, whole or one byte range; no API key.
        ``GET``/``HEAD /api/v1/storage/archives/{archive_id}``"""
        if not ARCHIVE_ID.fullmatch(archive_id):
            raise ApiError(400, "archive_id: must match ^[A-Za-z0-9_-]+$")
        if expires is None or not INTEGER.fullmatch(expires):
            raise ApiError(400, "expires: an integer (Unix seconds) is required")
        expires_at = int(expires)
        if not INT64[0] <= expires_at <= INT64[1]:
            raise ApiError(400, "expires: out of range")
        if signature is None or not SIGNATURE.fullmatch(signature):
            raise ApiError(400, "signature: lowercase hex is required")
        path = f"/api/v1/storage/archives/{archive_id}"
        if not signer.verify(path, expires_at, signature):
            raise ApiError(403, "The download URL is invalid or has expired")
        found = store.downloadable_archive(archive_id)
        if found is None:
            raise ApiError(404, "Archive not found")
        file_path, size = found
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/x-tar"}
        if request.method == "HEAD":
            return Response(status_code=200, headers={**headers, "Content-Length": str(size)})
        wanted = parse_range(range_header, size)
        if wanted == "unsatisfiable":
            raise ApiError(416, "Range not satisfiable", {"Content-Range": f"bytes */{size}"})
        if wanted is None or isinstance(wanted, str):
            first, last, status = 0, size - 1, 200
        else:
            first, last = wanted
            status = 206
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        length = max(last - first + 1, 0)
        headers["Content-Length"] = str(length)
        return StreamingResponse(
            iter_file(file_path, first, length),
            status_code=status,
            headers=headers,
            media_type="application/x-tar",
        )

    # The operations beyond the seed, one router per resource (they import this module).
    from tinker_rest.server.beyond.routes import router as beyond_router

    app.include_router(beyond_router)

    app.add_middleware(IdempotencyMiddleware, store=store)
    app.add_middleware(RequestIdMiddleware)
    return app
