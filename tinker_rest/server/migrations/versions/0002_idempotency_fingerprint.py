"""Idempotency records keyed by (user, key) with the request's fingerprint.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 05:40:00

``request_hash`` now covers only the user and the idempotency key, and ``fingerprint`` the
method, path and body, so a key reused for another request is recognised (422). Rows made
under the old hashing cannot be matched any more; they are at most 24 hours of replays, so
they are dropped.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute(sa.text("DELETE FROM idempotent_responses"))
    with op.batch_alter_table("idempotent_responses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fingerprint", sa.String(length=64), nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("idempotent_responses", schema=None) as batch_op:
        batch_op.drop_column("fingerprint")
