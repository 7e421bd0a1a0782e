"""The rows of built checkpoint archives (the building is in ``server/archives.py``)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    delete,
    select,
)

from tinker_rest.server import db
from tinker_rest.server.store.base import (
    StoreBase,
    _safe_id,
)


class ArchiveStore(StoreBase):
    """Archive rows for signed downloads (``/api/v1/storage/archives``)."""

    def ready_archive(self, checkpoint_pk: int) -> tuple[str, int] | None:
        """The id and size of a checkpoint's built archive, if there is one on disk."""
        with self.transaction() as s:
            archive = s.execute(
                select(db.Archive).where(
                    db.Archive.checkpoint_id == checkpoint_pk, db.Archive.status == "ready"
                )
            ).scalar_one_or_none()
            if archive is None or archive.size_bytes is None:
                return None
            if not self.archive_path(archive.id).is_file():
                s.delete(archive)
                return None
            return archive.id, archive.size_bytes

    def save_archive(self, checkpoint_pk: int, archive_id: str, size: int) -> bool:
        """Record a finished archive; False if its checkpoint vanished meanwhile."""
        with self.transaction() as s:
            ckpt = s.get(db.Checkpoint, checkpoint_pk)
            if ckpt is None:
                return False
            s.execute(delete(db.Archive).where(db.Archive.checkpoint_id == checkpoint_pk))
            s.add(
                db.Archive(
                    id=archive_id,
                    checkpoint_id=checkpoint_pk,
                    status="ready",
                    size_bytes=size,
                )
            )
            return True

    def downloadable_archive(self, archive_id: str) -> tuple[Path, int] | None:
        """The file and size of a built archive whose checkpoint is still live."""
        if not _safe_id(archive_id):
            return None
        with self.transaction() as s:
            row = s.execute(
                select(db.Archive)
                .join(db.Checkpoint, db.Archive.checkpoint_id == db.Checkpoint.id)
                .where(db.Archive.id == archive_id, db.Archive.status == "ready", self._live())
            ).scalar_one_or_none()
            if row is None or row.size_bytes is None:
                return None
            path = self.archive_path(row.id)
            return (path, row.size_bytes) if path.is_file() else None
