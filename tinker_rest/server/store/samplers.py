"""Samplers: adding and getting them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    select,
)

from tinker_rest.server import db
from tinker_rest.server.errors import (
    NotFound,
)
from tinker_rest.server.store.base import (
    Caller,
    StoreBase,
    _safe_id,
    visible,
)


class SamplerStore(StoreBase):
    """Samplers (``/api/v1/samplers``)."""

    def add_sampler(
        self,
        session_id: str,
        base_model: str = "Qwen/Qwen3-8B",
        model_path: str | None = None,
        *,
        sampler_id: str | None = None,
    ) -> str:
        """Create a sampler ``<session>:sample:<n>`` (or ``sampler_id``); return its id."""
        with self.transaction() as s:
            sampler_id = sampler_id or self._next_in_session(s, session_id, "sample")
            sampler = db.Sampler(
                id=sampler_id, session_id=session_id, base_model=base_model, model_path=model_path
            )
            self._add(s, sampler)
        return sampler_id

    def get_sampler(self, caller: Caller, sampler_id: str) -> dict[str, Any]:
        """An accessible sampler.

        ``GET /api/v1/samplers/{sampler_id}``
        """
        with self.transaction() as s:
            if not _safe_id(sampler_id):
                raise NotFound("Sampler not found")
            sampler = s.execute(
                select(db.Sampler)
                .join(db.Session, db.Sampler.session_id == db.Session.id)
                .where(db.Sampler.id == sampler_id, visible("accessible", caller.user_id))
            ).scalar_one_or_none()
            if sampler is None:
                raise NotFound("Sampler not found")
            return {
                "sampler_id": sampler.id,
                "base_model": sampler.base_model,
                "model_path": sampler.model_path,
            }
