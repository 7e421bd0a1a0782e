"""Checkpoints: adding them with their files, listing, publishing, TTLs, deleting, weights info."""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Row,
    select,
)

from tinker_rest._errors import InvalidTinkerPathError
from tinker_rest._paths import TinkerPath
from tinker_rest.server import db
from tinker_rest.server.errors import (
    BadRequest,
    Conflict,
    NotFound,
)
from tinker_rest.server.idempotency import IdempotentRequest
from tinker_rest.server.store.base import (
    TTL_MAX,
    TTL_MIN,
    Caller,
    CheckpointFiles,
    StoreBase,
    _remove_paths,
    _safe_id,
    parse_tinker_path,
    plain_dict,
    tinker_path_of,
)

# The files of a checkpoint added without any: one small adapter file.
DEFAULT_FILES: Mapping[str, bytes | int] = {"adapter_model.safetensors": b"\0" * 1024}


def checkpoint_view(ckpt: db.Checkpoint | Row[Any]) -> dict[str, Any]:
    """A checkpoint (or a row of its columns) as the wire shows it (``Checkpoint`` in the spec)."""
    path = TinkerPath(ckpt.training_run_id, ckpt.kind, ckpt.name)  # type: ignore[arg-type]
    return {
        "checkpoint_id": path.checkpoint_id,
        "checkpoint_type": path.checkpoint_type,
        "time": ckpt.created_at,
        "tinker_path": str(path),
        "training_run_id": ckpt.training_run_id,
        "size_bytes": ckpt.size_bytes,
        "public": ckpt.public,
        "expires_at": ckpt.expires_at,
        "user_metadata": ckpt.user_metadata,
    }


def _write_files(directory: Path, files: Mapping[str, bytes | int]) -> int:
    """Write a checkpoint's files under ``directory``; return their total size."""
    directory.mkdir(parents=True)
    total = 0
    try:
        for relative, content in files.items():
            parts = Path(relative).parts
            if not parts or Path(relative).is_absolute() or ".." in parts:
                raise BadRequest(f"files: {relative!r} is not a plain relative file name")
            target = directory.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as fh:
                if isinstance(content, int):
                    fh.truncate(content)
                    total += content
                else:
                    fh.write(content)
                    total += len(content)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return total


class CheckpointStore(StoreBase):
    """Checkpoints: ``…/training_runs/{id}/checkpoints``, ``/checkpoints``, ``/weights_info``."""

    def add_checkpoint(
        self,
        training_run_id: str,
        kind: str,
        name: str,
        files: Mapping[str, bytes | int] | None = None,
        public: bool = False,
        expires_at: dt.datetime | None = None,
        created_at: dt.datetime | None = None,
        user_metadata: Mapping[str, str] | None = None,
    ) -> str:
        """Create a checkpoint with real files on disk and return its tinker path.

        ``files`` maps relative file names to their bytes, or to a size: an int writes a file of
        that many zero bytes without holding it in memory (a sparse file where the disk allows),
        as in ``{"weights.bin": 1 << 30}``; by default one 1 KiB adapter file. ``size_bytes`` is
        the sum of the file sizes.
        """
        try:
            path = TinkerPath(training_run_id, kind, name)  # type: ignore[arg-type]  # checked
        except InvalidTinkerPathError as exc:
            raise BadRequest(f"checkpoint: {exc.problem}") from None
        blob_id = secrets.token_hex(16)
        directory = self.blob_dir / blob_id
        size = _write_files(directory, files if files is not None else DEFAULT_FILES)
        now = db.utcnow()
        try:
            with self.transaction() as s:
                run = self._existing(s, db.TrainingRun, training_run_id)
                s.add(
                    db.Checkpoint(
                        training_run_id=training_run_id,
                        kind=kind,
                        name=name,
                        created_at=created_at or now,
                        size_bytes=size,
                        public=public,
                        expires_at=expires_at,
                        user_metadata=plain_dict(user_metadata),
                        blob_id=blob_id,
                    )
                )
                run.last_request_time = max(run.last_request_time, created_at or now)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return str(path)

    def list_checkpoints(self, caller: Caller, run_id: str) -> list[dict[str, Any]]:
        """Every live checkpoint of one accessible run, oldest first.

        ``GET /api/v1/training_runs/{training_run_id}/checkpoints``
        """
        with self.transaction() as s:
            run, _ = self._visible_run(s, caller, run_id, "accessible")
            rows = s.execute(
                select(db.Checkpoint)
                .where(db.Checkpoint.training_run_id == run.id, self._live())
                .order_by(db.Checkpoint.created_at, db.Checkpoint.id)
            ).scalars()
            return [checkpoint_view(c) for c in rows]

    def list_user_checkpoints(
        self, caller: Caller, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the checkpoints of every run the caller owns, newest first.

        ``GET /api/v1/checkpoints``
        """
        with self.transaction() as s:
            query = (
                select(db.Checkpoint)
                .join(db.TrainingRun, db.Checkpoint.training_run_id == db.TrainingRun.id)
                .join(db.Session, db.TrainingRun.session_id == db.Session.id)
                .where(db.Session.owner_id == caller.user_id, self._live())
                .order_by(db.Checkpoint.created_at.desc(), db.Checkpoint.id.desc())
            )
            rows, total = self._page(s, query, limit, offset)
            return [checkpoint_view(c) for c in rows], total

    def set_public(
        self,
        caller: Caller,
        path: TinkerPath,
        public: bool,
        idempotent: IdempotentRequest | None = None,
    ) -> None:
        """Publish or unpublish an owned checkpoint; the same state again is a conflict.

        ``POST`` / ``DELETE /api/v1/training_runs/{run}/checkpoints/{kind}/{name}/publish``
        """
        with self.write(idempotent) as s:
            ckpt = self._owned_checkpoint(s, caller, path)
            if ckpt.public == public:
                state = "public" if public else "private"
                raise Conflict(f"Checkpoint is already {state}")
            ckpt.public = public
            self._audit_checkpoint(
                s, caller, "checkpoint_publish" if public else "checkpoint_unpublish", ckpt
            )

    def set_ttl(
        self,
        caller: Caller,
        path: TinkerPath,
        ttl_seconds: int | None,
        idempotent: IdempotentRequest | None = None,
    ) -> None:
        """Set an owned checkpoint to expire ``ttl_seconds`` from now, or never for None.

        ``PUT /api/v1/training_runs/{run}/checkpoints/{kind}/{name}/ttl``
        """
        if ttl_seconds is not None and not TTL_MIN <= ttl_seconds <= TTL_MAX:
            raise BadRequest(f"ttl_seconds: must be between {TTL_MIN} and {TTL_MAX}, or null")
        now = db.utcnow()
        expires_at = None if ttl_seconds is None else now + dt.timedelta(seconds=ttl_seconds)
        with self.write(idempotent) as s:
            # One Core UPDATE that finds and changes the checkpoint (no ORM load and flush);
            # when it changes nothing, the ORM lookup says what is missing.
            if not self._update_owned_checkpoint(s, caller, path, now, expires_at=expires_at):
                self._owned_checkpoint(s, caller, path)
                raise NotFound("Checkpoint not found")
            self._audit(
                s,
                caller.organization_id,
                "checkpoint_set_ttl",
                {"user": caller.email, "ttl_seconds": ttl_seconds},
                model_id=path.training_run_id,
                tinker_path=str(path),
            )

    def delete_checkpoint(
        self,
        caller: Caller,
        path: TinkerPath,
        idempotent: IdempotentRequest | None = None,
    ) -> None:
        """Delete an owned checkpoint, its archive and its files.

        ``DELETE /api/v1/training_runs/{run}/checkpoints/{kind}/{name}``
        """
        with self.write(idempotent) as s:
            ckpt = self._owned_checkpoint(s, caller, path)
            doomed = self._drop_checkpoint(s, ckpt)
            self._audit_checkpoint(s, caller, "checkpoint_delete", ckpt)
        self._after_commit(lambda: _remove_paths(doomed))

    def weights_info(self, caller: Caller, tinker_path: str) -> dict[str, Any]:
        """The model behind an accessible or published checkpoint.

        ``POST /api/v1/weights_info``
        """
        path = parse_tinker_path(tinker_path)
        run_id, kind, name = path.training_run_id, path.kind, path.name
        with self.transaction() as s:
            run = s.get(db.TrainingRun, run_id) if _safe_id(run_id) else None
            ckpt = self._checkpoint_of(s, run_id, kind, name) if run is not None else None
            if run is None or ckpt is None:
                raise NotFound("Checkpoint not found")
            if not ckpt.public:
                self._visible_run(s, caller, run_id, "accessible")
            return {
                "base_model": run.base_model,
                "is_lora": run.lora_rank is not None,
                "lora_rank": run.lora_rank,
                "train_unembed": run.train_unembed,
                "train_mlp": run.train_mlp,
                "train_attn": run.train_attn,
                "optimizer_config": {"type": run.optimizer},
            }

    def checkpoint_files(self, caller: Caller, path: TinkerPath) -> CheckpointFiles:
        """Where an accessible checkpoint's files are, for its archive.

        ``GET /api/v1/training_runs/{run}/checkpoints/{kind}/{name}/archive``
        """
        with self.transaction() as s:
            ckpt, _, _ = self._visible_checkpoint(s, caller, path, "accessible")
            return CheckpointFiles(ckpt.id, tinker_path_of(ckpt), self.blob_dir / ckpt.blob_id)
