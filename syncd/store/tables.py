"""SQLModel tables. Schema changes go through Alembic migrations in store/migrations/."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    TypeDecorator,
    UniqueConstraint,
    text,
)
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
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        # PostgreSQL hands timestamptz back in the session's TimeZone (the server's or the
        # database's default, e.g. Europe/Moscow): normalised here, or a deadline read back
        # would spell a different N11 occurrence ("…+03:00") than the one its timer was set
        # with ("…+00:00"), and every timer would be dropped as stale.
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


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
    completed_source: str | None = None  # "crm" or "calendar" (G10)
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
    # Set when the job is asked for again while it runs: it runs once more instead of ending.
    rerun: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class WebPushSubscription(SQLModel, table=True):
    """A browser's Web Push subscription (its PushSubscription JSON), per user (SPEC §4)."""

    __tablename__ = "webpush_subscriptions"
    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="users.id", index=True)
    endpoint: str = Field(unique=True, max_length=2048)
    p256dh: str = Field(max_length=128)  # base64url, the browser's P-256 public key
    auth: str = Field(max_length=64)  # base64url, the 16-byte auth secret
    created_at: datetime = _ts(nullable=False)


class Device(SQLModel, table=True):
    """A mobile app install that receives push, with the app's own "Enable notifications" flag."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("provider", "token", name="uq_devices_provider_token"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="users.id", index=True)
    provider: str = Field(max_length=16)  # fcm | apns
    token: str = Field(max_length=4096)
    enabled: bool = True
    created_at: datetime = _ts(nullable=False)


class CalendarLink(SQLModel, table=True):
    """A user's Google Calendar mirror (SPEC §5): state, sealed tokens, sync position, leases."""

    __tablename__ = "calendar_links"
    user_id: str = Field(primary_key=True, foreign_key="users.id", max_length=128)
    state: str = "off"  # off | connecting | on | needs_reconnect | paused
    calendar_id: str | None = None
    tokens: str | None = None  # Fernet ciphertext; never plain
    sync_token: str | None = None
    connected_at: datetime | None = _ts()
    paused_until: datetime | None = _ts()
    last_push_at: datetime | None = _ts()
    last_pull_at: datetime | None = _ts()
    last_error: str | None = None
    last_error_at: datetime | None = _ts()
    # One pusher and one puller per user at a time, across nodes, without holding a transaction.
    push_lease_until: datetime | None = _ts()
    pull_lease_until: datetime | None = _ts()
    channel_id: str | None = Field(default=None, index=True)
    channel_resource_id: str | None = None
    channel_token: str | None = None
    channel_expires_at: datetime | None = _ts()
    updated_at: datetime = _ts(nullable=False)


class OAuthState(SQLModel, table=True):
    """G1: a consent in flight. Single-use, expiring, bound to the user who started it."""

    __tablename__ = "oauth_states"
    state_hash: str = Field(primary_key=True)
    user_id: str = Field(foreign_key="users.id", index=True)
    code_verifier: str  # PKCE; useless without the code Google sends to the callback
    redirect_uri: str
    created_at: datetime = _ts(nullable=False)
    expires_at: datetime = _ts(nullable=False)
    used_at: datetime | None = _ts()


class EventLink(SQLModel, table=True):
    """A task's event in one user's calendar, and the state last synced (the G13 merge base)."""

    __tablename__ = "event_links"
    __table_args__ = (Index("ix_event_links_event", "user_id", "event_id"),)
    user_id: str = Field(primary_key=True, foreign_key="users.id", max_length=128)
    task_id: str = Field(primary_key=True, max_length=128)
    event_id: str
    etag: str | None = None  # None: the insert has not been confirmed yet
    synced: dict = _json()  # the mirrored fields as last written or read
    # done / due_at / due_date as both sides last had them: the G13 merge base. After a pull
    # it is what Google has; a CRM value not yet written there counts as a CRM change.
    base: dict = _json()
    incarnation: int = 0
    # G11 `complete`/`unlink`: the event was deleted in Google and must not come back.
    unlinked: bool = False
    last_error: str | None = None
    updated_at: datetime = _ts(nullable=False)


class CalendarOutbox(SQLModel, table=True):
    """Tasks whose event may need a write, per user. Written in the same transaction as the
    task change (G5: Google is called only after commit); drained by the push job."""

    __tablename__ = "calendar_outbox"
    __table_args__ = (Index("ix_outbox_user_due", "user_id", "not_before"),)
    user_id: str = Field(primary_key=True, max_length=128)
    task_id: str = Field(primary_key=True, max_length=128)
    seq: int = 1  # bumped by every change; a push clears the row only if no newer change came
    attempts: int = 0
    not_before: datetime = _ts(nullable=False)
    changed_at: datetime = _ts(nullable=False)


class SharedKey(SQLModel, table=True):
    """A generated key every node must hold alike (the VAPID key browsers subscribe to): the
    first node to start makes it, the others read it."""

    __tablename__ = "shared_keys"
    name: str = Field(primary_key=True, max_length=64)
    value: str
    created_at: datetime = _ts(nullable=False)


class RateWindow(SQLModel, table=True):
    """Google requests sent in the last minute (G14), per user and one for the project: in
    the database, so every node draws on the same allowance."""

    __tablename__ = "rate_windows"
    key: str = Field(primary_key=True, max_length=160)  # "user:<id>" or "project"
    second: int = Field(sa_type=BigInteger)  # the Unix second of the newest count
    counts: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
