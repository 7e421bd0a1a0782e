"""The audit log (tag ``audit``): one UTC day of the organization's events, admins only."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import tinker_rest_models as m
from fastapi import APIRouter, Query

from tinker_rest.server.api.deps import CallerDep, StoreDep
from tinker_rest.server.errors import BadRequest

router = APIRouter(prefix="/api/v1")


@router.get("/audit", response_model=m.AuditLogResponse)
def get_audit_log(
    caller: CallerDep,
    store: StoreDep,
    event_type: Annotated[m.AuditEventType, Query()] = m.AuditEventType.all,
    day: Annotated[str | None, Query(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] = None,
) -> dict[str, Any]:
    """One UTC day of the organization's audit log; admins only.
    ``GET /api/v1/audit``"""
    try:
        when = dt.datetime.now(dt.UTC).date() if day is None else dt.date.fromisoformat(day)
    except ValueError:
        raise BadRequest(f"day: must be a date YYYY-MM-DD, not {day!r}") from None
    return {"entries": store.audit_log(caller, day=when, event_type=event_type.value)}
