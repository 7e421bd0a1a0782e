"""Routes: billable usage and current checkpoint storage; admins only."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import tinker_rest_models as m
from fastapi import APIRouter, Query

from tinker_rest.server.beyond import billing
from tinker_rest.server.beyond.deps import CallerDep, DbDep, StoreDep
from tinker_rest.server.store import BadRequest

router = APIRouter(tags=["billing"])

# RFC 3339 with an offset; pydantic's datetime would also take Unix numbers such as "0.5".
RFC3339 = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
Instant = Annotated[str, Query(pattern=RFC3339)]


def _instant(name: str, value: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}: not a valid RFC 3339 date-time: {value!r}") from None


@router.get("/api/v1/billing/usage/events", response_model=m.BillingUsageResponse)
def get_billing_usage(
    caller: CallerDep,
    s: DbDep,
    starting_on: Instant,
    ending_before: Instant,
) -> dict[str, Any]:
    """The organization's usage events in a span. ``GET /api/v1/billing/usage/events``"""
    start = _instant("starting_on", starting_on)
    end = _instant("ending_before", ending_before)
    return billing.usage_events(s, caller, start, end)


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
