"""Routes: billable usage and current checkpoint storage; admins only."""

from __future__ import annotations

from typing import Annotated, Any

import tinker_rest_models as m
from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from tinker_rest.server.beyond import billing
from tinker_rest.server.beyond.deps import CallerDep, DbDep, StoreDep

router = APIRouter(tags=["billing"])


@router.get("/api/v1/billing/usage/events", response_model=m.BillingUsageResponse)
def get_billing_usage(
    caller: CallerDep,
    s: DbDep,
    starting_on: Annotated[AwareDatetime, Query()],
    ending_before: Annotated[AwareDatetime, Query()],
) -> dict[str, Any]:
    """The organization's usage events in a span. ``GET /api/v1/billing/usage/events``"""
    return billing.usage_events(s, caller, starting_on, ending_before)


@router.get(
    "/api/v1/billing/usage/checkpoints/current",
    response_model=m.CurrentCheckpointStorageUsageResponse,
)
def get_current_checkpoint_storage_usage(
    caller: CallerDep,
    store: StoreDep,
    s: DbDep,
    project_id: Annotated[str | None, Query(min_length=1)] = None,
) -> dict[str, Any]:
    """Live checkpoint storage by project and owner.
    ``GET /api/v1/billing/usage/checkpoints/current``"""
    return billing.checkpoint_storage(store, s, caller, project_id)
