"""The domain service of the reference server: every read and write, with its access rules.

Routes in :mod:`tinker_rest.server.app` and the admin API of :class:`TinkerServer` call
:class:`Store`; nothing else touches the database. Each method runs in its own transaction and
commits before it returns, so an acknowledged write survives a crash.

Access rules (the same for every route):

- ``owned`` covers what the caller owns; ``accessible`` adds sessions (and their runs, samplers
  and checkpoints) in projects the caller is a member of.
- Anything the caller may not see raises :class:`NotFound`, never a 403, so nobody learns that a
  private thing exists. Only the run's owner may publish, unpublish, delete or set a TTL.
- Expired checkpoints are gone: every query leaves them out, and :meth:`Store.sweep` deletes
  them with their files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    ScalarSelect,
    Select,
    bindparam,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from tinker_rest.server import db

KIND_TO_TYPE = {"weights": "training", "sampler_weights": "sampler", "external_weights": "external"}
TTL_MIN = 3600
TTL_MAX = 315_360_000
ROLES = ("member", "admin")
IDEMPOTENCY_WINDOW = dt.timedelta(hours=24)
# Larger offsets than this cannot point into any list; clamping keeps the SQL integer in range.
MAX_OFFSET = 2**31
# The event-name prefixes of each audit event type (LIKE patterns, `_` escaped); none for all.
AUDIT_EVENT_PREFIXES: dict[str, tuple[str, ...]] = {
    "all": (),
    "checkpoints": ("checkpoint\\_",),
    "projects": ("project\\_", "session\\_assign\\_project"),
    "teams": ("team\\_",),
    "organizations": ("organization\\_", "user\\_", "api\\_key\\_"),
}
TINKER_PATH = re.compile(r"tinker://([^/]+)/(weights|sampler_weights|external_weights)/([^/]+)")


class StoreError(Exception):
    """A request the store refuses; ``status`` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(StoreError):
    """Invalid input (400); the detail names the field."""

    status = 400


class Forbidden(StoreError):
    """The caller lacks a role or may not use a destination (403)."""

    status = 403


class NotFound(StoreError):
    """It does not exist, or the caller may not see it (404)."""

    status = 404


class Conflict(StoreError):
    """The thing is already in the requested state (409)."""

    status = 409


@dataclass(frozen=True)
class Caller:
    """The authenticated user behind an API key."""

    user_id: str
    email: str
    organization_id: str
    role: str
    key_hash: str


@dataclass(frozen=True)
class CheckpointFiles:
    """Where a checkpoint's files are, for the archive builder."""

    checkpoint_pk: int
    tinker_path: str
    directory: Path


def hash_api_key(raw_key: str) -> str:
    """The SHA-256 hex digest under which an API key is stored.

    Keys carry 256 random bits, so a fast unsalted hash cannot be brute-forced, and a lookup by
    hash stays a single indexed query.
    """
    return hashlib.sha256(raw_key.encode("utf-8", "surrogateescape")).hexdigest()


def parse_tinker_path(value: str) -> tuple[str, str, str]:
    """Split ``tinker://<run>/<kind>/<name>`` into its parts, or raise :class:`BadRequest`."""
    match = TINKER_PATH.fullmatch(value)
    if match is None:
        raise BadRequest(
            f"tinker_path: {value!r} is not tinker://<training_run_id>/<kind>/<name> "
            "with kind weights, sampler_weights or external_weights"
        )
    return match.group(1), match.group(2), match.group(3)


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def _safe_id(value: str) -> bool:
    """Whether an id from a URL could name a row (NUL bytes never do, and break PostgreSQL)."""
    return "\x00" not in value and len(value) <= 1000


CALLER_CACHE_SECONDS = 5.0


def _visible(scope: str) -> ColumnElement[bool]:
    """Whether the joined session is visible under ``scope`` to the user ``:user_id``."""
    owned = db.Session.owner_id == bindparam("user_id")
    if scope != "accessible":
        return owned
    member_of = select(db.ProjectMember.project_id).where(
        db.ProjectMember.user_id == bindparam("user_id")
    )
    return or_(owned, db.Session.project_id.in_(member_of))


def _visible_run_statement(scope: str) -> Select[db.TrainingRun, db.Session]:
    return (
        select(db.TrainingRun, db.Session)
        .join(db.Session, db.TrainingRun.session_id == db.Session.id)
        .where(db.TrainingRun.id == bindparam("run_id"), _visible(scope))
    )


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
_VISIBLE_RUN = {scope: _visible_run_statement(scope) for scope in ("owned", "accessible")}
_RUN_WITH_OWNER = {
    scope: _runs_with_owner().where(db.TrainingRun.id == bindparam("run_id"), _visible(scope))
    for scope in ("owned", "accessible")
}
# A run's newest live training and sampler checkpoints: at most one row of each kind.
_LATEST_CHECKPOINTS = select(db.Checkpoint.__table__).where(
    db.Checkpoint.id.in_(
        [_latest_checkpoint_id("weights"), _latest_checkpoint_id("sampler_weights")]
    )
)


class Store:
    """Every domain operation of the server, over one SQLAlchemy engine and the blob folder."""

    def __init__(self, engine: Engine, data_dir: Path) -> None:
        self.engine = engine
        self.data_dir = data_dir
        self.blob_dir = data_dir / "blobs"
        self.archive_dir = data_dir / "archives"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # key hash -> (monotonic time it was looked up, caller); see authenticate().
        self._callers: dict[str, tuple[float, Caller]] = {}
        self._callers_lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[DbSession]:
        """A database session that commits on success and rolls back on error."""
        with self._sessions.begin() as session:
            yield session

    # --- authentication -------------------------------------------------------------------

    def authenticate(self, raw_key: str | None) -> Caller | None:
        """The caller behind an ``X-API-Key``, or None for a missing, unknown or revoked key."""
        if not raw_key:
            return None
        key_hash = hash_api_key(raw_key)
        cached = self._recent_caller(key_hash)
        if cached is not None:
            return cached
        caller = self._lookup_caller(key_hash)
        with self._callers_lock:
            if caller is None:
                self._callers.pop(key_hash, None)
            else:
                self._callers[key_hash] = (time.monotonic(), caller)
        return caller

    def recent_caller(self, raw_key: str | None) -> Caller | None:
        """The caller behind a key :meth:`authenticate` accepted in the last few seconds, else
        None. It never touches the database, so an event loop may call it."""
        return self._recent_caller(hash_api_key(raw_key)) if raw_key else None

    def _recent_caller(self, key_hash: str) -> Caller | None:
        # Every request authenticates, so a key seen in the last few seconds is not looked up
        # again. A revocation through this store takes effect at once; one made by another
        # process on the same database (`tinker-rest admin revoke-key`) within CALLER_CACHE_SECONDS.
        with self._callers_lock:
            cached = self._callers.get(key_hash)
        if cached is not None and time.monotonic() - cached[0] < CALLER_CACHE_SECONDS:
            return cached[1]
        return None

    def _lookup_caller(self, key_hash: str) -> Caller | None:
        with self.transaction() as s:
            row = s.execute(
                select(db.User)
                .join(db.ApiKey, db.ApiKey.user_id == db.User.id)
                .where(db.ApiKey.key_hash == key_hash, db.ApiKey.revoked_at.is_(None))
            ).scalar_one_or_none()
            if row is None:
                return None
            return Caller(row.id, row.email, row.organization_id, row.role, key_hash)

    # --- admin: organizations, users, keys, projects, sessions, runs ------------------------

    def add_organization(self, name: str) -> str:
        """Create an organization and return its id."""
        org_id = _new_id("org")
        with self.transaction() as s:
            s.add(db.Organization(id=org_id, name=name, created_at=db.utcnow()))
        return org_id

    def add_user(self, email: str, *, organization_id: str, role: str = "member") -> str:
        """Create a user with role ``member`` or ``admin`` and return the user id."""
        if role not in ROLES:
            raise BadRequest(f"role: must be one of {', '.join(ROLES)}, not {role!r}")
        user_id = _new_id("user")
        with self.transaction() as s:
            if s.get(db.Organization, organization_id) is None:
                raise NotFound(f"Organization {organization_id!r} not found")
            s.add(
                db.User(
                    id=user_id,
                    email=email,
                    organization_id=organization_id,
                    role=role,
                    created_at=db.utcnow(),
                )
            )
        return user_id

    def add_api_key(self, user_id: str, raw_key: str | None = None) -> str:
        """Create an API key for a user; the raw key is returned once and never stored.

        ``raw_key`` imports a key made elsewhere (``tml-`` and at least 32 more characters).
        """
        if raw_key is None:
            raw_key = "tml-" + secrets.token_urlsafe(32)
        elif not raw_key.startswith("tml-") or len(raw_key) < 36:
            raise BadRequest("key: must be tml- followed by at least 32 characters")
        with self.transaction() as s:
            user = s.get(db.User, user_id)
            if user is None:
                raise NotFound(f"User {user_id!r} not found")
            s.add(
                db.ApiKey(
                    id=_new_id("key"),
                    key_hash=hash_api_key(raw_key),
                    user_id=user_id,
                    created_at=db.utcnow(),
                )
            )
            self._audit(s, user.organization_id, "api_key_create", {"user": user.email})
        return raw_key

    def revoke_api_key(self, raw_key: str) -> None:
        """Revoke an API key given in full; unknown keys raise :class:`NotFound`."""
        with self.transaction() as s:
            key = s.execute(
                select(db.ApiKey).where(db.ApiKey.key_hash == hash_api_key(raw_key))
            ).scalar_one_or_none()
            if key is None:
                raise NotFound("API key not found")
            if key.revoked_at is None:
                key.revoked_at = db.utcnow()
                user = s.get(db.User, key.user_id)
                assert user is not None
                self._audit(s, user.organization_id, "api_key_revoke", {"user": user.email})
        # After the commit, so that no request can cache the key as valid again.
        with self._callers_lock:
            self._callers.pop(hash_api_key(raw_key), None)

    def add_project(
        self,
        name: str,
        *,
        organization_id: str,
        members: list[str] | tuple[str, ...] = (),
        project_id: str | None = None,
    ) -> str:
        """Create a project with the given member user ids and return its id."""
        project_id = project_id or _new_id("proj")
        with self.transaction() as s:
            if s.get(db.Organization, organization_id) is None:
                raise NotFound(f"Organization {organization_id!r} not found")
            s.add(
                db.Project(
                    id=project_id,
                    name=name,
                    organization_id=organization_id,
                    created_at=db.utcnow(),
                )
            )
            s.flush()
            for user_id in dict.fromkeys(members):
                if s.get(db.User, user_id) is None:
                    raise NotFound(f"User {user_id!r} not found")
                s.add(db.ProjectMember(project_id=project_id, user_id=user_id))
        return project_id

    def add_project_member(self, project_id: str, user_id: str) -> None:
        """Add a user to a project."""
        with self.transaction() as s:
            if s.get(db.ProjectMember, (project_id, user_id)) is None:
                s.add(db.ProjectMember(project_id=project_id, user_id=user_id))

    def add_session(
        self,
        owner_id: str,
        *,
        project_id: str | None = None,
        display_name: str | None = None,
        user_metadata: Mapping[str, str] | None = None,
        session_id: str | None = None,
        created_at: dt.datetime | None = None,
    ) -> str:
        """Create a session owned by a user and return its id, ``sess-<hex>``."""
        session_id = session_id or f"sess-{secrets.token_hex(4)}"
        with self.transaction() as s:
            if s.get(db.User, owner_id) is None:
                raise NotFound(f"User {owner_id!r} not found")
            if project_id is not None and s.get(db.Project, project_id) is None:
                raise NotFound(f"Project {project_id!r} not found")
            s.add(
                db.Session(
                    id=session_id,
                    owner_id=owner_id,
                    project_id=project_id,
                    display_name=display_name,
                    user_metadata=dict(user_metadata) if user_metadata is not None else None,
                    created_at=created_at or db.utcnow(),
                    next_train_index=0,
                    next_sample_index=0,
                )
            )
        return session_id

    def add_training_run(
        self,
        session_id: str,
        *,
        base_model: str,
        lora_rank: int | None = 32,
        user_metadata: Mapping[str, str] | None = None,
        corrupted: bool = False,
        training_run_id: str | None = None,
    ) -> str:
        """Create a training run ``<session>:train:<n>`` (or ``training_run_id`` if given);
        ``lora_rank=None`` is a full run."""
        with self.transaction() as s:
            session = s.get(db.Session, session_id)
            if session is None:
                raise NotFound(f"Session {session_id!r} not found")
            run_id = training_run_id or f"{session_id}:train:{session.next_train_index}"
            session.next_train_index += 1
            now = db.utcnow()
            s.add(
                db.TrainingRun(
                    id=run_id,
                    session_id=session_id,
                    base_model=base_model,
                    lora_rank=lora_rank,
                    corrupted=corrupted,
                    train_unembed=True,
                    train_mlp=True,
                    train_attn=True,
                    optimizer="adam",
                    user_metadata=dict(user_metadata) if user_metadata is not None else None,
                    created_at=now,
                    last_request_time=now,
                )
            )
        return run_id

    def add_sampler(
        self,
        session_id: str,
        *,
        base_model: str,
        model_path: str | None = None,
        sampler_id: str | None = None,
    ) -> str:
        """Create a sampler ``<session>:sample:<n>`` (or ``sampler_id``); return its id."""
        with self.transaction() as s:
            session = s.get(db.Session, session_id)
            if session is None:
                raise NotFound(f"Session {session_id!r} not found")
            sampler_id = sampler_id or f"{session_id}:sample:{session.next_sample_index}"
            session.next_sample_index += 1
            s.add(
                db.Sampler(
                    id=sampler_id,
                    session_id=session_id,
                    base_model=base_model,
                    model_path=model_path,
                    created_at=db.utcnow(),
                )
            )
        return sampler_id

    def add_checkpoint(
        self,
        training_run_id: str,
        kind: str,
        name: str,
        *,
        files: Mapping[str, bytes | int],
        public: bool = False,
        expires_at: dt.datetime | None = None,
        created_at: dt.datetime | None = None,
        user_metadata: Mapping[str, str] | None = None,
    ) -> str:
        """Create a checkpoint with real files on disk and return its tinker path.

        ``files`` maps relative file names to their bytes, or to a size: an int writes a file of
        that many zero bytes without holding it in memory (a sparse file where the disk allows).
        """
        if kind not in KIND_TO_TYPE:
            raise BadRequest(f"kind: must be one of {', '.join(KIND_TO_TYPE)}, not {kind!r}")
        if not name or "/" in name:
            raise BadRequest(f"name: must be non-empty and hold no '/', not {name!r}")
        blob_id = secrets.token_hex(16)
        directory = self.blob_dir / blob_id
        size = _write_files(directory, files)
        now = db.utcnow()
        try:
            with self.transaction() as s:
                run = s.get(db.TrainingRun, training_run_id)
                if run is None:
                    raise NotFound(f"Training run {training_run_id!r} not found")
                s.add(
                    db.Checkpoint(
                        training_run_id=training_run_id,
                        kind=kind,
                        name=name,
                        created_at=created_at or now,
                        size_bytes=size,
                        public=public,
                        expires_at=expires_at,
                        user_metadata=dict(user_metadata) if user_metadata is not None else None,
                        blob_id=blob_id,
                    )
                )
                run.last_request_time = max(run.last_request_time, created_at or now)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return f"tinker://{training_run_id}/{kind}/{name}"

    def is_empty(self) -> bool:
        """Whether the database holds no organization yet."""
        with self.transaction() as s:
            return s.execute(select(func.count()).select_from(db.Organization)).scalar_one() == 0

    # --- visibility -------------------------------------------------------------------------

    @staticmethod
    def _session_visible(caller: Caller, scope: str) -> ColumnElement[bool]:
        owned = db.Session.owner_id == caller.user_id
        if scope != "accessible":
            return owned
        member_of = select(db.ProjectMember.project_id).where(
            db.ProjectMember.user_id == caller.user_id
        )
        return or_(owned, db.Session.project_id.in_(member_of))

    @staticmethod
    def _live() -> ColumnElement[bool]:
        return or_(db.Checkpoint.expires_at.is_(None), db.Checkpoint.expires_at > db.utcnow())

    def _visible_run(
        self, s: DbSession, caller: Caller, run_id: str, scope: str
    ) -> tuple[db.TrainingRun, db.Session]:
        if not _safe_id(run_id):
            raise NotFound("Training run not found")
        statement = _VISIBLE_RUN["accessible" if scope == "accessible" else "owned"]
        row = s.execute(statement, {"run_id": run_id, "user_id": caller.user_id}).first()
        if row is None:
            raise NotFound("Training run not found")
        return row[0], row[1]

    def _visible_checkpoint(
        self, s: DbSession, caller: Caller, run_id: str, kind: str, name: str, scope: str
    ) -> tuple[db.Checkpoint, db.TrainingRun, db.Session]:
        run, session = self._visible_run(s, caller, run_id, scope)
        ckpt = self._checkpoint_of(s, run.id, kind, name)
        if ckpt is None:
            raise NotFound("Checkpoint not found")
        return ckpt, run, session

    def _checkpoint_of(
        self, s: DbSession, run_id: str, kind: str, name: str
    ) -> db.Checkpoint | None:
        if not _safe_id(name):
            return None
        return s.execute(
            select(db.Checkpoint).where(
                db.Checkpoint.training_run_id == run_id,
                db.Checkpoint.kind == kind,
                db.Checkpoint.name == name,
                self._live(),
            )
        ).scalar_one_or_none()

    @staticmethod
    def _page(s: DbSession, query: Select[Any], limit: int, offset: int) -> tuple[list[Any], int]:
        total = s.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = s.execute(query.limit(limit).offset(min(offset, MAX_OFFSET))).all()
        return [row[0] for row in rows], int(total)

    # --- training runs ----------------------------------------------------------------------

    def list_training_runs(
        self, caller: Caller, *, limit: int, offset: int, scope: str, project_id: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of visible training runs, most recently used first, and the total count.

        ``GET /api/v1/training_runs``
        """
        query = (
            _runs_with_owner()
            .where(self._session_visible(caller, scope))
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

    # --- checkpoints ------------------------------------------------------------------------

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

    def _owned_checkpoint(
        self, s: DbSession, caller: Caller, run_id: str, kind: str, name: str
    ) -> db.Checkpoint:
        ckpt, _, _ = self._visible_checkpoint(s, caller, run_id, kind, name, "owned")
        return ckpt

    def set_public(self, caller: Caller, run_id: str, kind: str, name: str, public: bool) -> None:
        """Publish or unpublish an owned checkpoint; the same state again is a conflict.

        ``POST`` / ``DELETE /api/v1/training_runs/{run}/checkpoints/{kind}/{name}/publish``
        """
        with self.transaction() as s:
            ckpt = self._owned_checkpoint(s, caller, run_id, kind, name)
            if ckpt.public == public:
                state = "public" if public else "private"
                raise Conflict(f"Checkpoint is already {state}")
            ckpt.public = public
            self._audit_checkpoint(
                s, caller, "checkpoint_publish" if public else "checkpoint_unpublish", ckpt
            )

    def set_ttl(
        self, caller: Caller, run_id: str, kind: str, name: str, ttl_seconds: int | None
    ) -> None:
        """Set an owned checkpoint to expire ``ttl_seconds`` from now, or never for None.

        ``PUT /api/v1/training_runs/{run}/checkpoints/{kind}/{name}/ttl``
        """
        if ttl_seconds is not None and not TTL_MIN <= ttl_seconds <= TTL_MAX:
            raise BadRequest(f"ttl_seconds: must be between {TTL_MIN} and {TTL_MAX}, or null")
        with self.transaction() as s:
            ckpt = self._owned_checkpoint(s, caller, run_id, kind, name)
            ckpt.expires_at = (
                None if ttl_seconds is None else db.utcnow() + dt.timedelta(seconds=ttl_seconds)
            )
            self._audit_checkpoint(
                s, caller, "checkpoint_set_ttl", ckpt, {"ttl_seconds": ttl_seconds}
            )

    def delete_checkpoint(self, caller: Caller, run_id: str, kind: str, name: str) -> None:
        """Delete an owned checkpoint, its archive and its files.

        ``DELETE /api/v1/training_runs/{run}/checkpoints/{kind}/{name}``
        """
        with self.transaction() as s:
            ckpt = self._owned_checkpoint(s, caller, run_id, kind, name)
            doomed = self._drop_checkpoint(s, ckpt)
            self._audit_checkpoint(s, caller, "checkpoint_delete", ckpt)
        _remove_paths(doomed)

    def _drop_checkpoint(self, s: DbSession, ckpt: db.Checkpoint) -> list[Path]:
        """Delete a checkpoint row and its archive row; return the paths to remove after commit."""
        doomed = [self.blob_dir / ckpt.blob_id]
        for archive in s.execute(
            select(db.Archive).where(db.Archive.checkpoint_id == ckpt.id)
        ).scalars():
            doomed.append(self.archive_path(archive.id))
            s.delete(archive)
        s.delete(ckpt)
        return doomed

    def weights_info(self, caller: Caller, tinker_path: str) -> dict[str, Any]:
        """The model behind an accessible or published checkpoint.

        ``POST /api/v1/weights_info``
        """
        run_id, kind, name = parse_tinker_path(tinker_path)
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

    def checkpoint_files(
        self, caller: Caller, run_id: str, kind: str, name: str
    ) -> CheckpointFiles:
        """Where an accessible checkpoint's files are, for its archive.

        ``GET /api/v1/training_runs/{run}/checkpoints/{kind}/{name}/archive``
        """
        with self.transaction() as s:
            ckpt, _, _ = self._visible_checkpoint(s, caller, run_id, kind, name, "accessible")
            return CheckpointFiles(
                ckpt.id, f"tinker://{run_id}/{kind}/{name}", self.blob_dir / ckpt.blob_id
            )

    # --- archives (the rows; building is in archives.py) -------------------------------------

    def archive_path(self, archive_id: str) -> Path:
        """Where the tar file of an archive lives."""
        return self.archive_dir / f"{archive_id}.tar"

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
                    created_at=db.utcnow(),
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

    # --- sessions and samplers --------------------------------------------------------------

    def list_sessions(self, caller: Caller, *, limit: int, offset: int, scope: str) -> list[str]:
        """One page of visible session ids, newest first.

        ``GET /api/v1/sessions``
        """
        with self.transaction() as s:
            query = (
                select(db.Session.id)
                .where(self._session_visible(caller, scope))
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
            select(db.Session).where(
                db.Session.id == session_id, self._session_visible(caller, scope)
            )
        ).scalar_one_or_none()
        if session is None:
            raise NotFound("Session not found")
        return session

    def assign_session_project(self, caller: Caller, session_id: str, project_id: str) -> None:
        """Move an owned session into a project of the caller's organization they belong to.

        ``PUT /api/v1/sessions/{session_id}/project``
        """
        with self.transaction() as s:
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
                .where(db.Sampler.id == sampler_id, self._session_visible(caller, "accessible"))
            ).scalar_one_or_none()
            if sampler is None:
                raise NotFound("Sampler not found")
            return {
                "sampler_id": sampler.id,
                "base_model": sampler.base_model,
                "model_path": sampler.model_path,
            }

    # --- audit log --------------------------------------------------------------------------

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

    @staticmethod
    def _audit(
        s: DbSession,
        organization_id: str,
        event_name: str,
        details: dict[str, Any],
        *,
        model_id: str | None = None,
        tinker_path: str | None = None,
    ) -> None:
        s.add(
            db.AuditEntry(
                organization_id=organization_id,
                timestamp=db.utcnow(),
                event=event_name,
                event_details=details,
                model_id=model_id,
                tinker_path=tinker_path,
            )
        )

    def _audit_checkpoint(
        self,
        s: DbSession,
        caller: Caller,
        event_name: str,
        ckpt: db.Checkpoint,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self._audit(
            s,
            caller.organization_id,
            event_name,
            {"user": caller.email, **(extra or {})},
            model_id=ckpt.training_run_id,
            tinker_path=f"tinker://{ckpt.training_run_id}/{ckpt.kind}/{ckpt.name}",
        )

    def audit_archive_url(self, caller: Caller, tinker_path: str, run_id: str) -> None:
        """Record that a caller asked for a checkpoint's download URL."""
        with self.transaction() as s:
            self._audit(
                s,
                caller.organization_id,
                "checkpoint_archive_url",
                {"user": caller.email},
                model_id=run_id,
                tinker_path=tinker_path,
            )

    # --- idempotency ------------------------------------------------------------------------

    def stored_response(self, request_hash: str) -> tuple[int, str | None, bytes] | None:
        """The stored first response to an idempotent request of the last 24 hours."""
        with self.transaction() as s:
            row = s.execute(
                select(db.IdempotentResponse).where(
                    db.IdempotentResponse.request_hash == request_hash,
                    db.IdempotentResponse.created_at > db.utcnow() - IDEMPOTENCY_WINDOW,
                )
            ).scalar_one_or_none()
            return None if row is None else (row.status_code, row.content_type, row.body)

    def store_response(
        self, request_hash: str, status_code: int, content_type: str | None, body: bytes
    ) -> None:
        """Keep the first response to an idempotent request, replacing an outdated one."""
        with self.transaction() as s:
            s.execute(
                delete(db.IdempotentResponse).where(
                    db.IdempotentResponse.request_hash == request_hash
                )
            )
            s.add(
                db.IdempotentResponse(
                    request_hash=request_hash,
                    status_code=status_code,
                    content_type=content_type,
                    body=body,
                    created_at=db.utcnow(),
                )
            )

    # --- the sweep --------------------------------------------------------------------------

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
                    tinker_path=f"tinker://{ckpt.training_run_id}/{ckpt.kind}/{ckpt.name}",
                )
            s.execute(
                delete(db.IdempotentResponse).where(
                    db.IdempotentResponse.created_at <= now - IDEMPOTENCY_WINDOW
                )
            )
        _remove_paths(doomed)
        return len(expired)


def checkpoint_view(ckpt: db.Checkpoint | Row[Any]) -> dict[str, Any]:
    """A checkpoint (or a row of its columns) as the wire shows it (``Checkpoint`` in the spec)."""
    return {
        "checkpoint_id": f"{ckpt.kind}/{ckpt.name}",
        "checkpoint_type": KIND_TO_TYPE[ckpt.kind],
        "time": ckpt.created_at,
        "tinker_path": f"tinker://{ckpt.training_run_id}/{ckpt.kind}/{ckpt.name}",
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


def _remove_paths(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
