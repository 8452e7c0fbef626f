"""The use cases: each public method is one transaction, then its live events and wake-ups.

The API, the CLI and the job handlers all come through here, so a rule holds the same way
whichever door a change came in by.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from syncd.clock import Clock
from syncd.domain import rules
from syncd.domain.model import CHANNEL_KINDS, Channel, Kind, default_preferences
from syncd.errors import Conflict, InvalidInput, NotFound
from syncd.jobs.queue import ClaimedJob
from syncd.notify.center import Center, Changes, NewEntry, recipient, task_value
from syncd.notify.hub import Event, Hub
from syncd.notify.relay import Relay
from syncd.settings import Settings
from syncd.store.db import Database
from syncd.store.tables import Entry, Task, User, UserToken

TASK_FIELDS = ("text", "type", "author_id", "responsible_id", "due_at", "due_date",
               "duration_minutes", "entity_type", "entity_id", "entity_url", "completed_at",
               "completed_by", "result")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def entry_json(entry: Entry | NewEntry) -> dict[str, Any]:
    """An entry as the stream sends it: the REST API's shape, instants in UTC with a "Z"."""
    return {
        "id": entry.id, "kind": entry.kind, "task_id": entry.task_id or None,
        "title": entry.title, "body": entry.body,
        "created_at": _utc_z(entry.created_at),
        "read_at": _utc_z(entry.read_at) if entry.read_at else None,
    }


def _utc_z(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Built once: a fired timer runs these thousands of times a minute, and building and
# cache-keying a statement afresh cost about as much as running it.
_TASK_FOR_UPDATE = select(Task).where(Task.id == bindparam("id")).with_for_update()
_USER = select(User).where(User.id == bindparam("id"))


class Service:
    def __init__(self, db: Database, clock: Clock, settings: Settings, hub: Hub | None = None,
                 wake: Callable[[], None] | None = None) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.hub = hub or Hub()
        self.wake = wake or (lambda: None)
        n = settings.notify
        self.policy = rules.Policy(due_soon=timedelta(minutes=n.due_soon_minutes),
                                   email_grace=timedelta(seconds=n.email_grace_seconds))
        self.center = Center(db, self.policy)
        self.relay: Relay | None = None  # set on PostgreSQL, where several nodes share users
        # Called in the transaction of every task change with (session, task id, users
        # concerned, now); a listener returns when its follow-up job is due, or None.
        self.task_listeners: list[Callable[[Session, str, set[str], datetime],
                                           datetime | None]] = []
        # Called after a timer created center entries (the metrics' notification lag).
        self.on_timer_fired: Callable[[ClaimedJob, list[Entry]], None] | None = None

    # -- after commit -------------------------------------------------------------------

    def publish(self, changes: Changes) -> None:
        if changes.earliest_job is not None:
            self.wake()
        events: dict[str, list[Event]] = {user_id: [] for user_id in changes.users}
        for entry in changes.created:
            events[entry.user_id].append(Event(entry.user_id, "notification", {
                **entry_json(entry), "popup": entry.id in changes.popups}))
        for user_id, ids in changes.removed.items():
            events[user_id].append(Event(user_id, "removed", {"ids": ids}))
        for user_id, evs in events.items():
            self.show_live(user_id, evs)
            if self.relay is not None:  # the user's open tabs may be on another node
                self.relay.send(user_id, evs)

    def show_live(self, user_id: str, events: list[Event]) -> None:
        """Hand events to this node's open streams, then the count they leave (N13)."""
        for event in events:
            self.hub.publish(event)
        if self.hub.watched(user_id):
            self.hub.publish(Event(user_id, "unread_count", {"count": self.unread_count(user_id)}))

    # -- users --------------------------------------------------------------------------

    def put_user(self, user_id: str, data: dict[str, Any]) -> User:
        now = self.clock.now()
        changes = Changes()
        with self.db.transaction() as s:
            user = s.get(User, user_id)
            if user is None:
                n = self.settings.notify
                user = User(id=user_id, timezone=n.default_timezone, locale=n.default_locale,
                            all_day_notify_at=n.all_day_notify_at.strftime("%H:%M"),
                            preferences=default_preferences(), created_at=now, updated_at=now)
                s.add(user)
            self._update_user(s, user, data, now, changes)
        self.publish(changes)
        return user

    def _update_user(self, s: Session, user: User, data: dict[str, Any], now: datetime,
                     changes: Changes) -> None:
        before = (user.timezone, user.all_day_notify_at)
        for key in ("name", "email", "timezone", "locale"):
            if data.get(key) is not None:
                setattr(user, key, data[key])
        if data.get("all_day_notify_at") is not None:
            user.all_day_notify_at = data["all_day_notify_at"].strftime("%H:%M")
        if data.get("channels") is not None:
            user.preferences = merge_preferences(user.preferences, data["channels"])
        user.updated_at = now
        s.add(user)
        s.flush()
        # (A user changed in the instant it was created still gets its timers moved; a new
        # user simply has no tasks yet.)
        if (user.timezone, user.all_day_notify_at) != before:
            who = recipient(user)
            open_whole_day = s.execute(select(Task).where(
                Task.responsible_id == user.id, Task.due_date.is_not(None),
                Task.completed_at.is_(None), Task.deleted_at.is_(None))).scalars().all()
            for task in open_whole_day:
                decision = rules.on_recipient_change(task_value(task), who, now, self.policy)
                self.center.apply(s, decision, task, now, changes)

    def get_user(self, user_id: str) -> User:
        with self.db.read() as s:
            user = s.get(User, user_id)
        if user is None:
            raise NotFound(f"no user {user_id!r}", field="id")
        return user

    def issue_token(self, user_id: str) -> str:
        token = secrets.token_urlsafe(32)
        with self.db.transaction() as s:
            if s.get(User, user_id) is None:
                raise NotFound(f"no user {user_id!r}", field="id")
            s.add(UserToken(token_hash=hash_token(token), user_id=user_id,
                            created_at=self.clock.now()))
        return token

    def user_for_token(self, token: str) -> str | None:
        with self.db.read() as s:
            row = s.get(UserToken, hash_token(token))
        return row.user_id if row else None

    def patch_settings(self, user_id: str, data: dict[str, Any]) -> User:
        now = self.clock.now()
        changes = Changes()
        with self.db.transaction() as s:
            user = s.get(User, user_id)
            if user is None:
                raise NotFound(f"no user {user_id!r}", field="id")
            self._update_user(s, user, data, now, changes)
        self.publish(changes)
        return user

    # -- tasks --------------------------------------------------------------------------

    def upsert_task(self, task_id: str, fields: dict[str, Any], actor_id: str) -> Task:
        try:
            return self._upsert_task(task_id, fields, actor_id)
        except IntegrityError:  # another node created the same task this instant: go again
            return self._upsert_task(task_id, fields, actor_id)

    def _upsert_task(self, task_id: str, fields: dict[str, Any], actor_id: str) -> Task:
        changes = Changes()
        with self.db.transaction() as s:
            row = self.change_task(s, task_id, fields, actor_id, self.clock.now(), changes)
        self.publish(changes)
        return row

    def change_task(self, s: Session, task_id: str, fields: dict[str, Any], actor_id: str,
                    now: datetime, changes: Changes) -> Task:
        """One task change inside the caller's transaction: the row, the rules' decisions and
        the listeners (the calendar outbox), all or nothing."""
        row = s.execute(select(Task).where(Task.id == task_id).with_for_update()).scalar()
        if row is not None and row.deleted_at is not None:
            raise Conflict(f"task {task_id!r} was deleted", field="id")
        self._require_users(s, {"actor_id": actor_id, **{
            k: fields[k] for k in ("author_id", "responsible_id", "completed_by")
            if fields.get(k) is not None}})
        before = task_value(row) if row else None
        if row is None:
            for required in ("text", "responsible_id"):
                if fields.get(required) is None:
                    raise InvalidInput(f"{required} is required for a new task", required)
            row = Task(id=task_id, text=fields["text"], type=fields.get("type") or "task",
                       author_id=fields.get("author_id") or actor_id,
                       responsible_id=fields["responsible_id"], created_at=now,
                       updated_at=now)
        changed = _assign(row, fields, now, actor_id)
        if before is not None and not changed:
            return row  # N11: the same upsert again changes nothing
        s.add(row)
        s.flush()
        self._decide(s, before, row, actor_id, now, changes)
        users = {row.responsible_id} | ({before.responsible_id} if before else set())
        self._tell_listeners(s, row.id, users, now, changes)
        return row

    def _tell_listeners(self, s: Session, task_id: str, users: set[str], now: datetime,
                        changes: Changes) -> None:
        for listener in self.task_listeners:
            at = listener(s, task_id, users, now)
            if at is not None:
                changes.job_at(at)

    def _decide(self, s: Session, before: Any, row: Task, actor_id: str, now: datetime,
                changes: Changes) -> None:
        responsible = s.get(User, row.responsible_id)
        assert responsible is not None
        decision = rules.on_change(before, task_value(row), actor_id, recipient(responsible),
                                   now, self.policy)
        self.center.apply(s, decision, row, now, changes)

    @staticmethod
    def _require_users(s: Session, ids: dict[str, str]) -> None:
        # One query loads them all into the session, where the rules' later look-ups find them.
        known = {u.id for u in s.execute(
            select(User).where(User.id.in_(set(ids.values())))).scalars()}
        for field, user_id in ids.items():
            if user_id not in known:
                raise InvalidInput(f"no user {user_id!r}", field=field)

    def complete_task(self, task_id: str, by: str, result: str | None = None) -> Task:
        fields: dict[str, Any] = {"completed_at": self.clock.now(), "completed_by": by}
        if result is not None:
            fields["result"] = result
        task = self.get_task(task_id)
        if task.completed_at is not None:
            return task  # completing twice is a no-op, not a second task_completed
        try:
            return self.upsert_task(task_id, fields, actor_id=by)
        except InvalidInput as exc:  # an unknown `by` is named as the caller sent it
            if exc.field in ("actor_id", "completed_by"):
                raise InvalidInput(exc.message, field="by") from None
            raise

    def delete_task(self, task_id: str) -> None:
        now = self.clock.now()
        changes = Changes()
        with self.db.transaction() as s:
            row = s.execute(select(Task).where(Task.id == task_id).with_for_update()).scalar()
            if row is None:
                raise NotFound(f"no task {task_id!r}", field="id")
            if row.deleted_at is not None:
                return
            row.deleted_at = row.updated_at = now
            s.add(row)
            self.center.apply(s, rules.on_delete(task_value(row)), row, now, changes)
            self._tell_listeners(s, row.id, {row.responsible_id}, now, changes)
        self.publish(changes)

    def get_task(self, task_id: str) -> Task:
        with self.db.read() as s:
            row = s.get(Task, task_id)
        if row is None or row.deleted_at is not None:
            raise NotFound(f"no task {task_id!r}", field="id")
        return row

    def list_tasks(self, responsible_id: str | None, open_only: bool | None, limit: int,
                   cursor: str | None) -> tuple[list[Task], str | None]:
        stmt = select(Task).where(Task.deleted_at.is_(None)).order_by(Task.id).limit(limit + 1)
        if responsible_id is not None:
            stmt = stmt.where(Task.responsible_id == responsible_id)
        if open_only is not None:
            done = Task.completed_at.is_(None) if open_only else Task.completed_at.is_not(None)
            stmt = stmt.where(done)
        if cursor:
            stmt = stmt.where(Task.id > cursor)
        with self.db.read() as s:
            rows = list(s.execute(stmt).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].id if more else None)

    # -- timers -------------------------------------------------------------------------

    def fire_timer(self, job: ClaimedJob) -> None:
        p = job.payload
        timer = rules.Timer(Kind(p["kind"]), p["user_id"], p["task_id"], p["occurrence"],
                            at=self.clock.now())
        now = self.clock.now()
        changes = Changes()
        with self.db.transaction() as s:
            # Locked like every task change locks it: a completion, move or deletion committing
            # meanwhile on another node is either seen here (and nothing fires) or waits for
            # this entry and removes it. Unlocked, the entry could land just after the change
            # had swept the task's entries, and a completed task kept a live task_overdue (N9).
            row = s.execute(_TASK_FOR_UPDATE, {"id": timer.task_id}).scalar()
            user = s.execute(_USER, {"id": timer.user_id}).scalar()
            if row is None or row.deleted_at is not None or user is None:
                return
            note = rules.on_timer(task_value(row), timer, recipient(user), now)
            if note is not None:
                self.center.notify(s, note, row, now, changes)
        self.publish(changes)
        if self.on_timer_fired is not None and changes.created:
            self.on_timer_fired(job, changes.created)

    # -- the notification center -------------------------------------------------------

    def list_notifications(self, user_id: str, unread: bool, limit: int,
                           cursor: int | None) -> tuple[list[Entry], int | None]:
        stmt = (select(Entry).where(Entry.user_id == user_id, Entry.removed_at.is_(None))
                .order_by(Entry.id.desc()).limit(limit + 1))
        if unread:
            stmt = stmt.where(Entry.read_at.is_(None))
        if cursor is not None:
            stmt = stmt.where(Entry.id < cursor)
        with self.db.read() as s:
            rows = list(s.execute(stmt).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].id if more else None)

    def unread_count(self, user_id: str) -> int:
        """N13: derived from the entries every time, so it cannot drift from them."""
        with self.db.read() as s:
            return s.execute(select(func.count()).select_from(Entry).where(
                Entry.user_id == user_id, Entry.removed_at.is_(None),
                Entry.read_at.is_(None))).scalar_one()

    def mark_read(self, user_id: str, entry_id: int) -> Entry:
        changes = Changes(read={user_id})
        with self.db.transaction() as s:
            entry = s.get(Entry, entry_id)
            if entry is None or entry.user_id != user_id or entry.removed_at is not None:
                raise NotFound(f"no notification {entry_id}", field="nid")
            if entry.read_at is None:
                entry.read_at = self.clock.now()
                s.add(entry)
        self.publish(changes)
        return entry

    def read_all(self, user_id: str) -> int:
        with self.db.transaction() as s:
            n = s.execute(update(Entry).where(
                Entry.user_id == user_id, Entry.removed_at.is_(None), Entry.read_at.is_(None))
                .values(read_at=self.clock.now())).rowcount
        self.publish(Changes(read={user_id}))
        return n or 0


def _assign(row: Task, fields: dict[str, Any], now: datetime, actor_id: str) -> bool:
    """Apply an upsert's fields to the row; True if anything changed."""
    fields = {k: v.astimezone(UTC) if isinstance(v, datetime) else v
              for k, v in fields.items()}  # one spelling per instant: N11 keys compare text
    if fields.get("due_at") is not None:
        fields.setdefault("due_date", None)
    if fields.get("due_date") is not None:
        fields.setdefault("due_at", None)
    if fields.get("completed_at") is not None and fields.get("completed_by") is None \
            and row.completed_by is None:
        fields["completed_by"] = actor_id
    if "completed_at" in fields and fields["completed_at"] is None:
        fields.setdefault("completed_by", None)
    changed = False
    for key in TASK_FIELDS:
        if key in fields and getattr(row, key) != fields[key]:
            if key == "responsible_id":  # N3: a hand-over is a new assignment
                row.assignment_seq += 1
            setattr(row, key, fields[key])
            changed = True
    if changed:
        row.updated_at = now
    return changed


def merge_preferences(current: dict, update: dict[str, dict[str, bool]]) -> dict:
    merged = {ch: dict(kinds) for ch, kinds in (current or default_preferences()).items()}
    for channel, kinds in update.items():
        try:
            carried = CHANNEL_KINDS[Channel(channel)]
        except ValueError:
            raise InvalidInput(f"unknown channel {channel!r}", field=f"channels.{channel}") from None
        for kind, on in kinds.items():
            if kind not in {k.value for k in carried}:
                raise InvalidInput(f"channel {channel} does not carry {kind!r}",
                                   field=f"channels.{channel}.{kind}")
            merged.setdefault(channel, {})[kind] = on
    return merged
