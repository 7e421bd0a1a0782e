"""What the revisions build their tables with, so that each repeated column set is written once.

:func:`create_table` makes a table with its primary key and an index ``ix_<table>_<column>`` on
each column declared with ``index=True`` (the names Alembic's autogenerate gives them), as the
models in ``db.py`` declare them; :func:`drop_tables` drops tables with their indexes. The column
helpers are the sets the tables repeat: a text id, a numbered id, ``created_at``, and a column
referring to another table's ``id``.

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


def created_at(*, index: bool = False) -> sa.Column[Any]:
    """``created_at``, a naive UTC ``DATETIME`` (see ``tinker_rest.server.db.UTCDateTime``)."""
    return sa.Column("created_at", sa.DateTime(), nullable=False, index=index)


def reference(
    name: str,
    table: str,
    type_: sa.types.TypeEngine[Any],
    *,
    ondelete: str = "CASCADE",
    nullable: bool = False,
    index: bool = False,
) -> tuple[sa.Column[Any], sa.ForeignKeyConstraint]:
    """A column holding the ``id`` of a row of ``table``, and its foreign key.

    Spread it into :func:`create_table` (``*reference(...)``); the key's place among the
    table's constraints is where the call stands.
    """
    column = sa.Column(name, type_, nullable=nullable, index=index)
    return column, sa.ForeignKeyConstraint([name], [f"{table}.id"], ondelete=ondelete)


def create_table(name: str, *elements: Any, primary_key: Sequence[str] = ("id",)) -> None:
    """Create table ``name`` of ``elements`` with its primary key (``id`` unless it says), and a
    plain index on each column declared with ``index=True``."""
    op.create_table(name, *elements, sa.PrimaryKeyConstraint(*primary_key))


def drop_tables(*names: str) -> None:
    """Drop tables, in the order given, with their indexes."""
    for name in names:
        op.drop_table(name)
