"""The audit log: reading one day of an organization's events."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from sqlalchemy import or_, select

from tinker_rest.server import db
from tinker_rest.server.errors import (
    Forbidden,
)
from tinker_rest.server.store.base import (
    Caller,
    StoreBase,
)

# The event-name prefixes of each audit event type (LIKE patterns, `_` escaped); none for all.
AUDIT_EVENT_PREFIXES: dict[str, tuple[str, ...]] = {
    "all": (),
    "checkpoints": ("checkpoint\\_",),
    "projects": ("project\\_", "session\\_assign\\_project"),
    "teams": ("team\\_",),
    "organizations": ("organization\\_", "user\\_", "api\\_key\\_"),
}


class AuditStore(StoreBase):
    """The audit log (``/api/v1/audit``); events are written by the writes themselves."""

    def audit_log(self, caller: Caller, *, day: dt.date, event_type: str) -> list[dict[str, Any]]:
        """One UTC day of the caller's organization's audit log, oldest first; admins only.

        ``GET /api/v1/audit``
        """
        if caller.role != "admin":
            raise Forbidden("The audit log needs the admin role")
        start = dt.datetime(day.year, day.month, day.day, tzinfo=db.UTC)
        conditions = [
            db.AuditEntry.organization_id == caller.organization_id,
            db.AuditEntry.timestamp >= start,
        ]
        # The last day of year 9999 has no following midnight.
        with contextlib.suppress(OverflowError):
            conditions.append(db.AuditEntry.timestamp < start + dt.timedelta(days=1))
        if prefixes := AUDIT_EVENT_PREFIXES[event_type]:
            conditions.append(
                or_(*(db.AuditEntry.event.like(f"{p}%", escape="\\") for p in prefixes))
            )
        with self.transaction() as s:
            rows = s.execute(
                select(db.AuditEntry)
                .where(*conditions)
                .order_by(db.AuditEntry.timestamp, db.AuditEntry.id)
            ).scalars()
            return [
                {
                    "timestamp": e.timestamp,
                    "event": e.event,
                    "event_details": e.event_details,
                    "model_id": e.model_id,
                    "tinker_path": e.tinker_path,
                    "purpose": e.purpose,
                }
                for e in rows
            ]

    def audit_archive_url(self, caller: Caller, tinker_path: str, run_id: str) -> None:
        """Record that a caller asked for a checkpoint's download URL."""
        with self.write(None) as s:
            self._audit(
                s,
                caller.organization_id,
                "checkpoint_archive_url",
                {"user": caller.email},
                model_id=run_id,
                tinker_path=tinker_path,
            )
