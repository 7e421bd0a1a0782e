"""The typed dependencies every route declares: the store, the caller, scope, paging, bodies.

Routes take these as ``Annotated`` parameters (``caller: CallerDep``), so each rule lives here
once: authentication (:func:`require_caller`), the idempotency key (:func:`idempotent_request`,
which runs after authentication), the access scope and paging parameters (validated by FastAPI;
a bad value is a 400 naming it), strict JSON bodies (:func:`json_body`), and the rule that an
operation takes no query parameter it does not declare (:func:`reject_unknown_query`, applied
once to the whole app).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import tinker_rest_models as m
from fastapi import Depends, Header, Query, Request
from fastapi.dependencies.models import Dependant
from pydantic import BaseModel, ValidationError

from tinker_rest._paths import TinkerPath
from tinker_rest.server.errors import ApiError, BadRequest, NotFound
from tinker_rest.server.idempotency import HEADER, MAX_KEY_LENGTH, IdempotentRequest, Replay
from tinker_rest.server.store import Caller, Store
from tinker_rest.server.writer import GroupCommitWriter

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


# The thread pool that the hottest reads (a key lookup, get_training_run) go to from coroutines.
# An asyncio executor hop costs about a third of anyio's `run_in_threadpool` (which FastAPI uses
# for plain functions), and a few threads contend less for the GIL than anyio's 40: with it, the
# server figure of `make bench` (get_training_run against healthz, 64 clients) went from 0.52 to
# 0.66 (medians of 4 paired repeats).
DB_READ_THREADS = 8


def store_of(request: Request) -> Store:
    """The app's :class:`Store`."""
    store: Store = request.app.state.store
    return store


async def get_store(request: Request) -> Store:
    """The app's :class:`Store`, as a dependency (a coroutine: FastAPI would run a plain
    function on its thread pool, a hop for every request)."""
    return store_of(request)


StoreDep = Annotated[Store, Depends(get_store)]


async def in_db_thread(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on the app's database threads, awaited."""
    loop = asyncio.get_running_loop()
    pool: concurrent.futures.ThreadPoolExecutor = request.app.state.db_threads
    return await loop.run_in_executor(pool, functools.partial(fn, *args, **kwargs))


async def in_db_writer(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on the app's writer thread (SQLite), alone, awaited.

    SQLite takes one writer at a time, so API writes queue, first come first served, for one
    thread (:class:`~tinker_rest.server.writer.GroupCommitWriter`, which says why with the
    numbers). On PostgreSQL this is the database thread pool.
    """
    loop = asyncio.get_running_loop()
    pool: concurrent.futures.Executor = request.app.state.db_writer
    return await loop.run_in_executor(pool, functools.partial(fn, *args, **kwargs))


async def in_db_write_group(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on the app's writer thread, committed with the writes queued with it.

    ``fn`` is a store write that touches the database only through ``Store.write`` and
    leaves anything that needs its commit to ``_after_commit``. On PostgreSQL this is
    :func:`in_db_writer`.
    """
    pool: concurrent.futures.Executor = request.app.state.db_writer
    if not isinstance(pool, GroupCommitWriter):
        return await in_db_writer(request, fn, *args)
    return await asyncio.wrap_future(pool.submit_grouped(fn, *args))


async def require_caller(
    request: Request,
    store: StoreDep,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
) -> Caller:
    """The caller behind ``X-API-Key``; a missing, unknown or revoked key is a 401.

    A coroutine: a key seen in the last few seconds is answered from the store's memory on the
    event loop, without a hop to a worker thread; any other key is looked up in the database
    on a worker thread, so the loop never waits on it.
    """
    caller = store.recent_caller(x_api_key)
    if caller is None:
        caller = await in_db_thread(request, store.authenticate, x_api_key)
    if caller is None:
        raise ApiError("Invalid or missing API key", status=401)
    return caller


CallerDep = Annotated[Caller, Depends(require_caller)]


IdempotencyKey = Annotated[
    str | None, Header(alias=HEADER, min_length=1, max_length=MAX_KEY_LENGTH)
]


async def check_idempotency_key(key: IdempotencyKey = None) -> None:
    """A 400 for an ``X-Idempotency-Key`` the spec does not allow, on every operation.

    Operations that change nothing record no key, but still refuse a malformed one.
    """


async def idempotent_request(
    request: Request, caller: CallerDep, store: StoreDep, key: IdempotencyKey = None
) -> IdempotentRequest | None:
    """The write's idempotency key with its fingerprint, or None without the header.

    Runs after :func:`require_caller`, so nothing about a key is looked up for an
    unauthenticated request; the body it fingerprints is already bounded by the app's limit.

    Raises:
        Replay: this user already made this request under this key (answer it again).
        Unprocessable: this user used the key for a different request.
    """
    if key is None:
        return None
    body = await request.body()
    idempotent = IdempotentRequest.of(caller.user_id, key, request.method, request.url.path, body)
    stored = await in_db_thread(request, store.stored_response, idempotent)
    if stored is not None:
        raise Replay(stored)
    return idempotent


IdempotencyDep = Annotated[IdempotentRequest | None, Depends(idempotent_request)]
AccessScopeQuery = Annotated[m.AccessScope, Query()]
Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=1000)]


@dataclass(frozen=True)
class ScopedPage:
    """``limit``, ``offset`` and ``access_scope`` of a list of runs or sessions."""

    limit: int
    offset: int
    scope: str


async def scoped_page(
    limit: Limit = 20, offset: Offset = 0, access_scope: AccessScopeQuery = m.AccessScope.owned
) -> ScopedPage:
    """The page and scope a list operation asks for (20 items unless ``limit`` says)."""
    return ScopedPage(limit, offset, access_scope.value)


ScopedPageDep = Annotated[ScopedPage, Depends(scoped_page)]


async def checkpoint_path(
    training_run_id: str, checkpoint_kind: m.CheckpointKind, checkpoint_name: str
) -> TinkerPath:
    """The checkpoint the path names, checked with the one tinker path grammar.

    A run id or name the grammar refuses cannot name a checkpoint (every checkpoint is made
    through it), so it is a 404 like any other checkpoint that is not there.
    """
    try:
        return TinkerPath(training_run_id, checkpoint_kind.value, checkpoint_name)
    except ValueError:
        raise NotFound("Checkpoint not found") from None


CheckpointPathDep = Annotated[TinkerPath, Depends(checkpoint_path)]


def validation_detail(errors: list[Any]) -> str:
    """``"<field>: <what is wrong>"`` for the first error of a validation failure."""
    if not errors:
        return "request: invalid"
    first = errors[0]
    where = ("body", "query", "path", "header")
    loc = [str(part) for part in first.get("loc", ()) if part not in where]
    return f"{'.'.join(loc) or 'body'}: {first.get('msg', 'invalid')}"


def json_body(
    model: type[M], *, required: bool = True, nullable: frozenset[str] = frozenset()
) -> Callable[[Request], Awaitable[M | None]]:
    """A dependency validating a JSON object body into ``model`` with the spec's strictness.

    Kept by hand, as a thin layer over pydantic, for what a FastAPI body parameter (with a
    400 handler for its validation errors) was measured to get wrong: it validates the decoded
    body in lax mode, so ``{"ttl_seconds": "3600"}`` passes as an integer (``Body(strict=True)``
    still let it through, and strict validation of the decoded dict would refuse the enum and
    date-time strings JSON carries; schemathesis' negative cases catch the lax integer); and
    the generated models make every optional field nullable where the spec does not, so
    ``{"project_id": null}`` would pass (``test_server_api.py`` pins both as 400s). Deep
    nesting and numbers beyond Python's 4,300-digit limit were not a reason: FastAPI answers
    both with a 400 too; here they are a 400 naming the body.
    """

    async def dependency(request: Request) -> M | None:
        raw = await request.body()
        if not raw:  # whitespace alone is a body, and not JSON (schemathesis sends it)
            if required:
                raise BadRequest("body: a JSON object is required")
            return None
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise BadRequest("body: not valid JSON (or nested or sized beyond limits)") from None
        if not isinstance(data, dict):
            raise BadRequest("body: must be a JSON object")
        for name, value in data.items():
            if value is None and name in model.model_fields and name not in nullable:
                raise BadRequest(f"{name}: must not be null")
        # JSON Schema counts 3600.0 as an integer.
        cleaned = {
            name: int(value) if isinstance(value, float) and value.is_integer() else value
            for name, value in data.items()
        }
        try:
            # As JSON: strict mode then still takes enum values and date-time strings.
            return model.model_validate_json(json.dumps(cleaned), strict=True)
        except ValidationError as exc:
            raise BadRequest(validation_detail(list(exc.errors()))) from None
        except RecursionError:
            raise BadRequest("body: nested too deep") from None

    return dependency


def _query_names(dependant: Dependant) -> set[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query(request: Request) -> None:
    """A 400 for query parameters the operation does not declare (the spec allows none)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _query_names(dependant)
    for name in request.query_params:
        if name not in known:
            raise BadRequest(f"{name or '(empty)'}: unknown query parameter")
