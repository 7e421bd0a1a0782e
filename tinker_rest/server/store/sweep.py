"""The expiry sweep: expired checkpoints with their files, and stale idempotency records."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    delete,
    select,
)

from tinker_rest.server import db
from tinker_rest.server.store.base import (
    IDEMPOTENCY_WINDOW,
    StoreBase,
    _remove_paths,
    tinker_path_of,
)


class SweepStore(StoreBase):
    """The periodic sweep."""

    def sweep(self) -> int:
        """Delete expired checkpoints with their files, stale idempotent responses and
        half-built archives; return how many checkpoints went."""
        now = db.utcnow()
        doomed: list[Path] = []
        with self.transaction() as s:
            expired = s.execute(
                select(db.Checkpoint, db.User.organization_id)
                .join(db.TrainingRun, db.Checkpoint.training_run_id == db.TrainingRun.id)
                .join(db.Session, db.TrainingRun.session_id == db.Session.id)
                .join(db.User, db.Session.owner_id == db.User.id)
                .where(db.Checkpoint.expires_at.is_not(None), db.Checkpoint.expires_at <= now)
            ).all()
            for ckpt, organization_id in expired:
                doomed += self._drop_checkpoint(s, ckpt)
                self._audit(
                    s,
                    organization_id,
                    "checkpoint_expire",
                    {"expires_at": ckpt.expires_at.isoformat() if ckpt.expires_at else None},
                    model_id=ckpt.training_run_id,
                    tinker_path=tinker_path_of(ckpt),
                )
            s.execute(
                delete(db.IdempotentResponse).where(
                    db.IdempotentResponse.created_at <= now - IDEMPOTENCY_WINDOW
                )
            )
        _remove_paths(doomed)
        return len(expired)
