"""The shared part of the store: transactions, idempotent writes, the one visibility rule, the
value types routes receive (:class:`Caller`, :class:`CheckpointFiles`) and shared helpers.

Each method runs in its own transaction and commits before it returns, so an acknowledged write
survives a crash. Anything the caller may not see raises :class:`NotFound`, never a 403, so
nobody learns that a private thing exists. Expired checkpoints are gone: every query leaves
them out, and the sweep deletes them with their files."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Engine,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker
from sqlalchemy.sql.elements import BindParameter

from tinker_rest._errors import InvalidTinkerPathError
from tinker_rest._paths import TinkerPath
from tinker_rest.server import db
from tinker_rest.server.errors import (
    ApiError,
    NotFound,
    Unavailable,
    Unprocessable,
)
from tinker_rest.server.idempotency import HEADER as IDEMPOTENCY_HEADER
from tinker_rest.server.idempotency import IdempotentRequest, Replay, StoredResponse

log = logging.getLogger("tinker_rest.server")
TTL_MIN = 3600


TTL_MAX = 315_360_000


ROLES = ("member", "admin")


IDEMPOTENCY_WINDOW = dt.timedelta(hours=24)


# Larger offsets than this cannot point into any list; clamping keeps the SQL integer in range.
MAX_OFFSET = 2**31


# A write that answers with a JSON body (not a 204) puts it here in its session's ``info``, so
# that :meth:`StoreBase.write` records it with the idempotency key in the same commit.
RESPONSE_BODY = "idempotent_response_body"


# The store raises the server's one error type; the old name stays for callers of the store.
StoreError = ApiError

Row = TypeVar("Row", bound=db.Base)
T = TypeVar("T")


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


def parse_tinker_path(value: str) -> TinkerPath:
    """Parse a tinker path with the client's grammar (:class:`TinkerPath`).

    The spec's pattern (checked on the request body) already refused a malformed path with a
    400. A path that fits the pattern but not the stricter grammar (whitespace, control
    characters) names no checkpoint, since every checkpoint is added through the grammar, so
    it is a 404 like any other missing checkpoint.

    Raises:
        NotFound: the grammar refuses the path.
    """
    try:
        return TinkerPath.parse(value)
    except InvalidTinkerPathError:
        raise NotFound("Checkpoint not found") from None


def plain_dict(mapping: Mapping[str, str] | None) -> dict[str, str] | None:
    """A mapping as the plain ``dict`` a JSON column stores (None stays None)."""
    return None if mapping is None else dict(mapping)


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def _safe_id(value: str) -> bool:
    """Whether an id from a URL could name a row (NUL bytes never do, and break PostgreSQL)."""
    return "\x00" not in value and len(value) <= 1000


def _remove_paths(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def tinker_path_of(ckpt: db.Checkpoint) -> str:
    """A stored checkpoint's tinker path (its parts passed the grammar when it was added)."""
    return str(TinkerPath(ckpt.training_run_id, ckpt.kind, ckpt.name))  # type: ignore[arg-type]


def visible(scope: str, user_id: str | BindParameter[str] | None = None) -> ColumnElement[bool]:
    """The one visibility rule: whether the joined session is visible under ``scope``.

    ``owned`` is the sessions the user owns; ``accessible`` adds sessions in projects the user
    is a member of. ``user_id`` is the user's id, or by default the bound parameter
    ``:user_id`` (for statements built once and run many times).
    """
    user = bindparam("user_id") if user_id is None else user_id
    owned = db.Session.owner_id == user
    if scope != "accessible":
        return owned
    member_of = select(db.ProjectMember.project_id).where(db.ProjectMember.user_id == user)
    return or_(owned, db.Session.project_id.in_(member_of))


def _visible_run_statement(scope: str) -> Select[db.TrainingRun, db.Session]:
    return (
        select(db.TrainingRun, db.Session)
        .join(db.Session, db.TrainingRun.session_id == db.Session.id)
        .where(db.TrainingRun.id == bindparam("run_id"), visible(scope))
    )


_VISIBLE_RUN = {scope: _visible_run_statement(scope) for scope in ("owned", "accessible")}


class KeyTaken(Exception):
    """Another request with the same idempotency key committed its record first."""


def _record_statement(dialect: str) -> Insert:
    """The insert of an idempotency record: a stale record of the key (past the window, not
    yet swept) is replaced, a live one is left alone (and nothing is inserted)."""
    table = cast(Table, db.IdempotentResponse.__table__)
    upsert = (sqlite_insert if dialect == "sqlite" else postgresql_insert)(table)
    replaced = ("fingerprint", "status_code", "content_type", "body", "created_at")
    return upsert.on_conflict_do_update(
        index_elements=[table.c.request_hash],
        set_={name: upsert.excluded[name] for name in replaced},
        where=table.c.created_at <= bindparam("stale_before", type_=db.UTCDateTime()),
    ).returning(table.c.id)  # a row when it inserted or replaced (rowcount is not portable)


_RECORD = {dialect: _record_statement(dialect) for dialect in ("sqlite", "postgresql")}
_AUDIT = insert(db.AuditEntry)
_CHECKPOINTS = cast(Table, db.Checkpoint.__table__)
_OWNED_CHECKPOINT = (
    _CHECKPOINTS.c.training_run_id == bindparam("run_id"),
    _CHECKPOINTS.c.kind == bindparam("ckpt_kind"),
    _CHECKPOINTS.c.name == bindparam("ckpt_name"),
    or_(
        _CHECKPOINTS.c.expires_at.is_(None),
        _CHECKPOINTS.c.expires_at > bindparam("now", type_=db.UTCDateTime()),
    ),
    _CHECKPOINTS.c.training_run_id.in_(
        select(db.TrainingRun.id)
        .join(db.Session, db.TrainingRun.session_id == db.Session.id)
        .where(db.TrainingRun.id == bindparam("run_id"), visible("owned"))
    ),
)


@functools.cache
def _update_owned_checkpoint(columns: frozenset[str]) -> Update:
    """UPDATE of ``columns`` (bound by their names) of the caller's live checkpoint at a path."""
    values = {name: bindparam(name, type_=_CHECKPOINTS.c[name].type) for name in columns}
    return update(_CHECKPOINTS).where(*_OWNED_CHECKPOINT).values(values)


class GroupLost(Exception):
    """The transaction of a write group ended before its commit; none of its writes stand."""


class WriteGroup:
    """Writes committed together (:meth:`StoreBase.write_group`), each in its own SAVEPOINT."""

    def __init__(self, session: DbSession) -> None:
        self.session = session
        self.after_commit: list[Callable[[], None]] = []

    def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` as one write of the group, as if it had the session to itself.

        Raises:
            GroupLost: SQLite rolled back the whole transaction (some errors do, beyond the
                savepoint), so the writes before this one are gone too.
        """
        # What an earlier write loaded is not this one's (and a Core UPDATE leaves it stale).
        self.session.expunge_all()
        try:
            return fn()
        finally:
            self.check()

    def check(self) -> None:
        """Raise :class:`GroupLost` if SQLite has rolled the group's transaction back."""
        dbapi = self.session.connection().connection.dbapi_connection
        if not getattr(dbapi, "in_transaction", True):
            raise GroupLost("the transaction of the write group was rolled back")


class StoreBase:
    """The database, the blob folder, transactions, and the helpers every resource shares."""

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
        # SQLite has one writer at a time. Without this lock, writers waiting for it poll in
        # SQLite's busy handler, sleeping up to 100 ms between tries while newer writers take
        # the lock first: under the 64-client mix that made the write tail (see write()).
        self._writer = threading.Lock() if engine.dialect.name == "sqlite" else None
        # The write group open on a thread (the writer thread's, see write_group()).
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[DbSession]:
        """A database session that commits on success and rolls back on error.

        Inside a :meth:`write_group` on this thread, a SAVEPOINT of the group's transaction
        instead: released on success, rolled back on error, committed with the group.
        """
        group: WriteGroup | None = getattr(self._local, "group", None)
        if group is None:
            with self._sessions.begin() as session:
                yield session
            return
        group.check()  # a SAVEPOINT outside a transaction would start one of its own
        with group.session.begin_nested():
            yield group.session

    @contextmanager
    def write_group(self) -> Iterator[WriteGroup]:
        """One SQLite transaction that the writes run through :meth:`WriteGroup.run` join.

        Each write runs in its own SAVEPOINT (a failing one rolls back only its own changes
        and idempotency record); the group commits once when the block ends, then runs what
        the writes left for after their commit (removing a deleted checkpoint's files). The
        writer lock and SQLite's (``BEGIN IMMEDIATE``) are taken before the first write.

        Raises:
            Unavailable: the writer lock stayed taken for the whole busy timeout.
            OperationalError: SQLite's lock did ("database is locked"), or the commit failed.
        """
        with self._one_writer(), self._sessions.begin() as session:
            # pysqlite begins a transaction only before an INSERT/UPDATE/DELETE; a SAVEPOINT
            # outside one would be a transaction of its own, committed by its RELEASE.
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            group = WriteGroup(session)
            self._local.group = group
            try:
                yield group
            finally:
                self._local.group = None
        for action in group.after_commit:
            _after(action)

    def _after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the write that asks has committed: now, outside a group."""
        group: WriteGroup | None = getattr(self._local, "group", None)
        if group is None:
            _after(action)
        else:
            group.after_commit.append(action)

    @contextmanager
    def write(self, idempotent: IdempotentRequest | None) -> Iterator[DbSession]:
        """A write transaction that records a 204 for ``idempotent`` in the same commit.

        A write that answers 200 with a body sets ``s.info[RESPONSE_BODY]`` to its JSON first.

        Both the change and its record commit, or neither does. If another request with the
        same key committed first, this one rolls back and answers with what that one recorded.
        Writes on SQLite serialize on its one writer lock; PostgreSQL's unique index on the
        record does the same for two requests with one key. Inside a :meth:`write_group`, the
        write is a SAVEPOINT of the group's transaction and commits with the group.

        Raises:
            Replay: the same request under the same key was already done.
            Unprocessable: the key was used for a different request meanwhile.
        """
        try:
            with self._one_writer(), self.transaction() as s:
                s.info.pop(RESPONSE_BODY, None)  # another write's, in a group
                yield s
                if idempotent is not None:
                    self._record(s, idempotent, s.info.get(RESPONSE_BODY))
        except (IntegrityError, ApiError, KeyTaken):
            # A request with the same key may have committed since the key was looked up
            # (its record then breaks ours, or its change makes ours a 409): answer as it did.
            stored = self.stored_response(idempotent) if idempotent is not None else None
            if stored is None:
                raise
            raise Replay(stored) from None

    @contextmanager
    def _one_writer(self) -> Iterator[None]:
        """Hold the process's SQLite writer lock (nothing on PostgreSQL) for a write.

        Writers queue here and are woken in turn as each commits, instead of polling for
        SQLite's lock. The wait is bounded like SQLite's own busy timeout.

        Raises:
            Unavailable: the lock stayed taken for the whole busy timeout (answer 503).
        """
        if self._writer is None or getattr(self._local, "group", None) is not None:
            yield  # PostgreSQL, or a write of a group, which holds the lock
            return
        if not self._writer.acquire(timeout=db.SQLITE_BUSY_TIMEOUT_SECONDS):
            raise Unavailable("The database is busy; try again")
        try:
            yield
        finally:
            self._writer.release()

    @staticmethod
    def _record(s: DbSession, idempotent: IdempotentRequest, body: bytes | None = None) -> None:
        """Record the write's response for its key: a 204, or a JSON 200 of ``body``.

        One statement: an insert that, on a record of the key past the window (still there
        until the sweep), starts the key afresh, and on a live one changes nothing.

        Raises:
            KeyTaken: a live record of the key is there (another request with it committed).
        """
        now = db.utcnow()
        connection = s.connection()
        inserted = connection.execute(
            _RECORD[connection.dialect.name],
            {
                "request_hash": idempotent.record_id,
                "fingerprint": idempotent.fingerprint,
                "status_code": 204 if body is None else 200,
                "content_type": None if body is None else "application/json",
                "body": body or b"",
                "created_at": now,
                "stale_before": now - IDEMPOTENCY_WINDOW,
            },
        )
        if inserted.first() is None:
            raise KeyTaken(idempotent.key)

    def stored_response(self, request: IdempotentRequest) -> StoredResponse | None:
        """The response recorded in the last 24 hours for this user's idempotency key.

        Raises:
            Unprocessable: the key was recorded for a different request (method, path, body).
        """
        with self.transaction() as s:
            row = s.execute(
                select(db.IdempotentResponse).where(
                    db.IdempotentResponse.request_hash == request.record_id,
                    db.IdempotentResponse.created_at > db.utcnow() - IDEMPOTENCY_WINDOW,
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            if row.fingerprint != request.fingerprint:
                raise Unprocessable(
                    f"{IDEMPOTENCY_HEADER}: already used for a different request "
                    "(method, path or body); use a new key for a new request"
                )
            return StoredResponse(row.status_code, row.content_type, row.body)

    @staticmethod
    def _existing(s: DbSession, model: type[Row], key: Any) -> Row:
        """The row of ``model`` with primary key ``key`` (an admin call names it).

        Raises:
            NotFound: there is none; the detail names the thing and the key.
        """
        row = s.get(model, key)
        if row is None:
            thing = re.sub(r"(?<=[a-z])([A-Z])", lambda m: " " + m[1].lower(), model.__name__)
            raise NotFound(f"{thing} {key!r} not found")
        return row

    @classmethod
    def _add(cls, s: DbSession, row: Row) -> Row:
        """Add ``row`` once every row its foreign keys name is found (an admin call names them).

        Raises:
            NotFound: a parent is missing; the detail names it as :meth:`_existing` does.
        """
        models = {mapper.local_table: mapper.class_ for mapper in db.Base.registry.mappers}
        for attribute in row.__mapper__.column_attrs:
            key = getattr(row, attribute.key)
            for foreign_key in attribute.columns[0].foreign_keys:
                if key is not None:
                    cls._existing(s, models[foreign_key.column.table], key)
        s.add(row)
        return row

    @classmethod
    def _next_in_session(
        cls, s: DbSession, session_id: str, kind: Literal["train", "sample"]
    ) -> str:
        """The next id ``<session>:<kind>:<n>`` of a session's runs or samplers, now taken.

        Raises:
            NotFound: there is no such session.
        """
        session = cls._existing(s, db.Session, session_id)
        counter = f"next_{kind}_index"
        number: int = getattr(session, counter)
        setattr(session, counter, number + 1)
        return f"{session_id}:{kind}:{number}"

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
        self, s: DbSession, caller: Caller, path: TinkerPath, scope: str
    ) -> tuple[db.Checkpoint, db.TrainingRun, db.Session]:
        run, session = self._visible_run(s, caller, path.training_run_id, scope)
        ckpt = self._checkpoint_of(s, run.id, path.kind, path.name)
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
    def _update_owned_checkpoint(
        s: DbSession, caller: Caller, path: TinkerPath, now: dt.datetime, **values: Any
    ) -> bool:
        """Set ``values`` on the caller's live checkpoint at ``path``; whether it was there.

        The rule of :meth:`_owned_checkpoint` in one UPDATE, run on the session's connection.
        """
        if not (_safe_id(path.training_run_id) and _safe_id(path.name)):
            return False
        changed = s.connection().execute(
            _update_owned_checkpoint(frozenset(values)),
            {
                **values,
                "run_id": path.training_run_id,
                "ckpt_kind": path.kind,
                "ckpt_name": path.name,
                "user_id": caller.user_id,
                "now": now,
            },
        )
        return changed.rowcount == 1

    def _owned_checkpoint(self, s: DbSession, caller: Caller, path: TinkerPath) -> db.Checkpoint:
        ckpt, _, _ = self._visible_checkpoint(s, caller, path, "owned")
        return ckpt

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

    def archive_path(self, archive_id: str) -> Path:
        """Where the tar file of an archive lives."""
        return self.archive_dir / f"{archive_id}.tar"

    @staticmethod
    def _page(s: DbSession, query: Select[Any], limit: int, offset: int) -> tuple[list[Any], int]:
        total = s.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = s.execute(query.limit(limit).offset(min(offset, MAX_OFFSET))).all()
        return [row[0] for row in rows], int(total)

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
        # A Core insert, not an ORM object: a third of the ORM flush of a write went to it.
        s.connection().execute(
            _AUDIT,
            {
                "organization_id": organization_id,
                "timestamp": db.utcnow(),
                "event": event_name,
                "event_details": details,
                "model_id": model_id,
                "tinker_path": tinker_path,
                "purpose": None,
            },
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
            tinker_path=tinker_path_of(ckpt),
        )


def _after(action: Callable[[], None]) -> None:
    """Run what a write left for after its commit. The write is on disk by then, so a failure
    here is logged, never turned into the write's (or its whole group's) answer."""
    try:
        action()
    except Exception:
        log.exception("a step after a committed write failed")
