"""Training runs: adding, listing and getting them with their newest checkpoints."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    ScalarSelect,
    Select,
    bindparam,
    func,
    or_,
    select,
)

from tinker_rest.server import db
from tinker_rest.server.errors import (
    NotFound,
)
from tinker_rest.server.store.base import (
    MAX_OFFSET,
    Caller,
    StoreBase,
    _safe_id,
    plain_dict,
    visible,
)
from tinker_rest.server.store.checkpoints import checkpoint_view

# The columns of a run's wire view (``TrainingRun`` in the spec) that come from the database.
_RUN_COLUMNS = (
    db.TrainingRun.id,
    db.TrainingRun.base_model,
    db.TrainingRun.lora_rank,
    db.TrainingRun.corrupted,
    db.TrainingRun.last_request_time,
    db.TrainingRun.user_metadata,
    db.User.email.label("model_owner"),
)


def _runs_with_owner() -> Select[*tuple[Any, ...]]:
    """Training runs as :data:`_RUN_COLUMNS` rows, joined to their session and its owner."""
    return (
        select(*_RUN_COLUMNS)
        .join(db.Session, db.TrainingRun.session_id == db.Session.id)
        .join(db.User, db.Session.owner_id == db.User.id)
    )


def _latest_checkpoint_id(kind: str) -> ScalarSelect[int]:
    """The id of run ``:run_id``'s newest checkpoint of ``kind`` still live at ``:now``."""
    return (
        select(db.Checkpoint.id)
        .where(
            db.Checkpoint.training_run_id == bindparam("run_id"),
            db.Checkpoint.kind == kind,
            or_(db.Checkpoint.expires_at.is_(None), db.Checkpoint.expires_at > bindparam("now")),
        )
        .order_by(db.Checkpoint.created_at.desc(), db.Checkpoint.id.desc())
        .limit(1)
        .scalar_subquery()
    )


# The statements of the hottest reads, built once: building a SELECT costs more than SQLite
# takes to run it. They run as Core statements (rows, not ORM objects): loading and tracking
# ORM objects cost more than the queries themselves.


_RUN_WITH_OWNER = {
    scope: _runs_with_owner().where(db.TrainingRun.id == bindparam("run_id"), visible(scope))
    for scope in ("owned", "accessible")
}


# A run's newest live training and sampler checkpoints: at most one row of each kind.
_LATEST_CHECKPOINTS = select(db.Checkpoint.__table__).where(
    db.Checkpoint.id.in_(
        [_latest_checkpoint_id("weights"), _latest_checkpoint_id("sampler_weights")]
    )
)


class TrainingRunStore(StoreBase):
    """Training runs (``/api/v1/training_runs``)."""

    def add_training_run(
        self,
        session_id: str,
        base_model: str = "Qwen/Qwen3-8B",
        lora_rank: int | None = 32,
        user_metadata: Mapping[str, str] | None = None,
        *,
        corrupted: bool = False,
        training_run_id: str | None = None,
    ) -> str:
        """Create a training run ``<session>:train:<n>`` (or ``training_run_id`` if given);
        ``lora_rank=None`` is a full run."""
        with self.transaction() as s:
            run_id = training_run_id or self._next_in_session(s, session_id, "train")
            now = db.utcnow()
            self._add(
                s,
                db.TrainingRun(
                    id=run_id,
                    session_id=session_id,
                    base_model=base_model,
                    lora_rank=lora_rank,
                    corrupted=corrupted,
                    user_metadata=plain_dict(user_metadata),
                    created_at=now,
                    last_request_time=now,
                ),
            )
        return run_id

    def list_training_runs(
        self, caller: Caller, *, limit: int, offset: int, scope: str, project_id: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of visible training runs, most recently used first, and the total count.

        ``GET /api/v1/training_runs``
        """
        query = (
            _runs_with_owner()
            .where(visible(scope, caller.user_id))
            .order_by(db.TrainingRun.last_request_time.desc(), db.TrainingRun.id)
        )
        if project_id is not None:
            query = query.where(db.Session.project_id == project_id)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            page = conn.execute(query.limit(limit).offset(min(offset, MAX_OFFSET)))
            now = db.utcnow()
            return [self._run_view(conn, run, now) for run in page.all()], int(total)

    def get_training_run(self, caller: Caller, run_id: str, *, scope: str) -> dict[str, Any]:
        """One visible training run with its latest checkpoints.

        ``GET /api/v1/training_runs/{training_run_id}``
        """
        if not _safe_id(run_id):
            raise NotFound("Training run not found")
        statement = _RUN_WITH_OWNER["accessible" if scope == "accessible" else "owned"]
        with self.engine.connect() as conn:
            run = conn.execute(statement, {"run_id": run_id, "user_id": caller.user_id}).first()
            if run is None:
                raise NotFound("Training run not found")
            return self._run_view(conn, run, db.utcnow())

    @staticmethod
    def _run_view(conn: Connection, run: Row[Any], now: dt.datetime) -> dict[str, Any]:
        """A run as the wire shows it, from a :data:`_RUN_COLUMNS` row and its checkpoints."""
        latest = {
            ckpt.kind: checkpoint_view(ckpt)
            for ckpt in conn.execute(_LATEST_CHECKPOINTS, {"run_id": run.id, "now": now})
        }
        return {
            "training_run_id": run.id,
            "base_model": run.base_model,
            "model_owner": run.model_owner,
            "is_lora": run.lora_rank is not None,
            "corrupted": run.corrupted,
            "lora_rank": run.lora_rank,
            "last_request_time": run.last_request_time,
            "last_checkpoint": latest.get("weights"),
            "last_sampler_checkpoint": latest.get("sampler_weights"),
            "user_metadata": run.user_metadata,
        }
