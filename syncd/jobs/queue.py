"""Enqueue, claim, finish and retry jobs (SPEC §7).

A claim moves due rows to `running` with a lease; on PostgreSQL `FOR UPDATE SKIP LOCKED` lets
any number of nodes claim side by side, on SQLite the single writer lock does the same. A row
whose lease ran out (its node died) is claimed again; handlers are idempotent, so that is safe.

Every claim bumps `attempts`, so (id, attempts) names one claim: finish, retry, fail and release
change a row only while that claim still holds it. A node that lost its lease (it stalled, and
another node took the job over) cannot then mark the job done, or pending again, under the new
owner's feet.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, literal_column, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
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
    """Take up to `limit` jobs for this node: first those whose lease expired (their node died;
    they are the oldest work, and must not starve behind a steady flow of new jobs), then due
    pending ones in due order."""
    lease_until = now + timedelta(seconds=lease_seconds)
    claimed: list[ClaimedJob] = []
    with db.transaction() as session:
        for wanted in (
            select(Job.id).where(Job.state == RUNNING, Job.lease_until < now)
            .order_by(Job.lease_until),
            select(Job.id).where(Job.state == PENDING, Job.due_at <= now).order_by(Job.due_at),
        ):
            room = limit - len(claimed)
            if room <= 0:
                break
            ids = wanted.limit(room).with_for_update(skip_locked=True).scalar_subquery()
            stmt = (
                update(Job).where(Job.id.in_(ids))
                .values(state="running", lease_until=lease_until, locked_by=node,
                        attempts=Job.attempts + 1, updated_at=now)
                .returning(Job.due_at, Job.id, Job.kind, Job.key, Job.payload, Job.attempts)
            )
            # RETURNING comes back in no set order; run the batch in due order all the same.
            rows = sorted(session.execute(stmt).all(), key=lambda r: (r[0], r[1]))
            claimed += [ClaimedJob(*row[1:]) for row in rows]
    return claimed


def _held(jobs: list[ClaimedJob]):  # noqa: ANN202 (an SQL condition)
    """The rows still held by these claims (see the module docstring)."""
    return (Job.state == RUNNING) & tuple_(Job.id, Job.attempts).in_(
        [(j.id, j.attempts) for j in jobs])


def finish(db: Database, jobs: list[ClaimedJob], now: datetime) -> None:
    if not jobs:
        return
    with db.transaction() as session:
        # A job asked for again while it ran (ensure() set `rerun`) goes round once more.
        session.execute(update(Job).where(_held(jobs)).values(
            state=case((Job.rerun, "pending"), else_="done"),
            due_at=case((Job.rerun, now), else_=Job.due_at),
            rerun=False, lease_until=None, updated_at=now))


def reschedule(db: Database, job: ClaimedJob, at: datetime, now: datetime) -> None:
    """A recurring job ran and is next due at `at` (or at once, if asked for meanwhile)."""
    with db.transaction() as session:
        session.execute(update(Job).where(_held([job])).values(
            state="pending", due_at=case((Job.rerun, now), else_=at), rerun=False,
            attempts=0, lease_until=None, locked_by=None, last_error=None, updated_at=now))


def ensure(db: Database, session: Session, *, kind: str, key: str, due_at: datetime,
           payload: dict, group: str, now: datetime) -> None:
    """Make sure the job `key` runs at `due_at` or sooner: one row per key, reused forever.
    Pending: the earlier due time wins. Running: it runs once more when it ends. Done,
    failed or cancelled: pending again."""
    row = dict(kind=kind, key=key, group_key=group, payload=payload, state="pending",
               due_at=due_at, attempts=0, created_at=now, updated_at=now)
    dialect = postgresql if db.is_postgres else sqlite
    stmt = dialect.insert(Job).values(row)
    running = Job.state == RUNNING
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_=dict(
        state=case((running, Job.state), else_=PENDING),
        due_at=case((running, Job.due_at),
                    ((Job.state == PENDING) & (Job.due_at < stmt.excluded.due_at), Job.due_at),
                    else_=stmt.excluded.due_at),
        rerun=case((running, True), else_=False),
        attempts=case((running | (Job.state == PENDING), Job.attempts), else_=0),
        payload=stmt.excluded.payload, group_key=stmt.excluded.group_key, updated_at=now))
    session.execute(stmt)


def backoff(attempts: int, settings: JobSettings) -> float:
    """Exponential and capped, jittered over the upper half of the step: retries from many jobs
    don't arrive together, yet none comes back sooner than half the intended wait."""
    ceiling = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** (attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


def retry(db: Database, job: ClaimedJob, error: str, now: datetime, settings: JobSettings,
          delay: float | None = None) -> str | None:
    """Persist the next attempt (or the failure). Returns the job's new state, or None if this
    claim no longer held the job (its lease expired and another node took it over).

    An explicit `delay` (RetryLater) is the handler saying "not now, later" (a quota pause, a
    rate limit): it is honoured as given and never counts towards giving up."""
    give_up = delay is None and job.attempts >= settings.max_attempts
    state = "failed" if give_up else "pending"
    wait = delay if delay is not None else backoff(job.attempts, settings)
    with db.transaction() as session:
        n = session.execute(update(Job).where(_held([job])).values(
            state=state, due_at=now + timedelta(seconds=wait), lease_until=None,
            locked_by=None, last_error=error[:2000], updated_at=now)).rowcount
    return state if n else None


def fail(db: Database, job: ClaimedJob, error: str, now: datetime) -> None:
    with db.transaction() as session:
        session.execute(update(Job).where(_held([job])).values(
            state="failed", lease_until=None, last_error=error[:2000], updated_at=now))


def release(db: Database, jobs: list[ClaimedJob], now: datetime) -> None:
    """Hand claimed jobs back untouched (a clean shutdown): they are due again at once, and the
    claim that never ran them does not count as an attempt."""
    if not jobs:
        return
    with db.transaction() as session:
        session.execute(update(Job).where(_held(jobs)).values(
            state="pending", lease_until=None, locked_by=None,
            attempts=Job.attempts - 1, updated_at=now))


def next_due(db: Database) -> datetime | None:
    """When the next claim can find work: the earliest pending due time or running lease end
    (a node that dies mid-job is taken over when its lease runs out, not a sleep later).
    ORDER BY … LIMIT 1 on the partial indexes: one index probe each, however many rows."""
    with db.read() as session:
        due = session.execute(select(Job.due_at).where(Job.state == PENDING)
                              .order_by(Job.due_at).limit(1)).scalar()
        lease = session.execute(select(Job.lease_until).where(Job.state == RUNNING)
                                .order_by(Job.lease_until).limit(1)).scalar()
    return min((t for t in (due, lease) if t is not None), default=None)


def counts(db: Database, now: datetime) -> dict[str, int]:
    """Jobs by state, plus how many pending ones are late (for status and metrics)."""
    with db.read() as session:
        rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
        late = session.execute(select(func.count()).select_from(Job).where(
            Job.state == PENDING, Job.due_at <= now)).scalar()
    return {**{state: n for state, n in rows}, "late": late}
