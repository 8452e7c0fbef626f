"""Applies a rules Decision inside the caller's transaction: entries, deliveries and timers.

Every insert is keyed (N11): an entry by (user, task, kind, occurrence), a delivery by
(entry, channel), a job by its idempotency key. Re-applying the same decision, on any node,
after any crash, adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cached_property
from typing import Any

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from syncd.domain import messages, rules
from syncd.domain.model import Channel, Recipient
from syncd.domain.model import Task as TaskValue
from syncd.jobs import queue
from syncd.store.db import Database
from syncd.store.tables import Delivery, Device, Entry, Task, User, WebPushSubscription

TIMER_JOB = "timer"
DELIVER_JOB = "deliver"


@dataclass(frozen=True)
class NewEntry:
    """A center entry as the transaction that made it knows it (no ORM object: a fired timer
    makes thousands a minute)."""

    id: int
    user_id: str
    task_id: str
    kind: str
    occurrence: str
    actor_id: str | None
    center_only: bool
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None = None


@dataclass
class Changes:
    """What a transaction did to the centers, published as live events after it commits."""

    created: list[NewEntry] = field(default_factory=list)
    removed: dict[str, list[int]] = field(default_factory=dict)
    read: set[str] = field(default_factory=set)
    popups: set[int] = field(default_factory=set)  # entries the browser toggle lets pop up
    earliest_job: datetime | None = None

    def job_at(self, at: datetime) -> None:
        if self.earliest_job is None or at < self.earliest_job:
            self.earliest_job = at

    @property
    def users(self) -> set[str]:
        return {e.user_id for e in self.created} | set(self.removed) | self.read


def recipient(user: User) -> Recipient:
    return Recipient(
        id=user.id, timezone=user.timezone, locale=user.locale,
        all_day_notify_at=time.fromisoformat(user.all_day_notify_at),
        preferences=user.preferences,
    )


def task_value(row: Task) -> TaskValue:
    return TaskValue(
        id=row.id, text=row.text, type=row.type, author_id=row.author_id,
        responsible_id=row.responsible_id, due_at=row.due_at, due_date=row.due_date,
        completed_at=row.completed_at, completed_by=row.completed_by,
        assignment_seq=row.assignment_seq,
    )


def group(task_id: str) -> str:
    return f"task:{task_id}"


class Center:
    def __init__(self, db: Database, policy: rules.Policy) -> None:
        self.db = db
        self.policy = policy

    def apply(self, session: Session, decision: rules.Decision, task: Task, now: datetime,
              changes: Changes) -> None:
        for w in decision.withdraw:
            self.withdraw(session, w, now, changes)
        for note in decision.notify:
            self.notify(session, note, task, now, changes)
        for timer in decision.timers:
            self.set_timer(session, timer, now, changes)

    def set_timer(self, session: Session, timer: rules.Timer, now: datetime,
                  changes: Changes) -> None:
        key = f"timer:{timer.kind}:{timer.task_id}:{timer.user_id}:{timer.occurrence}"
        payload = {"kind": timer.kind.value, "user_id": timer.user_id,
                   "task_id": timer.task_id, "occurrence": timer.occurrence}
        if queue.enqueue(self.db, session, kind=TIMER_JOB, key=key, due_at=timer.at,
                         payload=payload, group=group(timer.task_id), now=now):
            changes.job_at(timer.at)

    def withdraw(self, session: Session, w: rules.Withdraw, now: datetime,
                 changes: Changes) -> None:
        kinds = {k.value for k in w.kinds}
        where = {"user_id": w.user_id} if w.user_id else {}
        for kind in kinds & {k.value for k in rules.TIMER_KINDS}:
            queue.cancel(session, group(w.task_id), now, kinds={TIMER_JOB},
                         where={**where, "kind": kind})
        if not w.remove_entries:
            return
        stmt = (update(Entry)
                .where(Entry.task_id == w.task_id, Entry.kind.in_(kinds),
                       Entry.removed_at.is_(None))
                .values(removed_at=now).returning(Entry.id, Entry.user_id))
        if w.user_id:
            stmt = stmt.where(Entry.user_id == w.user_id)
        removed = session.execute(stmt).all()
        if not removed:
            return
        ids = [entry_id for entry_id, _ in removed]
        for entry_id, user_id in removed:
            changes.removed.setdefault(user_id, []).append(entry_id)
        session.execute(update(Delivery).where(Delivery.entry_id.in_(ids),
                                               Delivery.state == "pending")
                        .values(state="cancelled", reason="entry removed"))

    def notify(self, session: Session, note: rules.Notify, task: Task | None, now: datetime,
               changes: Changes) -> NewEntry | None:
        """Record the entry (once, N11) and one delivery per channel the rules allow."""
        user = session.get(User, note.user_id)
        if user is None:
            return None
        who = recipient(user)
        actor = session.get(User, note.actor_id) if note.actor_id else None
        title, body = messages.render(
            note.kind, who.locale,
            task_type=task.type if task else "", text=task.text if task else "",
            deadline=messages.format_deadline(task.due_at if task else None,
                                              task.due_date if task else None,
                                              who.timezone, who.locale),
            actor_name=(actor.name or actor.id) if actor else "",
        )
        row = {"user_id": note.user_id, "task_id": note.task_id, "kind": note.kind.value,
               "occurrence": note.occurrence, "actor_id": note.actor_id,
               "center_only": note.center_only, "title": title, "body": body, "created_at": now}
        entry_id = session.execute(self._insert_entry, row).scalar()
        if entry_id is None:  # N11: this notification exists already
            return None
        entry = NewEntry(id=entry_id, **row)
        changes.created.append(entry)
        # N5: the email must leave before the deadline: due_at, or the end of a whole-day's
        # date (not its notify time, which is when the entry is made: no grace at all).
        deadline = rules.overdue_instant(task_value(task), who) if task else None
        channels = rules.channels_for(note, who)
        if Channel.BROWSER in channels:
            changes.popups.add(entry_id)
        if channels:
            self._deliver(session, note, entry, user, actor, channels, task, deadline, now,
                          changes)
        return entry

    @cached_property
    def _insert_entry(self) -> Any:
        # Built once; RETURNING gives the new id, or nothing when the identity exists (N11).
        table = Entry.__table__
        stmt = (postgresql if self.db.is_postgres else sqlite).insert(table)
        return stmt.on_conflict_do_nothing(
            index_elements=["user_id", "task_id", "kind", "occurrence"]).returning(table.c.id)

    def _deliver(self, session: Session, note: rules.Notify, entry: NewEntry, user: User,
                 actor: User | None, channels: list[Channel], task: Task | None,
                 deadline: datetime | None, now: datetime, changes: Changes) -> None:
        payload = _payload(session, entry, user, actor, task)
        unreachable = _unreachable(session, user, channels)
        rows = []
        for channel in channels:
            at = (rules.email_send_at(note, now, deadline, self.policy)
                  if channel is Channel.EMAIL else now)
            skip = unreachable.get(channel)
            rows.append({"entry_id": entry.id, "user_id": user.id, "channel": channel.value,
                         "recipient": user.email if channel is Channel.EMAIL else user.id,
                         "payload": payload, "state": "skipped" if skip else "pending",
                         "reason": skip, "attempts": 0, "send_after": at, "created_at": now})
        ids = session.execute(_INSERT_DELIVERY, rows).scalars().all()
        for delivery_id, r in zip(ids, rows, strict=True):
            if r["state"] == "pending":
                queue.enqueue(self.db, session, kind=DELIVER_JOB, key=f"deliver:{delivery_id}",
                              due_at=r["send_after"], payload={"delivery_id": delivery_id},
                              group=group(entry.task_id), now=now)
                changes.job_at(r["send_after"])


# RETURNING in parameter order, so each id pairs with its row (one statement for them all).
_INSERT_DELIVERY = (insert(Delivery.__table__)
                    .returning(Delivery.__table__.c.id, sort_by_parameter_order=True))


def _unreachable(session: Session, user: User, channels: list[Channel]) -> dict[Channel, str]:
    """Why a channel cannot reach the user at all, decided now so a delivery with nowhere to
    go costs no job (the sender checks again at send time: devices come and go)."""
    why: dict[Channel, str] = {}
    if Channel.EMAIL in channels and not user.email:
        why[Channel.EMAIL] = "user has no email address"
    if Channel.BROWSER in channels or Channel.MOBILE in channels:
        browser, mobile = session.execute(_PUSH_TARGETS, {"user_id": user.id}).one()
        if not browser:
            why[Channel.BROWSER] = "no browser subscribed to push"
        if not mobile:
            why[Channel.MOBILE] = "no enabled device"
    return why


# One round trip for both push channels: does the user have a browser, an enabled phone?
_PUSH_TARGETS = select(
    exists().where(WebPushSubscription.user_id == bindparam("user_id")),
    exists().where(Device.user_id == bindparam("user_id"), Device.enabled.is_(True)))


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _payload(session: Session, entry: NewEntry, user: User, actor: User | None,
             task: Task | None) -> dict:
    """What every sender needs to word the message without reading the database again: the
    entry, the task, who it is to, who set, handed over or completed it (the entry's actor),
    the task's author, and the linked CRM entity."""
    author = session.get(User, task.author_id) if task else None
    return {
        "entry_id": entry.id, "kind": entry.kind, "task_id": entry.task_id,
        "title": entry.title, "body": entry.body, "locale": user.locale,
        "timezone": user.timezone, "user_name": user.name or user.id,
        "actor_id": entry.actor_id,
        "actor_name": (actor.name or actor.id) if actor else None,
        "task_type": task.type if task else None,
        "task_text": task.text if task else None,
        "entity_url": task.entity_url if task else None,
        "entity_type": task.entity_type if task else None,
        "entity_id": task.entity_id if task else None,
        "due_at": task.due_at.isoformat() if task and task.due_at else None,
        "due_date": _iso(task.due_date) if task else None,
        "duration_minutes": task.duration_minutes if task else None,
        "author_id": task.author_id if task else None,
        "author_name": (author.name or author.id) if author else None,
    }
