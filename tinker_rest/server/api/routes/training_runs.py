"""Training runs (tag ``training_runs``): list and get."""

from __future__ import annotations

from typing import Annotated, Any

import tinker_rest_models as m
from fastapi import APIRouter, Query, Request

from tinker_rest.server.api.deps import (
    AccessScopeQuery,
    CallerDep,
    ScopedPageDep,
    StoreDep,
    in_db_thread,
)

router = APIRouter(prefix="/api/v1/training_runs")


@router.get("", response_model=m.TrainingRunsResponse)
def list_training_runs(
    caller: CallerDep,
    store: StoreDep,
    page: ScopedPageDep,
    project_id: Annotated[str | None, Query(min_length=1)] = None,
) -> dict[str, Any]:
    """One page of training runs, most recently used first, of one project if asked.
    ``GET /api/v1/training_runs``"""
    runs, total = store.list_training_runs(
        caller, limit=page.limit, offset=page.offset, scope=page.scope, project_id=project_id
    )
    return {
        "training_runs": runs,
        "cursor": {"offset": page.offset, "limit": page.limit, "total_count": total},
    }


@router.get("/{training_run_id}", response_model=m.TrainingRun)
async def get_training_run(
    request: Request,
    caller: CallerDep,
    store: StoreDep,
    training_run_id: str,
    access_scope: AccessScopeQuery = m.AccessScope.owned,
) -> dict[str, Any]:
    """One training run.
    ``GET /api/v1/training_runs/{training_run_id}``

    A coroutine that sends only the store call to a database thread: FastAPI runs a plain
    function and then the validation of its response as two hops to its thread pool, and on
    this, the hottest read, the hops cost more than the query.
    """
    return await in_db_thread(
        request, store.get_training_run, caller, training_run_id, scope=access_scope.value
    )
