"""Alembic environment: runs on the connection syncd hands over, or on sqlalchemy.url."""

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import syncd.store.tables  # noqa: F401  (registers the tables on the metadata)

config = context.config
target_metadata = SQLModel.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url").replace("postgresql://", "postgresql+psycopg://", 1)
    with create_engine(url).connect() as conn:
        _run(conn)
        conn.commit()
