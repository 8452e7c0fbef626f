"""SQLModel tables. Schema changes go through Alembic migrations in store/migrations/."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, TypeDecorator, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite keeps no offset, so it is restored here)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime reached storage")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: str = Field(primary_key=True, max_length=128)
    name: str = ""
    email: str = ""
    timezone: str
    locale: str
    all_day_notify_at: str  # local HH:MM
    preferences: dict = _json()
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class UserToken(SQLModel, table=True):
    __tablename__ = "user_tokens"
    token_hash: str = Field(primary_key=True)  # sha256 of the token; the token itself is never stored
    user_id: str = Field(foreign_key="users.id", index=True)
    created_at: datetime = _ts(nullable=False)


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    id: str = Field(primary_key=True, max_length=128)
    text: str
    type: str
    author_id: str = Field(foreign_key="users.id")
    responsible_id: str = Field(foreign_key="users.id", index=True)
    due_at: datetime | None = _ts()
    due_date: date | None = None
    duration_minutes: int | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    entity_url: str | None = None
    completed_at: datetime | None = _ts()
    completed_by: str | None = None
    result: str | None = None
    assignment_seq: int = 1
    deleted_at: datetime | None = _ts()
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class Entry(SQLModel, table=True):
    """A notification-center entry. Removed entries keep their row so N11 holds after removal."""

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("user_id", "task_id", "kind", "occurrence", name="uq_entries_identity"),
        Index("ix_entries_user_list", "user_id", "removed_at", "id"),
        Index("ix_entries_user_unread", "user_id", "removed_at", "read_at"),
        Index("ix_entries_task", "task_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="users.id")
    task_id: str  # "" for entries about no task (calendar_disconnected)
    kind: str
    occurrence: str
    actor_id: str | None = None
    center_only: bool = False
    title: str
    body: str
    created_at: datetime = _ts(nullable=False)
    read_at: datetime | None = _ts()
    removed_at: datetime | None = _ts()


class Delivery(SQLModel, table=True):
    """One message on one channel for one entry: what a sender is asked to send, and how it went."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("entry_id", "channel", name="uq_deliveries_entry_channel"),)
    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="entries.id", index=True)
    user_id: str = Field(foreign_key="users.id", index=True)
    channel: str
    recipient: str
    payload: dict = _json()
    state: str = "pending"  # pending | sending | sent | skipped | failed | cancelled
    reason: str | None = None
    attempts: int = 0
    send_after: datetime = _ts(nullable=False)
    sent_at: datetime | None = _ts()
    created_at: datetime = _ts(nullable=False)


class Job(SQLModel, table=True):
    """A deferred piece of work (SPEC §7): due time, idempotency key, state and lease."""

    __tablename__ = "jobs"
    __table_args__ = (
        # The claim reads only pending/running rows in due order; done rows don't slow it down.
        Index("ix_jobs_claim", "due_at", postgresql_where=text("state = 'pending'"),
              sqlite_where=text("state = 'pending'")),
        Index("ix_jobs_lease", "lease_until", postgresql_where=text("state = 'running'"),
              sqlite_where=text("state = 'running'")),
    )
    id: int | None = Field(default=None, primary_key=True)
    kind: str
    key: str = Field(unique=True)
    group_key: str = Field(default="", index=True)
    payload: dict = _json()
    state: str = "pending"  # pending | running | done | failed | cancelled
    due_at: datetime = _ts(nullable=False)
    attempts: int = 0
    lease_until: datetime | None = _ts()
    locked_by: str | None = None
    last_error: str | None = None
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
