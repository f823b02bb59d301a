"""The hand-written migrations build exactly the schema the table classes describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from quanta.registry import tables as t
from quanta.registry.db import migrate


def test_migrated_schema_matches_the_tables(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    migrate(engine, lock_dir=tmp_path)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), t.Base.metadata)
    assert diff == []
