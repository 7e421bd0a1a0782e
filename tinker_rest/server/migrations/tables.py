"""What the revisions build their tables with, so that each repeated column set is written once.

:func:`create_table` makes a table with an index ``ix_<table>_<column>`` on each column named in
``indexes`` (the names Alembic's autogenerate gives them); :func:`drop_tables` drops tables with
their indexes. The column helpers are the sets the tables repeat: a text id, a numbered id,
``created_at``, and a column referring to another table's ``id``.

A released revision must keep making the same schema, so a helper changes only if every
revision using it still makes the same tables, column for column and constraint for constraint
(``tests/server/test_server_migrations.py`` compares them with the models in ``db.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op


def text_id(name: str = "id", length: int = 64) -> sa.Column[Any]:
    """A text column of up to ``length`` characters, never null (an id or a key)."""
    return sa.Column(name, sa.String(length=length), nullable=False)


def numbered_id() -> sa.Column[Any]:
    """An integer ``id`` the database numbers."""
    return sa.Column("id", sa.Integer(), autoincrement=True, nullable=False)


def created_at() -> sa.Column[Any]:
    """``created_at``, a naive UTC ``DATETIME`` (see ``tinker_rest.server.db.UTCDateTime``)."""
    return sa.Column("created_at", sa.DateTime(), nullable=False)


def reference(
    name: str,
    table: str,
    type_: sa.types.TypeEngine[Any],
    *,
    ondelete: str = "CASCADE",
    nullable: bool = False,
) -> tuple[sa.Column[Any], sa.ForeignKeyConstraint]:
    """A column holding the ``id`` of a row of ``table``, and its foreign key.

    Spread it into :func:`create_table` (``*reference(...)``); the key's place among the
    table's constraints is where the call stands.
    """
    column = sa.Column(name, type_, nullable=nullable)
    return column, sa.ForeignKeyConstraint([name], [f"{table}.id"], ondelete=ondelete)


def create_table(
    name: str, *elements: Any, primary_key: Sequence[str] = ("id",), indexes: Sequence[str] = ()
) -> None:
    """Create table ``name`` of ``elements`` with its primary key (``id`` unless it says), and a
    plain index on each of ``indexes``."""
    op.create_table(name, *elements, sa.PrimaryKeyConstraint(*primary_key))
    if not indexes:
        return
    with op.batch_alter_table(name, schema=None) as batch_op:
        for column in indexes:
            batch_op.create_index(batch_op.f(f"ix_{name}_{column}"), [column], unique=False)


def drop_tables(*names: str) -> None:
    """Drop tables, in the order given, with their indexes."""
    for name in names:
        op.drop_table(name)
