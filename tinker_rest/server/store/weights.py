"""Copying a checkpoint into a project, and the files of ``external_weights`` checkpoints.

A copy is a new session in the destination project with one training run (marked in
``weight_copies``: it holds a copy and cannot be trained on) holding one checkpoint. The copy's
files are hard links to the source's, so both share the stored bytes and deleting either leaves
the other whole; the copy has its own expiry.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from tinker_rest._paths import TinkerPath
from tinker_rest.server import db
from tinker_rest.server.errors import BadRequest, Forbidden, NotFound
from tinker_rest.server.idempotency import IdempotentRequest
from tinker_rest.server.signing import UrlSigner
from tinker_rest.server.store.base import (
    RESPONSE_BODY,
    TTL_MAX,
    TTL_MIN,
    Caller,
    StoreBase,
    parse_tinker_path,
    visible,
)
from tinker_rest.server.store.billing import record_usage

FILES_ROUTE = "/api/v1/storage/checkpoint_files"
# The most files one external checkpoint may list (a PEFT export has two or three).
MAX_FILES = 1000


def readable_checkpoint(s: DbSession, caller: Caller, tinker_path: str) -> db.Checkpoint:
    """A live checkpoint the caller may read: owned, in one of their projects, or public."""
    path = parse_tinker_path(tinker_path)
    ckpt = s.execute(
        select(db.Checkpoint)
        .join(db.TrainingRun, db.Checkpoint.training_run_id == db.TrainingRun.id)
        .join(db.Session, db.TrainingRun.session_id == db.Session.id)
        .where(
            db.Checkpoint.training_run_id == path.training_run_id,
            db.Checkpoint.kind == path.kind,
            db.Checkpoint.name == path.name,
            StoreBase._live(),
            visible("accessible", caller.user_id) | db.Checkpoint.public.is_(True),
        )
    ).scalar_one_or_none()
    if ckpt is None:
        raise NotFound("Checkpoint not found")
    return ckpt


def writable_project(s: DbSession, caller: Caller, project_id: str) -> db.Project:
    """A project of the caller's organization that the caller is a member of."""
    project = s.get(db.Project, project_id) if "\x00" not in project_id else None
    if project is None or project.organization_id != caller.organization_id:
        raise NotFound("Project not found")
    if s.get(db.ProjectMember, (project.id, caller.user_id)) is None:
        raise Forbidden("destination_project_id: you are not a member of this project")
    return project


def link_files(source: Path, target: Path) -> None:
    """Make ``target`` a directory of hard links to every file under ``source``."""
    target.mkdir(parents=True)
    try:
        for path in source.rglob("*"):
            if path.is_file() and not path.is_symlink():
                link = target / path.relative_to(source)
                link.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, link)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


@dataclass(frozen=True)
class SignedUrls:
    """A signed URL per relative file path, all expiring at ``expires``."""

    urls: dict[str, str]
    expires: dt.datetime


def _signed(signer: UrlSigner, blob_id: str, relative: str, expires: int) -> dict[str, Any]:
    return {
        "expires": expires,
        "signature": signer.signature(file_url_message(blob_id, relative), expires),
    }


def file_url_message(blob_id: str, relative: str) -> str:
    """What a checkpoint file's URL signs: the file set and the relative path together."""
    return f"{FILES_ROUTE}/{blob_id}/{relative}"


class WeightStore(StoreBase):
    """``copy_weights`` and the files of ``external_weights`` checkpoints."""

    def copy_weights(
        self,
        caller: Caller,
        *,
        source_path: str,
        destination_project_id: str,
        ttl_seconds: int | None,
        idempotent: IdempotentRequest | None = None,
    ) -> str:
        """Copy a readable checkpoint into a new run of a writable project; return its tinker path.

        ``POST /api/v1/copy_weights``

        The copy's files are linked before the commit and removed again if it fails.
        """
        if ttl_seconds is not None and not TTL_MIN <= ttl_seconds <= TTL_MAX:
            raise BadRequest(f"ttl_seconds: must be between {TTL_MIN} and {TTL_MAX}")
        blob_id = secrets.token_hex(16)
        try:
            with self.write(idempotent) as s:
                tinker_path = self._copy(
                    s, caller, source_path, destination_project_id, ttl_seconds, blob_id
                )
                s.info[RESPONSE_BODY] = json.dumps({"tinker_path": tinker_path}).encode()
        except BaseException:
            shutil.rmtree(self.blob_dir / blob_id, ignore_errors=True)
            raise
        return tinker_path

    def _copy(
        self,
        s: DbSession,
        caller: Caller,
        source_path: str,
        destination_project_id: str,
        ttl_seconds: int | None,
        blob_id: str,
    ) -> str:
        source = readable_checkpoint(s, caller, source_path)
        project = writable_project(s, caller, destination_project_id)
        source_run = s.get(db.TrainingRun, source.training_run_id)
        assert source_run is not None
        now = db.utcnow()
        session = db.Session(
            id=f"sess-{secrets.token_hex(4)}",
            owner_id=caller.user_id,
            project_id=project.id,
            display_name=f"copy of {source_path}",
            user_metadata=None,
            created_at=now,
            next_train_index=1,
            next_sample_index=0,
        )
        run = db.TrainingRun(
            id=f"{session.id}:train:0",
            session_id=session.id,
            base_model=source_run.base_model,
            lora_rank=source_run.lora_rank,
            corrupted=False,
            train_unembed=source_run.train_unembed,
            train_mlp=source_run.train_mlp,
            train_attn=source_run.train_attn,
            optimizer=source_run.optimizer,
            user_metadata=None,
            created_at=now,
            last_request_time=now,
        )
        link_files(self.blob_dir / source.blob_id, self.blob_dir / blob_id)
        s.add_all([session, run])
        s.flush()
        s.add(db.WeightCopy(training_run_id=run.id, source_tinker_path=source_path, created_at=now))
        copy = db.Checkpoint(
            training_run_id=run.id,
            kind=source.kind,
            name=source.name,
            created_at=now,
            size_bytes=source.size_bytes,
            public=False,
            expires_at=None if ttl_seconds is None else now + dt.timedelta(seconds=ttl_seconds),
            user_metadata=source.user_metadata,
            blob_id=blob_id,
        )
        s.add(copy)
        tinker_path = f"tinker://{run.id}/{copy.kind}/{copy.name}"
        self._audit(
            s,
            caller.organization_id,
            "checkpoint_copy",
            {"user": caller.email, "source_path": source_path, "project_id": project.id},
            model_id=run.id,
            tinker_path=tinker_path,
        )
        record_usage(
            s,
            organization_id=caller.organization_id,
            user_id=caller.user_id,
            session_id=session.id,
            base_model=run.base_model,
            event_info={"type": "checkpoint", "count": 1},
        )
        s.flush()
        return tinker_path

    def external_weights_urls(
        self,
        caller: Caller,
        signer: UrlSigner,
        *,
        training_run_id: str,
        checkpoint_name: str,
        base_url: str,
        valid_seconds: int,
    ) -> SignedUrls:
        """A signed URL for each file of an accessible ``external_weights`` checkpoint.

        ``GET …/checkpoints/external_weights/{name}/external_weights_urls``
        """
        try:
            named = TinkerPath(training_run_id, "external_weights", checkpoint_name)
        except ValueError:
            raise NotFound("Checkpoint not found") from None
        with self.transaction() as s:
            ckpt, _, _ = self._visible_checkpoint(s, caller, named, "accessible")
        directory = self.blob_dir / ckpt.blob_id
        files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.is_symlink())
        if len(files) > MAX_FILES:
            raise BadRequest(f"checkpoint: holds more than {MAX_FILES} files")
        expires = int(dt.datetime.now(dt.UTC).timestamp()) + valid_seconds
        urls = {}
        for path in files:
            relative = path.relative_to(directory).as_posix()
            query = urllib.parse.urlencode(
                {"path": relative, **_signed(signer, ckpt.blob_id, relative, expires)}
            )
            urls[relative] = f"{base_url}{FILES_ROUTE}/{ckpt.blob_id}?{query}"
        return SignedUrls(urls, dt.datetime.fromtimestamp(expires, dt.UTC))

    def checkpoint_file(self, blob_id: str, relative: str) -> Path:
        """The file ``relative`` inside a live checkpoint's files; never a path outside them."""
        parts = PurePosixPath(relative).parts
        if (
            not parts
            or relative.startswith("/")
            or "\\" in relative
            or "\x00" in relative
            or any(part in ("..", ".") for part in relative.split("/"))
        ):
            raise BadRequest(f"path: {relative!r} is not a plain relative file path")
        with self.transaction() as s:
            live = s.execute(
                select(db.Checkpoint.id).where(db.Checkpoint.blob_id == blob_id, self._live())
            ).first()
        if live is None:
            raise NotFound("File not found")
        directory = (self.blob_dir / blob_id).resolve()
        target = directory.joinpath(*parts).resolve()
        if not target.is_relative_to(directory) or not target.is_file():
            raise NotFound("File not found")
        return target

    def writable_projects(self, user_id: str) -> list[str]:
        """The ids of the projects a user may copy weights into (the projects they belong to)."""
        with self.transaction() as s:
            return sorted(
                s.execute(
                    select(db.ProjectMember.project_id).where(db.ProjectMember.user_id == user_id)
                ).scalars()
            )
