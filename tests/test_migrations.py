"""The Alembic migrations build exactly the schema the models describe, on both backends, and
go down and up again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import syncd.store.tables  # noqa: F401 (registers every table on SQLModel.metadata)
from syncd.store.db import Database, alembic_config


def test_migrations_match_the_models_and_downgrade(db_url: str) -> None:
    db = Database(db_url)
    db.upgrade()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        tables = set(inspect(conn).get_table_names())
    assert diff == []
    assert {t.name for t in SQLModel.metadata.sorted_tables} <= tables
    with db.engine.connect() as conn:
        cfg = alembic_config(db.url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
        conn.commit()
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    db.upgrade()
    db.dispose()
