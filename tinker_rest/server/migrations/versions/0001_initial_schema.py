"""Initial schema: the whole domain of the reference server.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 03:48:42

Datetimes are naive UTC ``DATETIME`` columns (see ``tinker_rest.server.db.UTCDateTime``). The
tables are built with the helpers of ``tinker_rest/server/migrations/tables.py``; the schema is
the one the first release of this revision made, to the DDL text on SQLite.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from tinker_rest.server.migrations import tables

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The types of the ids that other tables refer to.
ORG_ID = sa.String(length=64)
USER_ID = sa.String(length=64)
PROJECT_ID = sa.String(length=64)
SESSION_ID = sa.String(length=128)
RUN_ID = sa.String(length=160)


def model_of_session() -> tuple[Any, ...]:
    """The first columns of samplers and training runs: the id ``<session>:<kind>:<n>``, the
    session (with its foreign key and index) and the base model."""
    return (
        tables.text_id(length=160),
        *tables.reference("session_id", "sessions", SESSION_ID, index=True),
        sa.Column("base_model", sa.String(length=255), nullable=False),
    )


def upgrade() -> None:
    """Upgrade schema."""
    tables.create_table(
        "idempotent_responses",
        tables.numbered_id(),
        tables.text_id("request_hash"),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        tables.created_at(index=True),
        sa.UniqueConstraint("request_hash"),
    )
    tables.create_table(
        "organizations",
        tables.text_id(),
        sa.Column("name", sa.String(length=255), nullable=False),
        tables.created_at(),
    )
    tables.create_table(
        "audit_entries",
        tables.numbered_id(),
        *tables.reference("organization_id", "organizations", ORG_ID, index=True),
        sa.Column("timestamp", sa.DateTime(), nullable=False, index=True),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("event_details", sa.JSON(), nullable=False),
        sa.Column("model_id", sa.String(length=160), nullable=True),
        sa.Column("tinker_path", sa.Text(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=True),
    )
    tables.create_table(
        "projects",
        tables.text_id(),
        sa.Column("name", sa.String(length=255), nullable=False),
        *tables.reference("organization_id", "organizations", ORG_ID, index=True),
        tables.created_at(),
    )
    tables.create_table(
        "users",
        tables.text_id(),
        sa.Column("email", sa.String(length=320), nullable=False),
        *tables.reference("organization_id", "organizations", ORG_ID, index=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        tables.created_at(),
        sa.UniqueConstraint("email"),
    )
    tables.create_table(
        "api_keys",
        tables.text_id(),
        tables.text_id("key_hash"),
        *tables.reference("user_id", "users", USER_ID, index=True),
        tables.created_at(),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("key_hash"),
    )
    tables.create_table(
        "project_members",
        *tables.reference("project_id", "projects", PROJECT_ID),
        *tables.reference("user_id", "users", USER_ID, index=True),
        primary_key=["project_id", "user_id"],
    )
    tables.create_table(
        "sessions",
        tables.text_id(length=128),
        *tables.reference("owner_id", "users", USER_ID, index=True),
        *tables.reference(
            "project_id", "projects", PROJECT_ID, ondelete="RESTRICT", nullable=True, index=True
        ),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("user_metadata", sa.JSON(), nullable=True),
        tables.created_at(index=True),
        sa.Column("next_train_index", sa.Integer(), nullable=False),
        sa.Column("next_sample_index", sa.Integer(), nullable=False),
    )
    tables.create_table(
        "samplers",
        *model_of_session(),
        sa.Column("model_path", sa.Text(), nullable=True),
        tables.created_at(),
    )
    tables.create_table(
        "training_runs",
        *model_of_session(),
        sa.Column("lora_rank", sa.Integer(), nullable=True),
        *(
            sa.Column(flag, sa.Boolean(), nullable=False)
            for flag in ("corrupted", "train_unembed", "train_mlp", "train_attn")
        ),
        sa.Column("optimizer", sa.String(length=64), nullable=False),
        sa.Column("user_metadata", sa.JSON(), nullable=True),
        tables.created_at(),
        sa.Column("last_request_time", sa.DateTime(), nullable=False, index=True),
    )
    tables.create_table(
        "checkpoints",
        tables.numbered_id(),
        *tables.reference("training_run_id", "training_runs", RUN_ID, index=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        tables.created_at(index=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True, index=True),
        sa.Column("user_metadata", sa.JSON(), nullable=True),
        tables.text_id("blob_id"),
        sa.UniqueConstraint("blob_id"),
        sa.UniqueConstraint("training_run_id", "kind", "name"),
    )
    tables.create_table(
        "archives",
        tables.text_id(),
        *tables.reference("checkpoint_id", "checkpoints", sa.Integer()),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        tables.created_at(),
        sa.UniqueConstraint("checkpoint_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    tables.drop_tables(
        *("archives", "checkpoints", "training_runs", "samplers", "sessions", "project_members"),
        *("api_keys", "users", "projects", "audit_entries", "organizations"),
        "idempotent_responses",
    )
