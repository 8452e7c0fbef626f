"""Enqueue, claim, finish and retry jobs (SPEC §7).

A claim moves due rows to `running` with a lease; on PostgreSQL `FOR UPDATE SKIP LOCKED` lets
any number of nodes claim side by side, on SQLite the single writer lock does the same. A row
whose lease ran out (its node died) is claimed again; handlers are idempotent, so that is safe.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, literal_column, select, update
from sqlmodel import Session

from syncd.settings import JobSettings
from syncd.store.db import Database
from syncd.store.tables import Job

PENDING = literal_column("'pending'")  # inlined so SQLite matches the partial claim index
RUNNING = literal_column("'running'")


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    key: str
    payload: dict
    attempts: int  # including this run


class RetryLater(Exception):
    """Raised by a handler: try again after `delay` seconds (or the queue's backoff if None)."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class GiveUp(Exception):
    """Raised by a handler: this job can never succeed; mark it failed."""


def enqueue(db: Database, session: Session, *, kind: str, key: str, due_at: datetime,
            payload: dict, group: str, now: datetime) -> bool:
    """Add a job unless one with the same idempotency key exists (a cancelled one is revived:
    a deadline moved away and back needs its timer again). True if the job is now pending."""
    row = dict(kind=kind, key=key, group_key=group, payload=payload, state="pending",
               due_at=due_at, attempts=0, created_at=now, updated_at=now)
    revive = dict(state="pending", due_at=due_at, attempts=0, last_error=None, updated_at=now)
    return db.upsert(session, Job, row, conflict=["key"], update=revive,
                     only_if=Job.state == "cancelled") == 1


def cancel(session: Session, group: str, now: datetime, *, kinds: set[str] | None = None,
           where: dict | None = None) -> int:
    """Cancel pending jobs of a group, optionally only those whose payload matches `where`."""
    rows = session.execute(
        select(Job.id, Job.kind, Job.payload).where(Job.group_key == group, Job.state == PENDING)
    ).all()
    ids = [
        job_id for job_id, kind, payload in rows
        if (kinds is None or kind in kinds)
        and all(payload.get(k) == v for k, v in (where or {}).items())
    ]
    if ids:
        session.execute(update(Job).where(Job.id.in_(ids))
                     .values(state="cancelled", updated_at=now))
    return len(ids)


def claim(db: Database, now: datetime, limit: int, node: str, lease_seconds: int) -> list[ClaimedJob]:
    """Take up to `limit` due jobs (and jobs whose lease expired) for this node."""
    lease_until = now + timedelta(seconds=lease_seconds)
    claimed: list[ClaimedJob] = []
    with db.transaction() as session:
        for wanted in (
            select(Job.id).where(Job.state == PENDING, Job.due_at <= now)
            .order_by(Job.due_at).limit(limit),
            select(Job.id).where(Job.state == RUNNING, Job.lease_until < now).limit(limit),
        ):
            room = limit - len(claimed)
            if room <= 0:
                break
            ids = wanted.limit(room).with_for_update(skip_locked=True).scalar_subquery()
            stmt = (
                update(Job).where(Job.id.in_(ids))
                .values(state="running", lease_until=lease_until, locked_by=node,
                        attempts=Job.attempts + 1, updated_at=now)
                .returning(Job.id, Job.kind, Job.key, Job.payload, Job.attempts)
            )
            claimed += [ClaimedJob(*row) for row in session.execute(stmt).all()]
    return claimed


def finish(db: Database, job_ids: list[int], now: datetime) -> None:
    if not job_ids:
        return
    with db.transaction() as session:
        session.execute(update(Job).where(Job.id.in_(job_ids), Job.state == RUNNING)
                     .values(state="done", lease_until=None, updated_at=now))


def backoff(attempts: int, settings: JobSettings) -> float:
    """Exponential, capped, with full jitter so retries from many jobs don't arrive together."""
    ceiling = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** (attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


def retry(db: Database, job: ClaimedJob, error: str, now: datetime, settings: JobSettings,
          delay: float | None = None) -> str:
    """Persist the next attempt (or the failure). Returns the job's new state."""
    give_up = delay is None and job.attempts >= settings.max_attempts
    state = "failed" if give_up else "pending"
    wait = delay if delay is not None else backoff(job.attempts, settings)
    with db.transaction() as session:
        session.execute(update(Job).where(Job.id == job.id).values(
            state=state, due_at=now + timedelta(seconds=wait), lease_until=None,
            locked_by=None, last_error=error[:2000], updated_at=now))
    return state


def fail(db: Database, job: ClaimedJob, error: str, now: datetime) -> None:
    with db.transaction() as session:
        session.execute(update(Job).where(Job.id == job.id).values(
            state="failed", lease_until=None, last_error=error[:2000], updated_at=now))


def release(db: Database, job_ids: list[int], now: datetime) -> None:
    """Hand claimed jobs back untouched (a clean shutdown): they are due again at once."""
    if not job_ids:
        return
    with db.transaction() as session:
        session.execute(update(Job).where(Job.id.in_(job_ids), Job.state == RUNNING).values(
            state="pending", lease_until=None, locked_by=None,
            attempts=Job.attempts - 1, updated_at=now))


def next_due(db: Database) -> datetime | None:
    with db.read() as session:
        return session.execute(select(func.min(Job.due_at)).where(Job.state == PENDING)).scalar()


def counts(db: Database, now: datetime) -> dict[str, int]:
    """Jobs by state, plus how many pending ones are late (for status and metrics)."""
    with db.read() as session:
        rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
        late = session.execute(select(func.count()).select_from(Job).where(
            Job.state == PENDING, Job.due_at <= now)).scalar()
    return {**{state: n for state, n in rows}, "late": late}
