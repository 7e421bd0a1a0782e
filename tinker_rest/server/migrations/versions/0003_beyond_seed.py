"""Beyond the seed: supported models, weight copies, session states, trace exports, billing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 05:20:00

The tables behind copy_weights, get_server_capabilities, session search, trace export and the
admin billing endpoints (``store/weights.py``, ``store/accounts.py``,
``store/session_search.py``, ``store/traces.py``, ``store/billing.py``).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from tinker_rest.server.migrations import tables

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The types of the ids these tables refer to (as revision 0001 made them).
SESSION_ID = sa.String(length=128)
RUN_ID = sa.String(length=160)


def upgrade() -> None:
    """Upgrade schema."""
    tables.create_table(
        "supported_models",
        tables.text_id("model_name", length=255),
        sa.Column("max_context_length", sa.Integer(), nullable=True),
        sa.Column("trainable", sa.Boolean(), nullable=False),
        sa.Column("sampleable", sa.Boolean(), nullable=False),
        primary_key=["model_name"],
    )
    tables.create_table(
        "weight_copies",
        *tables.reference("training_run_id", "training_runs", RUN_ID),
        sa.Column("source_tinker_path", sa.Text(), nullable=False),
        tables.created_at(),
        primary_key=["training_run_id"],
    )
    tables.create_table(
        "session_states",
        *tables.reference("session_id", "sessions", SESSION_ID),
        sa.Column("status", sa.String(length=32), nullable=False, index=True),
        sa.Column("reason_type", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.JSON(), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=True),
        *(sa.Column(text, sa.Text(), nullable=True) for text in ("detail", "message")),
        primary_key=["session_id"],
    )
    tables.create_table(
        "trace_exports",
        tables.text_id(),
        *tables.reference("session_id", "sessions", SESSION_ID, index=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        tables.text_id("fingerprint"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        tables.created_at(),
    )
    # Its foreign keys stand in the order revision 0003 first gave them, not the columns'.
    tables.create_table(
        "billing_events",
        tables.numbered_id(),
        sa.Column("organization_id", sa.String(length=64), nullable=False, index=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("session_id", SESSION_ID, nullable=True),
        sa.Column("bucket_start", sa.DateTime(), nullable=False, index=True),
        sa.Column("base_model", sa.String(length=255), nullable=True),
        sa.Column("event_info", sa.JSON(), nullable=False),
        sa.Column("estimated_cost_usd", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    tables.drop_tables(
        "billing_events", "trace_exports", "session_states", "weight_copies", "supported_models"
    )
