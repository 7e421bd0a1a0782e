"""Beyond the seed: supported models, weight copies, session states, trace exports, billing.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-02 05:20:00

The tables behind copy_weights, get_server_capabilities, session search, trace export and the
admin billing endpoints (``tinker_rest/server/beyond/``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "supported_models",
        sa.Column("model_name", sa.String(length=255), nullable=False),
        sa.Column("max_context_length", sa.Integer(), nullable=True),
        sa.Column("trainable", sa.Boolean(), nullable=False),
        sa.Column("sampleable", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("model_name"),
    )
    op.create_table(
        "weight_copies",
        sa.Column("training_run_id", sa.String(length=160), nullable=False),
        sa.Column("source_tinker_path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["training_run_id"], ["training_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("training_run_id"),
    )
    op.create_table(
        "session_states",
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason_type", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.JSON(), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id"),
    )
    with op.batch_alter_table("session_states", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_states_status"), ["status"], unique=False)
    op.create_table(
        "trace_exports",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("trace_exports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_trace_exports_session_id"), ["session_id"], unique=False
        )
    op.create_table(
        "billing_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("session_id", sa.String(length=128), nullable=True),
        sa.Column("bucket_start", sa.DateTime(), nullable=False),
        sa.Column("base_model", sa.String(length=255), nullable=True),
        sa.Column("event_info", sa.JSON(), nullable=False),
        sa.Column("estimated_cost_usd", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("billing_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_billing_events_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_billing_events_bucket_start"), ["bucket_start"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("billing_events")
    op.drop_table("trace_exports")
    op.drop_table("session_states")
    op.drop_table("weight_copies")
    op.drop_table("supported_models")
