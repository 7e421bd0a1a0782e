"""Billable usage and current checkpoint storage of an organization; admins only.

Usage is recorded as hourly buckets in ``billing_events`` (:func:`record_usage`): the reference
server records a ``checkpoint`` event for each ``copy_weights``; training and sampling happen
elsewhere, so their events are added by whoever runs the server (the demo seeds some).
Checkpoint storage is measured on disk, file by file, with the files that copies share (hard
links) counted once per project and owner.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from tinker_rest.server import db
from tinker_rest.server.beyond.accounts import user_urn
from tinker_rest.server.store import BadRequest, Caller, Forbidden, Store

# The storage rate the estimates use, USD per gigabyte (10^9 bytes) and 720-hour month.
STORAGE_USD_PER_GB_MONTH = 0.10
# The most events one usage answer holds; a longer span must be asked for in parts.
MAX_USAGE_EVENTS = 100_000
GIGABYTE = 10**9
EVENT_TYPES = ("training", "sampling_prefill", "sampling_sample", "checkpoint", "storage")


def require_admin(caller: Caller, what: str) -> None:
    """A 403 unless the caller is an admin of their organization."""
    if caller.role != "admin":
        raise Forbidden(f"{what} needs the admin role")


def _bucket(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def record_usage(
    s: DbSession,
    *,
    organization_id: str,
    user_id: str | None,
    session_id: str | None,
    base_model: str | None,
    event_info: dict[str, Any],
    when: dt.datetime | None = None,
    estimated_cost_usd: float | None = None,
) -> None:
    """Record one billable event in the hour bucket of ``when`` (now by default)."""
    if event_info.get("type") not in EVENT_TYPES:
        raise BadRequest(f"event_info.type: must be one of {', '.join(EVENT_TYPES)}")
    s.add(
        db.BillingEvent(
            organization_id=organization_id,
            user_id=user_id,
            session_id=session_id,
            bucket_start=_bucket(when or db.utcnow()),
            base_model=base_model,
            event_info=dict(event_info),
            estimated_cost_usd=estimated_cost_usd,
        )
    )


def add_usage(store: Store, session_id: str, event_info: dict[str, Any], **kwargs: Any) -> None:
    """Record a billable event of a session's owner (for seeding and for other services)."""
    with store.transaction() as s:
        session = s.get(db.Session, session_id)
        if session is None:
            raise BadRequest(f"session_id: {session_id!r} not found")
        record_usage(
            s,
            organization_id=session.owner.organization_id,
            user_id=session.owner_id,
            session_id=session_id,
            event_info=event_info,
            **kwargs,
        )


def usage_events(
    s: DbSession, caller: Caller, starting_on: dt.datetime, ending_before: dt.datetime
) -> dict[str, Any]:
    """The organization's usage buckets starting in ``[starting_on, ending_before)``.

    An empty span (the end not after the start) has no events. More than
    :data:`MAX_USAGE_EVENTS` events is a 400 that asks for a shorter span.

    ``GET /api/v1/billing/usage/events``
    """
    require_admin(caller, "Billing usage")
    rows = s.execute(
        select(db.BillingEvent, db.Session)
        .outerjoin(db.Session, db.BillingEvent.session_id == db.Session.id)
        .where(
            db.BillingEvent.organization_id == caller.organization_id,
            db.BillingEvent.bucket_start >= starting_on,
            db.BillingEvent.bucket_start < ending_before,
        )
        .order_by(db.BillingEvent.bucket_start, db.BillingEvent.id)
        .limit(MAX_USAGE_EVENTS + 1)
    ).all()
    if len(rows) > MAX_USAGE_EVENTS:
        raise BadRequest(f"starting_on: more than {MAX_USAGE_EVENTS} events; ask for less time")
    data = []
    sessions: dict[str, dict[str, Any]] = {}
    for event, session in rows:
        data.append(
            {
                "bucket_start": event.bucket_start,
                "bucket_end": event.bucket_start + dt.timedelta(hours=1),
                "base_model": event.base_model,
                "user_id": user_urn(event.user_id) if event.user_id else None,
                "user_name": None,
                "session_id": event.session_id,
                "project_id": session.project_id if session is not None else None,
                "estimated_cost_usd": event.estimated_cost_usd,
                "event_info": event.event_info,
            }
        )
        if session is not None:
            sessions[session.id] = {"user_metadata": session.user_metadata}
    return {"data": data, "sessions": sessions, "cost_data_through": None}


def checkpoint_storage(
    store: Store, s: DbSession, caller: Caller, project_id: str | None
) -> dict[str, Any]:
    """Live checkpoint storage by project and session owner, measured on disk.

    ``GET /api/v1/billing/usage/checkpoints/current``
    """
    require_admin(caller, "Checkpoint storage usage")
    query = (
        select(db.Checkpoint.blob_id, db.Session.project_id, db.User.id, db.User.email)
        .join(db.TrainingRun, db.Checkpoint.training_run_id == db.TrainingRun.id)
        .join(db.Session, db.TrainingRun.session_id == db.Session.id)
        .join(db.User, db.Session.owner_id == db.User.id)
        .where(db.User.organization_id == caller.organization_id, Store._live())
    )
    if project_id is not None:
        query = query.where(db.Session.project_id == project_id)
    groups: dict[tuple[str | None, str, str], list[str]] = defaultdict(list)
    for blob_id, project, user_id, email in s.execute(query):
        groups[(project, user_id, email)].append(blob_id)
    data = []
    for (project, user_id, email), blobs in sorted(groups.items(), key=lambda g: str(g[0])):
        size = _stored_bytes(store, blobs)
        gigabytes = size / GIGABYTE
        data.append(
            {
                "project_id": project,
                "org_user_urn": user_urn(user_id),
                "user_email": email,
                "user_name": None,
                "checkpoint_count": len(blobs),
                "size_bytes": size,
                "size_gigabytes": gigabytes,
                "estimated_monthly_cost_usd": gigabytes * STORAGE_USD_PER_GB_MONTH,
            }
        )
    return {"effective_rate_usd_per_gigabyte_month": STORAGE_USD_PER_GB_MONTH, "data": data}


def _stored_bytes(store: Store, blob_ids: list[str]) -> int:
    """The bytes the files of these checkpoints take, each stored file (inode) counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for blob_id in blob_ids:
        for root, _, names in os.walk(store.blob_dir / blob_id):
            for name in names:
                stat = os.lstat(os.path.join(root, name))
                if (stat.st_dev, stat.st_ino) not in seen:
                    seen.add((stat.st_dev, stat.st_ino))
                    total += stat.st_size
    return total
