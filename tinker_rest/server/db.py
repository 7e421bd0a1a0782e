"""The database schema (SQLAlchemy 2 ORM) and engine set-up of the reference server.

Every table of the domain lives here: organizations, users, API keys (hashes only), projects and
their members, sessions, training runs, samplers, checkpoints, built archives, audit entries and
stored idempotent responses. The schema itself is created and changed only by the Alembic
migrations in ``tinker_rest/server/migrations``; these classes must match them.

The SQL stays portable (SQLite by default, PostgreSQL given a URL): datetimes are stored as naive
UTC through :class:`UTCDateTime`, JSON through SQLAlchemy's generic ``JSON`` type.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedColumn, mapped_column, relationship

UTC = dt.UTC


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime stored as a naive UTC ``DATETIME`` on every database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a timezone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """The declarative base of every table."""


def string_key(length: int) -> MappedColumn[Any]:
    """A primary key of text up to ``length`` characters (ids like ``sess-…``, names)."""
    return mapped_column(String(length), primary_key=True, sort_order=-1)


def serial_key() -> MappedColumn[Any]:
    """A primary key the database numbers, 1, 2, 3…"""
    return mapped_column(Integer, primary_key=True, autoincrement=True, sort_order=-1)


def created_at_column(*, index: bool = False) -> MappedColumn[Any]:
    """``created_at``: when the row was made (now, unless the insert says otherwise)."""
    return mapped_column(UTCDateTime(), default=utcnow, index=index)


def reference(table: str, *, ondelete: str = "CASCADE", **options: Any) -> MappedColumn[Any]:
    """A column holding the ``id`` of a row of ``table``; by default the row goes with it."""
    return mapped_column(ForeignKey(f"{table}.id", ondelete=ondelete), **options)


class _Record:
    """A row named by an id the store makes (``org-…``, ``user-…``, ``key-…``, ``proj-…``, a
    hex token), with the time it was made."""

    id: Mapped[str] = string_key(64)
    created_at: Mapped[dt.datetime] = created_at_column()


class Organization(_Record, Base):
    """An organization: users, projects and the audit log belong to one."""

    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(255))


class User(_Record, Base):
    """A user of an organization with a role, ``member`` or ``admin``."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    organization_id: Mapped[str] = reference("organizations", index=True)
    role: Mapped[str] = mapped_column(String(16))


class ApiKey(_Record, Base):
    """An API key, kept only as the SHA-256 hash of the raw ``tml-...`` string."""

    __tablename__ = "api_keys"

    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = reference("users", index=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Project(_Record, Base):
    """A project of an organization; its members can read the sessions moved into it."""

    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(String(255))
    organization_id: Mapped[str] = reference("organizations", index=True)


class ProjectMember(Base):
    """Membership of a user in a project."""

    __tablename__ = "project_members"

    project_id: Mapped[str] = reference("projects", primary_key=True)
    user_id: Mapped[str] = reference("users", primary_key=True, index=True)


class Session(Base):
    """A session: an owner, an optional project, and the runs and samplers it made."""

    __tablename__ = "sessions"

    id: Mapped[str] = string_key(128)
    owner_id: Mapped[str] = reference("users", index=True)
    project_id: Mapped[str | None] = reference(
        "projects", ondelete="RESTRICT", nullable=True, index=True
    )
    display_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    user_metadata: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = created_at_column(index=True)
    next_train_index: Mapped[int] = mapped_column(Integer, default=0)
    next_sample_index: Mapped[int] = mapped_column(Integer, default=0)

    owner: Mapped[User] = relationship()


class _ModelOfSession:
    """What training runs and samplers share: an id ``<session>:<kind>:<n>`` numbered in its
    session (deleted with it), the base model, and when it was made."""

    id: Mapped[str] = string_key(160)
    session_id: Mapped[str] = reference("sessions", index=True)
    base_model: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = created_at_column()


class TrainingRun(_ModelOfSession, Base):
    """A training run, ``<session>:train:<n>``, owned by its session's owner."""

    __tablename__ = "training_runs"

    lora_rank: Mapped[int | None] = mapped_column(Integer, nullable=True)
    corrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    train_unembed: Mapped[bool] = mapped_column(Boolean, default=True)
    train_mlp: Mapped[bool] = mapped_column(Boolean, default=True)
    train_attn: Mapped[bool] = mapped_column(Boolean, default=True)
    optimizer: Mapped[str] = mapped_column(String(64), default="adam")
    user_metadata: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    last_request_time: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)

    session: Mapped[Session] = relationship()


class Sampler(_ModelOfSession, Base):
    """A sampler, ``<session>:sample:<n>``, serving a base model or a checkpoint."""

    __tablename__ = "samplers"

    model_path: Mapped[str | None] = mapped_column(Text, nullable=True)


class Checkpoint(Base):
    """A checkpoint of a run; its files live in ``blobs/<blob_id>/`` beside the database."""

    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("training_run_id", "kind", "name"),)

    id: Mapped[int] = serial_key()
    training_run_id: Mapped[str] = reference("training_runs", index=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = created_at_column(index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    user_metadata: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    blob_id: Mapped[str] = mapped_column(String(64), unique=True)

    training_run: Mapped[TrainingRun] = relationship()


class Archive(_Record, Base):
    """A built (or building) tar archive of one checkpoint's files, served by signed URL."""

    __tablename__ = "archives"

    checkpoint_id: Mapped[int] = reference("checkpoints", unique=True)
    status: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class AuditEntry(Base):
    """One event of an organization's audit log, ``<resource>_<action>``."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = serial_key()
    organization_id: Mapped[str] = reference("organizations", index=True)
    timestamp: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    event: Mapped[str] = mapped_column(String(64))
    event_details: Mapped[dict[str, Any]] = mapped_column(JSON)
    model_id: Mapped[str | None] = mapped_column(String(160), nullable=True)
    tinker_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    purpose: Mapped[str | None] = mapped_column(Text, nullable=True)


class IdempotentResponse(Base):
    """The first response to a request with an ``X-Idempotency-Key``, replayed for 24 hours."""

    __tablename__ = "idempotent_responses"

    id: Mapped[int] = serial_key()
    # SHA-256 over the user and the idempotency key: one record per key of each user.
    request_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # SHA-256 over the method, the path and the body of the request the key was first used for.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = created_at_column(index=True)


# --- beyond the seed: copies, capabilities, session states, traces, billing ------------------
# (store/weights, accounts, session_search, traces and billing use these; migration
# 0003_beyond_seed makes them.)


class SupportedModel(Base):
    """A model the server offers (``GET /api/v1/get_server_capabilities``)."""

    __tablename__ = "supported_models"

    model_name: Mapped[str] = string_key(255)
    max_context_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    trainable: Mapped[bool] = mapped_column(Boolean, default=True)
    sampleable: Mapped[bool] = mapped_column(Boolean, default=True)


class WeightCopy(Base):
    """Marks a training run made by ``copy_weights``: it holds a copy and cannot be trained."""

    __tablename__ = "weight_copies"

    training_run_id: Mapped[str] = reference("training_runs", primary_key=True)
    source_tinker_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_at_column()


class SessionState(Base):
    """How a session ended, or that it is active; a session without a row is active."""

    __tablename__ = "session_states"

    session_id: Mapped[str] = reference("sessions", primary_key=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    # client_finished: success|errored|interrupted; failed: request|training_run|sampling_session
    reason_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    category: Mapped[str | None] = mapped_column(String(16), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


class TraceExport(_Record, Base):
    """A trace export of a session: pending, then ready (a file) or failed (an error)."""

    __tablename__ = "trace_exports"

    session_id: Mapped[str] = reference("sessions", index=True)
    status: Mapped[str] = mapped_column(String(16))
    # A digest of what the trace shows; a trace whose session changed since is rebuilt.
    fingerprint: Mapped[str] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class BillingEvent(Base):
    """One hourly bucket of billable usage of an organization."""

    __tablename__ = "billing_events"

    id: Mapped[int] = serial_key()
    organization_id: Mapped[str] = reference("organizations", index=True)
    user_id: Mapped[str | None] = reference("users", ondelete="SET NULL", nullable=True)
    session_id: Mapped[str | None] = reference("sessions", ondelete="SET NULL", nullable=True)
    bucket_start: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    base_model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    event_info: Mapped[dict[str, Any]] = mapped_column(JSON)
    estimated_cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)


# Requests reach the database from up to 40 worker threads at once (the default limit of
# anyio's thread pool, which FastAPI uses), so SQLite keeps that many connections open. With
# SQLAlchemy's default of five, a busy server opened and closed one (pragmas and all) for most
# requests beyond the fifth.
SQLITE_POOL_SIZE = 40


# How long a SQLite statement waits for another writer's lock before it fails with "database is
# locked" (which the API answers with 503 and Retry-After): a few seconds, well inside a
# client's 30-second timeout, so a stuck writer turns into a retry instead of a hung request.
SQLITE_BUSY_TIMEOUT_SECONDS = 5.0


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys, full sync and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            pool_size=SQLITE_POOL_SIZE,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)
