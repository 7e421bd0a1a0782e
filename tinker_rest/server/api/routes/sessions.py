"""Sessions (tag ``sessions``): list, search, get, moving one into a project, trace export."""

from __future__ import annotations

import time
from typing import Annotated, Any

import tinker_rest_models as m
from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response

from tinker_rest.server.api.deps import (
    AccessScopeQuery,
    CallerDep,
    IdempotencyDep,
    ScopedPageDep,
    StoreDep,
    in_db_write_group,
    in_db_writer,
    json_body,
)
from tinker_rest.server.api.routes.checkpoints import SIGNED_URL_SECONDS, public_base_url
from tinker_rest.server.store.traces import TRACES_ROUTE

router = APIRouter(prefix="/api/v1/sessions")

ProjectBody = Annotated[
    m.AssignSessionProjectRequest, Depends(json_body(m.AssignSessionProjectRequest))
]
SearchBody = Annotated[
    m.SessionSearchRequest,
    Depends(
        json_body(
            m.SessionSearchRequest,
            nullable=frozenset({"session_id", "display_name", "project_ids", "statuses", "cursor"}),
        )
    ),
]


@router.get("", response_model=m.ListSessionsResponse)
def list_sessions(caller: CallerDep, store: StoreDep, page: ScopedPageDep) -> dict[str, Any]:
    """One page of session ids, newest first.
    ``GET /api/v1/sessions``"""
    sessions = store.list_sessions(caller, limit=page.limit, offset=page.offset, scope=page.scope)
    return {"sessions": sessions}


# Without the nulls: a status carries only the fields of its type.
@router.post("/search", response_model=m.SessionSearchResponse, response_model_exclude_none=True)
def search_sessions(caller: CallerDep, store: StoreDep, body: SearchBody) -> dict[str, Any]:
    """One page of matching sessions, newest first.
    ``POST /api/v1/sessions/search``"""
    return store.search_sessions(caller, body)


@router.get("/{session_id}", response_model=m.GetSessionResponse)
def get_session(
    caller: CallerDep,
    store: StoreDep,
    session_id: str,
    access_scope: AccessScopeQuery = m.AccessScope.owned,
) -> dict[str, Any]:
    """A session with its run and sampler ids.
    ``GET /api/v1/sessions/{session_id}``"""
    return store.get_session(caller, session_id, scope=access_scope.value)


@router.put("/{session_id}/project", status_code=204, response_class=Response)
async def assign_session_project(
    request: Request,
    caller: CallerDep,
    store: StoreDep,
    session_id: str,
    body: ProjectBody,
    idempotent: IdempotencyDep,
) -> Response:
    """Move an owned session into a project.
    ``PUT /api/v1/sessions/{session_id}/project``"""
    await in_db_write_group(
        request, store.assign_session_project, caller, session_id, body.project_id, idempotent
    )
    return Response(status_code=204)


@router.get("/{session_id}/trace_export", response_model=m.SessionTraceExportResponse)
async def export_session_trace(
    request: Request,
    caller: CallerDep,
    store: StoreDep,
    background: BackgroundTasks,
    session_id: str,
) -> dict[str, Any]:
    """The state of the session's trace export, starting one when needed.
    ``GET /api/v1/sessions/{session_id}/trace_export``"""
    # A new export is committed before the background task that builds it looks for it.
    export, start = await in_db_writer(request, store.export_session_trace, caller, session_id)
    if start:
        background.add_task(store.build_trace, export.id)
    url = None
    if export.status == "ready":
        expires = int(time.time()) + SIGNED_URL_SECONDS
        path = f"{TRACES_ROUTE}/{export.id}"
        url = f"{public_base_url(request)}{path}?{request.app.state.signer.sign(path, expires)}"
    return {"status": export.status, "url": url, "error": export.error}
