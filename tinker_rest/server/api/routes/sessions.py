"""Sessions (tag ``sessions``): list, get, and moving one into a project."""

from __future__ import annotations

from typing import Annotated, Any

import tinker_rest_models as m
from fastapi import APIRouter, Depends, Request, Response

from tinker_rest.server.api.deps import (
    AccessScopeQuery,
    CallerDep,
    IdempotencyDep,
    ScopedPageDep,
    StoreDep,
    in_db_writer,
    json_body,
)

router = APIRouter(prefix="/api/v1/sessions")

ProjectBody = Annotated[
    m.AssignSessionProjectRequest, Depends(json_body(m.AssignSessionProjectRequest))
]


@router.get("", response_model=m.ListSessionsResponse)
def list_sessions(caller: CallerDep, store: StoreDep, page: ScopedPageDep) -> dict[str, Any]:
    """One page of session ids, newest first.
    ``GET /api/v1/sessions``"""
    sessions = store.list_sessions(caller, limit=page.limit, offset=page.offset, scope=page.scope)
    return {"sessions": sessions}


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
    await in_db_writer(
        request, store.assign_session_project, caller, session_id, body.project_id, idempotent
    )
    return Response(status_code=204)
