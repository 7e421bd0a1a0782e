"""Searching sessions: every filter of ``SessionSearchRequest``, newest first, keyset pages.

Pages are ordered by ``(created_at, session_id)`` descending; ``next_cursor`` is the last row's
pair, and the next page starts strictly after it, so rows added meanwhile never shift a page.
A session without a ``session_states`` row has never ended: it is ``active``.
"""

from __future__ import annotations

from typing import Any

import tinker_rest_models as m
from sqlalchemy import ColumnElement, and_, func, literal, or_, select
from sqlalchemy.orm import Session as DbSession

from tinker_rest.server import db
from tinker_rest.server.errors import BadRequest, NotFound
from tinker_rest.server.store.accounts import user_id_of, user_urn
from tinker_rest.server.store.base import Caller, StoreBase, visible

ACTIVE = "active"
# LIKE's wildcards, escaped in the words of a display-name search.
LIKE_ESCAPES = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})
MAX_WORDS = 20


def _status() -> ColumnElement[str]:
    return func.coalesce(db.SessionState.status, literal(ACTIVE))


def _filters(s: DbSession, caller: Caller, request: m.SessionSearchRequest) -> list[Any]:
    owner = request.owner if request.owner is not None else m.OwnSearchOwner(type="own")
    where: list[Any] = []
    if isinstance(owner, m.OwnSearchOwner):
        where.append(db.Session.owner_id == caller.user_id)
    else:
        where.append(visible("accessible", caller.user_id))
        if isinstance(owner, m.UserSearchOwner):
            ids = [user_id_of(urn.root, "owner.owner_urns") for urn in owner.owner_urns]
            where.append(db.Session.owner_id.in_(ids))
    if request.project_ids is not None:
        project_ids = [project.root for project in request.project_ids]
        for project_id in project_ids:
            # A NUL never names a row, and breaks PostgreSQL.
            member = (
                None
                if "\x00" in project_id
                else s.get(db.ProjectMember, (project_id, caller.user_id))
            )
            if member is None:
                raise NotFound(f"project_ids: project {project_id!r} not found")
        where.append(db.Session.project_id.in_(project_ids))
    matches = []
    if request.session_id is not None:
        matches.append(db.Session.id == request.session_id)
    if request.display_name is not None:
        words = request.display_name.lower().split()
        if len(words) > MAX_WORDS:
            raise BadRequest(f"display_name: at most {MAX_WORDS} words")
        name = func.lower(db.Session.display_name)
        matches.append(
            and_(*(name.like(f"%{w.translate(LIKE_ESCAPES)}%", escape="\\") for w in words or [""]))
        )
    if matches:
        where.append(or_(*matches))
    for key, value in request.user_metadata.items():
        where.append(db.Session.user_metadata[key].as_string() == value)
    if request.statuses is not None:
        where.append(or_(*(_status_matches(q) for q in request.statuses)))
    if request.cursor is not None:
        last_at, last_id = request.cursor.last_created_at, request.cursor.last_session_id
        where.append(
            or_(
                db.Session.created_at < last_at,
                and_(db.Session.created_at == last_at, db.Session.id < last_id),
            )
        )
    return where


def _status_matches(query: m.SessionStatusQuery) -> ColumnElement[bool]:
    """A status filter; ``reasons`` narrows it to sessions with one of those reasons, which
    only ``client_finished`` sessions have (so with another type it matches nothing)."""
    # str(): the models keep enum values (use_enum_values), and str() of a StrEnum is its value.
    kind = str(query.type)
    if "reasons" in query.model_fields_set and query.reasons is None:
        raise BadRequest("statuses.reasons: must not be null; leave it out for every reason")
    matched = _status() == kind
    if query.reasons is not None:
        reasons = [str(reason) for reason in query.reasons]
        matched = and_(matched, db.SessionState.reason_type.in_(reasons))
    return matched


def _status_view(state: db.SessionState | None) -> dict[str, Any]:
    if state is None or state.status == ACTIVE:
        return {"type": ACTIVE}
    view: dict[str, Any] = {"type": state.status}
    if state.status == "failed":
        view |= {"category": state.category, "reason": state.reason, "message": state.message}
    elif state.status == "client_finished":
        view |= {"reason": state.reason, "detail": state.detail}
    else:
        view["detail"] = state.detail
    return view


class SessionSearchStore(StoreBase):
    """Searching sessions (``POST /api/v1/sessions/search``) and recording where they stand."""

    def search_sessions(self, caller: Caller, request: m.SessionSearchRequest) -> dict[str, Any]:
        """One page of the sessions matching every filter, newest first.

        ``POST /api/v1/sessions/search``
        """
        live = self._live()
        checkpoints = (
            select(
                func.count(db.Checkpoint.id), func.coalesce(func.sum(db.Checkpoint.size_bytes), 0)
            )
            .join(db.TrainingRun, db.Checkpoint.training_run_id == db.TrainingRun.id)
            .where(db.TrainingRun.session_id == db.Session.id, live)
        )
        count = checkpoints.with_only_columns(func.count(db.Checkpoint.id)).scalar_subquery()
        size = checkpoints.with_only_columns(
            func.coalesce(func.sum(db.Checkpoint.size_bytes), 0)
        ).scalar_subquery()
        with self.transaction() as s:
            rows = s.execute(
                select(db.Session, db.SessionState, count, size)
                .outerjoin(db.SessionState, db.SessionState.session_id == db.Session.id)
                .where(*_filters(s, caller, request))
                .order_by(db.Session.created_at.desc(), db.Session.id.desc())
                .limit(request.limit + 1)
            ).all()
        page = rows[: request.limit]
        sessions = [
            {
                "session_id": session.id,
                "created_at": session.created_at,
                "owner": user_urn(session.owner_id),
                "project_id": session.project_id or "",
                "status": _status_view(state),
                "checkpoints_count": int(n),
                "display_name": session.display_name,
                "user_metadata": session.user_metadata,
                "checkpoint_storage_bytes": int(total),
            }
            for session, state, n, total in page
        ]
        next_cursor = None
        if len(rows) > request.limit:
            last = page[-1][0]
            next_cursor = {"last_created_at": last.created_at, "last_session_id": last.id}
        return {"sessions": sessions, "next_cursor": next_cursor}

    def set_session_status(
        self,
        session_id: str,
        status: str,
        *,
        reason: dict[str, Any] | None = None,
        category: str | None = None,
        detail: str | None = None,
        message: str | None = None,
    ) -> None:
        """Record where a session stands (active, cancelled, failed or client_finished)."""
        if status not in ("active", "cancelled", "failed", "client_finished"):
            raise BadRequest(f"status: not a session status: {status!r}")
        if status in ("failed", "client_finished") and not (reason and reason.get("type")):
            raise BadRequest(f"reason: a {status} session needs a reason with a type")
        with self.write(None) as s:
            self._existing(s, db.Session, session_id)
            s.merge(
                db.SessionState(
                    session_id=session_id,
                    status=status,
                    reason_type=reason.get("type") if reason else None,
                    reason=reason,
                    category=category,
                    detail=detail,
                    message=message,
                )
            )
