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

from sqlalchemy import bindparam, case, func, literal_column, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from syncd.settings import JobSettings
from syncd.store.db import Database
from syncd.store.tables import Job, UTCDateTime

PENDING = literal_column("'pending'")  # inlined so SQLite matches the partial claim index
RUNNING = literal_column("'running'")

# The worker's statements are built once, on the Core table, with bound parameters: building an
# ORM statement, and cache-keying it, cost several times more CPU than running it on SQLite.
T = Job.__table__
NOW = bindparam("now", type_=UTCDateTime())


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    key: str
    payload: dict
    attempts: int  # including this run
    due_at: datetime | None = None  # when it was meant to run (lag metrics, late-run checks)


class RetryLater(Exception):
    """Raised by a handler: try again after `delay` seconds (or the queue's backoff if None)."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class GiveUp(Exception):
    """Raised by a handler: this job can never succeed; mark it failed."""


def _enqueue_statement(dialect):
    ins = dialect.insert(T)
    return ins.on_conflict_do_update(
        index_elements=["key"], where=T.c.state == "cancelled",
        set_={"state": "pending", "due_at": ins.excluded.due_at, "attempts": 0,
              "last_error": None, "lease_until": None, "locked_by": None,
              "updated_at": ins.excluded.updated_at},
    ).returning(T.c.id)


# Built once: every timer and delivery goes through here, and building and cache-keying a fresh
# INSERT … ON CONFLICT construct per call cost more than running it.
_ENQUEUE = {"sqlite": _enqueue_statement(sqlite), "postgresql": _enqueue_statement(postgresql)}


def enqueue(db: Database, session: Session, *, kind: str, key: str, due_at: datetime,
            payload: dict, group: str, now: datetime) -> bool:
    """Add a job unless one with the same idempotency key exists (a cancelled one is revived:
    a deadline moved away and back needs its timer again). True if the job is now pending."""
    row = {"kind": kind, "key": key, "group_key": group, "payload": payload, "state": "pending",
           "due_at": due_at, "attempts": 0, "rerun": False, "created_at": now, "updated_at": now}
    stmt = _ENQUEUE["postgresql" if db.is_postgres else "sqlite"]
    # RETURNING, because rowcount is unreliable for INSERT … ON CONFLICT across drivers.
    return session.execute(stmt, row).first() is not None


_GROUP_PENDING = select(T.c.id, T.c.kind, T.c.payload).where(
    T.c.group_key == bindparam("group"), T.c.state == PENDING)
# Re-checks `pending`: a job another node claimed since we read the group is left to run.
_CANCEL = update(T).where(T.c.id.in_(bindparam("ids", expanding=True)),
                          T.c.state == PENDING).values(state="cancelled", updated_at=NOW)


def cancel(session: Session, group: str, now: datetime, *, kinds: set[str] | None = None,
           where: dict | None = None) -> int:
    """Cancel pending jobs of a group, optionally only those whose payload matches `where`."""
    rows = session.execute(_GROUP_PENDING, {"group": group}).all()
    ids = [
        job_id for job_id, kind, payload in rows
        if (kinds is None or kind in kinds)
        and all(payload.get(k) == v for k, v in (where or {}).items())
    ]
    if ids:
        session.execute(_CANCEL, {"ids": ids, "now": now})
    return len(ids)


def _claim_statement(wanted):
    ids = wanted.limit(bindparam("room")).with_for_update(skip_locked=True).scalar_subquery()
    return (update(T).where(T.c.id.in_(ids))
            .values(state="running", lease_until=bindparam("lease_until", type_=UTCDateTime()),
                    locked_by=bindparam("node"), attempts=T.c.attempts + 1, updated_at=NOW)
            .returning(T.c.due_at, T.c.id, T.c.kind, T.c.key, T.c.payload, T.c.attempts))


# Expired leases first (their node died; they are the oldest work, and must not starve behind a
# steady flow of new jobs), then due pending jobs in due order.
_CLAIM = (
    _claim_statement(select(T.c.id).where(T.c.state == RUNNING, T.c.lease_until < NOW)
                     .order_by(T.c.lease_until)),
    _claim_statement(select(T.c.id).where(T.c.state == PENDING, T.c.due_at <= NOW)
                     .order_by(T.c.due_at)),
)
# ORDER BY … LIMIT 1 on the partial indexes: one index probe each, however many rows.
_FIRST_DUE = select(T.c.due_at).where(T.c.state == PENDING).order_by(T.c.due_at).limit(1)
_FIRST_LEASE_END = (select(T.c.lease_until).where(T.c.state == RUNNING)
                    .order_by(T.c.lease_until).limit(1))


def claim(db: Database, now: datetime, limit: int, node: str, lease_seconds: int) -> list[ClaimedJob]:
    """Take up to `limit` jobs for this node: those whose lease expired, then due ones."""
    return _claim(db, now, limit, node, lease_seconds, peek=False)[0]


def claim_next(db: Database, now: datetime, limit: int, node: str, lease_seconds: int
               ) -> tuple[list[ClaimedJob], datetime | None]:
    """claim(), plus when to look again, read in the same transaction (the worker's loop needs
    both: one round trip instead of two): `now` if the claim was full (more may be due), else
    next_due() (None: nothing pending or running)."""
    return _claim(db, now, limit, node, lease_seconds, peek=True)


def _claim(db: Database, now: datetime, limit: int, node: str, lease_seconds: int, peek: bool
           ) -> tuple[list[ClaimedJob], datetime | None]:
    params = {"now": now, "node": node, "lease_until": now + timedelta(seconds=lease_seconds)}
    claimed: list[ClaimedJob] = []
    with db.transaction() as session:
        for stmt in _CLAIM:
            room = limit - len(claimed)
            if room <= 0:
                break
            # RETURNING comes back in no set order; run the batch in due order all the same.
            rows = sorted(session.execute(stmt, {**params, "room": room}).all(),
                          key=lambda r: (r[0], r[1]))
            claimed += [ClaimedJob(*r[1:], due_at=r[0]) for r in rows]
        if not peek:
            return claimed, None
        return claimed, now if len(claimed) >= limit else _next(session)


def _next(session: Session) -> datetime | None:
    due = session.execute(_FIRST_DUE).scalar()
    lease = session.execute(_FIRST_LEASE_END).scalar()
    return min((t for t in (due, lease) if t is not None), default=None)


def next_due(db: Database) -> datetime | None:
    """When the next claim can find work: the earliest pending due time or running lease end
    (a node that dies mid-job is taken over when its lease runs out, not a sleep later)."""
    with db.read() as session:
        return _next(session)


# The rows still held by the claims in `held`, a list of (id, attempts): see the docstring.
_HELD = (T.c.state == RUNNING) & tuple_(T.c.id, T.c.attempts).in_(
    bindparam("held", expanding=True))
_FINISH = update(T).where(_HELD).values(
    # A job asked for again while it ran (ensure() set `rerun`) goes round once more.
    state=case((T.c.rerun, "pending"), else_="done"),
    due_at=case((T.c.rerun, NOW), else_=T.c.due_at),
    rerun=False, lease_until=None, updated_at=NOW)
_RETRY = update(T).where(_HELD).values(
    state=bindparam("state"), due_at=bindparam("due_at", type_=UTCDateTime()),
    lease_until=None, locked_by=None, last_error=bindparam("error"), updated_at=NOW)
_FAIL = update(T).where(_HELD).values(
    state="failed", lease_until=None, last_error=bindparam("error"), updated_at=NOW)
_RELEASE = update(T).where(_HELD).values(
    state="pending", lease_until=None, locked_by=None, attempts=T.c.attempts - 1,
    updated_at=NOW)
_RESCHEDULE = update(T).where(_HELD).values(
    state="pending", due_at=case((T.c.rerun, NOW), else_=bindparam("at", type_=UTCDateTime())),
    rerun=False, attempts=0, lease_until=None, locked_by=None, last_error=None, updated_at=NOW)


def _held(jobs: list[ClaimedJob]) -> list[tuple[int, int]]:
    return [(j.id, j.attempts) for j in jobs]


def finish(db: Database, jobs: list[ClaimedJob], now: datetime) -> None:
    if not jobs:
        return
    with db.transaction() as session:
        session.execute(_FINISH, {"held": _held(jobs), "now": now})


def reschedule(db: Database, job: ClaimedJob, at: datetime, now: datetime) -> None:
    """A recurring job ran and is next due at `at` (or at once, if asked for meanwhile)."""
    with db.transaction() as session:
        session.execute(_RESCHEDULE, {"held": _held([job]), "now": now, "at": at})


def _ensure_statement(dialect):
    ins = dialect.insert(T)
    new, running, pending = ins.excluded, T.c.state == RUNNING, T.c.state == PENDING
    return ins.on_conflict_do_update(index_elements=["key"], set_={
        "state": case((running, T.c.state), else_=PENDING),
        "due_at": case((running, T.c.due_at),
                       (pending & (T.c.due_at < new.due_at), T.c.due_at),
                       else_=new.due_at),
        "rerun": case((running, True), else_=False),
        "attempts": case((running | pending, T.c.attempts), else_=0),
        "payload": new.payload, "group_key": new.group_key, "updated_at": new.updated_at})


_ENSURE = {"sqlite": _ensure_statement(sqlite), "postgresql": _ensure_statement(postgresql)}


def ensure(db: Database, session: Session, *, kind: str, key: str, due_at: datetime,
           payload: dict, group: str, now: datetime) -> None:
    """Make sure the job `key` runs at `due_at` or sooner: one row per key, reused forever.
    Pending: the earlier due time wins. Running: it runs once more when it ends. Done,
    failed or cancelled: pending again."""
    row = {"kind": kind, "key": key, "group_key": group, "payload": payload, "state": "pending",
           "due_at": due_at, "attempts": 0, "rerun": False, "created_at": now, "updated_at": now}
    session.execute(_ENSURE["postgresql" if db.is_postgres else "sqlite"], row)


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
        n = session.execute(_RETRY, {"held": _held([job]), "now": now, "state": state,
                                     "due_at": now + timedelta(seconds=wait),
                                     "error": error[:2000]}).rowcount
    return state if n else None


def fail(db: Database, job: ClaimedJob, error: str, now: datetime) -> None:
    with db.transaction() as session:
        session.execute(_FAIL, {"held": _held([job]), "now": now, "error": error[:2000]})


def release(db: Database, jobs: list[ClaimedJob], now: datetime) -> None:
    """Hand claimed jobs back untouched (a clean shutdown): they are due again at once, and the
    claim that never ran them does not count as an attempt."""
    if not jobs:
        return
    with db.transaction() as session:
        session.execute(_RELEASE, {"held": _held(jobs), "now": now})


def counts(db: Database, now: datetime) -> dict[str, int]:
    """Jobs by state, plus how many pending ones are late (for status and metrics)."""
    with db.read() as session:
        rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
        late = session.execute(select(func.count()).select_from(Job).where(
            Job.state == PENDING, Job.due_at <= now)).scalar()
    return {**{state: n for state, n in rows}, "late": late}
