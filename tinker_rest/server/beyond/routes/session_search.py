"""Route: ``search_sessions``."""

from __future__ import annotations

from typing import Annotated, Any

import tinker_rest_models as m
from fastapi import APIRouter, Depends

from tinker_rest.server.app import required_body
from tinker_rest.server.beyond import session_search
from tinker_rest.server.beyond.deps import CallerDep, DbDep

router = APIRouter(tags=["sessions"])


# Without the nulls: a status carries only the fields of its type.
@router.post(
    "/api/v1/sessions/search",
    response_model=m.SessionSearchResponse,
    response_model_exclude_none=True,
)
def search_sessions(
    caller: CallerDep,
    s: DbDep,
    body: Annotated[
        m.SessionSearchRequest,
        Depends(
            required_body(
                m.SessionSearchRequest,
                frozenset({"session_id", "display_name", "project_ids", "statuses", "cursor"}),
            )
        ),
    ],
) -> dict[str, Any]:
    """One page of matching sessions, newest first. ``POST /api/v1/sessions/search``"""
    return session_search.search_sessions(s, caller, body)
