"""Sessions: adding, listing, getting, and moving one into a project."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session as DbSession

from tinker_rest.server import db
from tinker_rest.server.errors import (
    Forbidden,
    NotFound,
)
from tinker_rest.server.idempotency import IdempotentRequest
from tinker_rest.server.store.base import (
    Caller,
    StoreBase,
    _safe_id,
    plain_dict,
    visible,
)


class SessionStore(StoreBase):
    """Sessions (``/api/v1/sessions``)."""

    def add_session(
        self,
        owner_id: str,
        project_id: str | None = None,
        display_name: str | None = None,
        user_metadata: Mapping[str, str] | None = None,
        *,
        session_id: str | None = None,
        created_at: dt.datetime | None = None,
    ) -> str:
        """Create a session owned by a user and return its id, ``sess-<hex>``."""
        session_id = session_id or f"sess-{secrets.token_hex(4)}"
        with self.transaction() as s:
            self._add(
                s,
                db.Session(
                    id=session_id,
                    owner_id=owner_id,
                    project_id=project_id,
                    display_name=display_name,
                    user_metadata=plain_dict(user_metadata),
                    created_at=created_at or db.utcnow(),
                ),
            )
        return session_id

    def list_sessions(self, caller: Caller, *, limit: int, offset: int, scope: str) -> list[str]:
        """One page of visible session ids, newest first.

        ``GET /api/v1/sessions``
        """
        with self.transaction() as s:
            query = (
                select(db.Session.id)
                .where(visible(scope, caller.user_id))
                .order_by(db.Session.created_at.desc(), db.Session.id)
            )
            ids, _ = self._page(s, query, limit, offset)
            return [str(i) for i in ids]

    def get_session(self, caller: Caller, session_id: str, *, scope: str) -> dict[str, Any]:
        """A visible session with its run and sampler ids.

        ``GET /api/v1/sessions/{session_id}``
        """
        with self.transaction() as s:
            session = self._visible_session(s, caller, session_id, scope)
            runs = s.execute(
                select(db.TrainingRun.id)
                .where(db.TrainingRun.session_id == session.id)
                .order_by(db.TrainingRun.created_at, db.TrainingRun.id)
            ).scalars()
            samplers = s.execute(
                select(db.Sampler.id)
                .where(db.Sampler.session_id == session.id)
                .order_by(db.Sampler.created_at, db.Sampler.id)
            ).scalars()
            return {
                "training_run_ids": list(runs),
                "sampler_ids": list(samplers),
                "user_metadata": session.user_metadata,
                "display_name": session.display_name,
            }

    def _visible_session(
        self, s: DbSession, caller: Caller, session_id: str, scope: str
    ) -> db.Session:
        if not _safe_id(session_id):
            raise NotFound("Session not found")
        session = s.execute(
            select(db.Session).where(db.Session.id == session_id, visible(scope, caller.user_id))
        ).scalar_one_or_none()
        if session is None:
            raise NotFound("Session not found")
        return session

    def assign_session_project(
        self,
        caller: Caller,
        session_id: str,
        project_id: str,
        idempotent: IdempotentRequest | None = None,
    ) -> None:
        """Move an owned session into a project of the caller's organization they belong to.

        ``PUT /api/v1/sessions/{session_id}/project``
        """
        with self.write(idempotent) as s:
            session = self._visible_session(s, caller, session_id, "owned")
            project = s.get(db.Project, project_id) if _safe_id(project_id) else None
            if project is None or project.organization_id != caller.organization_id:
                raise NotFound("Project not found")
            if s.get(db.ProjectMember, (project.id, caller.user_id)) is None:
                raise Forbidden("project_id: you are not a member of this project")
            previous = session.project_id
            session.project_id = project.id
            self._audit(
                s,
                caller.organization_id,
                "session_assign_project",
                {
                    "user": caller.email,
                    "session_id": session.id,
                    "project_id": project.id,
                    "previous_project_id": previous,
                },
            )
