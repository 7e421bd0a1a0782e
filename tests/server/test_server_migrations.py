"""The models in ``db.py`` and the Alembic migrations describe the same schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from tinker_rest.server import migrate
from tinker_rest.server.db import Base, make_engine


def _drift(engine: Engine) -> list[object]:
    migrate.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_models_match_the_migrations(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'drift.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    try:
        assert _drift(engine) == []
    finally:
        engine.dispose()
