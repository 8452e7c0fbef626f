"""Engines and transactions. SQLite (WAL, one writer at a time) by default, PostgreSQL by URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, literal_column, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # A writer takes the lock up front: a deferred transaction that later upgrades to write
        # fails with SQLITE_BUSY instead of waiting, whatever the busy timeout.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = url.split(":", 1)[0].split("+", 1)[0]
        if self.dialect == "sqlite":
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
            # SQLite has one writer. This process's writers queue on a lock for it, handed on
            # at once, rather than on SQLite's busy handler, which polls with sleeps growing to
            # 100 ms and lets a steady stream of writers starve one for seconds (8 concurrent
            # upserts: p99 8 s without, 2 s with, on a loaded 2-core box). Other processes on
            # the same file still meet the busy timeout.
            self._write_lock = threading.Lock()
            self._local = threading.local()  # is this thread in a write transaction?
        else:
            url = url.replace("postgresql://", "postgresql+psycopg://", 1)
            self.engine = create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
            self.read_engine = self.engine

    @property
    def is_postgres(self) -> bool:
        return self.dialect.startswith("postgres")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A read-write unit of work: committed on success, rolled back on any exception.

        Not to be opened inside another on the same thread (that would hold the outer one's
        locks across whatever runs in between, a call to Google say): on SQLite the inner one
        would wait for the outer's lock forever, so there it is refused at once."""
        if self.is_postgres:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
            return
        if getattr(self._local, "writing", False):
            raise RuntimeError("a write transaction opened inside another on the same thread")
        self._local.writing = True
        try:
            with (self._write_lock, Session(self.engine, expire_on_commit=False) as session,
                  session.begin()):
                yield session
        finally:
            self._local.writing = False

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.read_engine, expire_on_commit=False) as session, session.begin():
            yield session

    def insert_ignore(self, session: Session, model: type[SQLModel], rows: list[dict],
                      conflict: list[str]) -> int:
        """INSERT … ON CONFLICT DO NOTHING; the number of rows actually inserted."""
        if not rows:
            return 0
        dialect = postgresql if self.is_postgres else sqlite
        stmt = dialect.insert(model.__table__).on_conflict_do_nothing(index_elements=conflict)
        # RETURNING, because rowcount is unreliable for INSERT … ON CONFLICT across drivers.
        # The rows go as parameters: with .values(rows) the statement has no cache key and is
        # compiled afresh on every call, which cost more than running it (one per center entry).
        stmt = stmt.returning(literal_column("1"))
        return len(session.execute(stmt, rows[0] if len(rows) == 1 else rows).all())

    def upsert(self, session: Session, model: type[SQLModel], row: dict, conflict: list[str],
               update: dict, only_if: Any) -> int:
        """INSERT, or on conflict UPDATE the existing row where `only_if` holds; rows touched."""
        dialect = postgresql if self.is_postgres else sqlite
        stmt = dialect.insert(model).values(row)
        stmt = stmt.on_conflict_do_update(index_elements=conflict, set_=update, where=only_if)
        return len(session.execute(stmt.returning(literal_column("1"))).all())

    def upgrade(self) -> None:
        """Apply every Alembic migration (idempotent)."""
        with self.engine.connect() as conn:
            if self.is_postgres:
                # Nodes starting together (SPEC §7) would otherwise race through the same DDL
                # and all but one crash ("alembic_version already exists"). The lock is held
                # until the migration's transaction commits; the others then find it at head.
                conn.execute(text("SELECT pg_advisory_xact_lock(7361626)"))  # "syncd" schema
            cfg = alembic_config(self.url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg



