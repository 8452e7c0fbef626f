"""The job queue (SPEC §7) on SQLite and PostgreSQL: keys, due order, leases, retries, workers."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from syncd.clock import ManualClock
from syncd.jobs import queue
from syncd.jobs.queue import ClaimedJob, GiveUp, RetryLater
from syncd.jobs.worker import Worker
from syncd.settings import JobSettings
from syncd.store.db import Database
from syncd.store.tables import Job
from tests.conftest import START

LEASE = 60
SETTINGS = JobSettings(batch_size=50, lease_seconds=LEASE, max_attempts=4,
                       backoff_base_seconds=10, backoff_max_seconds=25)


def add(db: Database, key: str, due: datetime, kind: str = "test", now: datetime = START,
        **payload: object) -> bool:
    with db.transaction() as s:
        return queue.enqueue(db, s, kind=kind, key=key, due_at=due, payload=payload or {"k": key},
                             group=f"g:{key}", now=now)


def add_many(db: Database, n: int, due: datetime = START, kind: str = "test") -> list[str]:
    keys = [f"job-{i:05d}" for i in range(n)]
    with db.transaction() as s:
        for key in keys:
            queue.enqueue(db, s, kind=kind, key=key, due_at=due, payload={"k": key},
                          group="bulk", now=START)
    return keys


def job(db: Database, key: str) -> Job:
    with db.read() as s:
        return s.execute(select(Job).where(Job.key == key)).scalar_one()


def claim(db: Database, now: datetime = START, limit: int = 100, node: str = "a") -> list[ClaimedJob]:
    return queue.claim(db, now, limit, node, LEASE)


# -- enqueue --------------------------------------------------------------------------------

def test_enqueue_is_idempotent_by_key(db: Database) -> None:
    assert add(db, "k1", START + timedelta(minutes=1))
    assert not add(db, "k1", START + timedelta(minutes=9))  # same key: nothing changes
    with db.read() as s:
        rows = s.execute(select(Job)).scalars().all()
    assert len(rows) == 1
    assert rows[0].state == "pending" and rows[0].due_at == START + timedelta(minutes=1)


def test_done_job_is_not_enqueued_again(db: Database) -> None:
    add(db, "k1", START)
    queue.finish(db, claim(db), START)
    assert not add(db, "k1", START + timedelta(minutes=1))  # N11: it ran; it stays done
    assert job(db, "k1").state == "done"
    assert claim(db, START + timedelta(hours=1)) == []


def test_cancelled_job_is_revived_by_its_key(db: Database) -> None:
    add(db, "k1", START + timedelta(minutes=1))
    with db.transaction() as s:
        assert queue.cancel(s, "g:k1", START) == 1
    assert job(db, "k1").state == "cancelled"
    assert claim(db, START + timedelta(hours=1)) == []

    later = START + timedelta(minutes=7)
    assert add(db, "k1", later, now=START + timedelta(minutes=2))
    revived = job(db, "k1")
    assert (revived.state, revived.due_at, revived.attempts) == ("pending", later, 0)
    assert [j.key for j in claim(db, later)] == ["k1"]


def test_cancel_filters_by_kind_and_payload(db: Database) -> None:
    with db.transaction() as s:
        for key, kind, user in [("a", "timer", "u1"), ("b", "timer", "u2"), ("c", "deliver", "u1")]:
            queue.enqueue(db, s, kind=kind, key=key, due_at=START, payload={"user_id": user},
                          group="task:1", now=START)
    with db.transaction() as s:
        assert queue.cancel(s, "task:1", START, kinds={"timer"}, where={"user_id": "u1"}) == 1
    assert [job(db, k).state for k in "abc"] == ["cancelled", "pending", "pending"]


# -- claim ----------------------------------------------------------------------------------

def test_claim_takes_only_due_jobs_in_due_order(db: Database) -> None:
    offsets = {"j-late": 30, "j-first": -120, "j-now": 0, "j-future": 50, "j-second": -60}
    for key, seconds in offsets.items():
        add(db, key, START + timedelta(seconds=seconds))
    assert [j.key for j in claim(db, limit=2)] == ["j-first", "j-second"]
    assert [j.key for j in claim(db)] == ["j-now"]  # due_at == now is due
    assert claim(db) == []
    assert [j.key for j in claim(db, START + timedelta(seconds=30))] == ["j-late"]
    got = claim(db, START + timedelta(seconds=55))  # before any lease runs out
    assert [(j.key, j.attempts, j.payload) for j in got] == [("j-future", 1, {"k": "j-future"})]
    assert job(db, "j-future").locked_by == "a"


def test_next_due_is_the_earliest_pending_job(db: Database) -> None:
    assert queue.next_due(db) is None
    add(db, "b", START + timedelta(minutes=5))
    add(db, "a", START + timedelta(minutes=2))
    assert queue.next_due(db) == START + timedelta(minutes=2)
    claim(db, START + timedelta(minutes=2))  # "a" runs: its lease end is now the next event
    assert queue.next_due(db) == START + timedelta(minutes=2, seconds=LEASE)
    assert queue.counts(db, START + timedelta(minutes=5)) == {"pending": 1, "running": 1,
                                                              "late": 1}


def test_concurrent_claims_never_share_a_job(db_url: str, db: Database) -> None:
    """Four nodes, each its own Database (connection pool) on the same URL, claim side by side."""
    add_many(db, 400)
    nodes = [Database(db_url) for _ in range(4)]
    got: list[list[int]] = [[] for _ in nodes]
    start = threading.Barrier(len(nodes))

    def run(i: int) -> None:
        start.wait()
        while batch := queue.claim(nodes[i], START, 7, f"node-{i}", LEASE):
            got[i] += [j.id for j in batch]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(nodes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for d in nodes:
        d.dispose()
    everyone = [job_id for ids in got for job_id in ids]
    assert len(everyone) == len(set(everyone)) == 400
    with db.read() as s:
        owners = dict(s.execute(select(Job.locked_by, Job.id)).all())
    assert len(owners) > 1 or db.dialect == "sqlite"  # PostgreSQL really shares the work


def test_concurrent_workers_run_each_job_exactly_once(db_url: str, db: Database) -> None:
    keys = add_many(db, 300)
    ran: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(j: ClaimedJob) -> None:
        with lock:
            ran[j.key] += 1

    clock = ManualClock(START)
    settings = JobSettings(batch_size=10, lease_seconds=LEASE)
    workers = [Worker(Database(db_url), clock, settings, f"node-{i}", {"test": handler})
               for i in range(3)]
    start = threading.Barrier(len(workers))

    def run(w: Worker) -> None:
        start.wait()
        w.run_due()

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for w in workers:
        w.db.dispose()
    assert ran == Counter({k: 1 for k in keys})
    assert queue.counts(db, START) == {"done": 300, "late": 0}


# -- leases ---------------------------------------------------------------------------------

def test_expired_lease_is_taken_over_by_another_node(db: Database) -> None:
    add(db, "k1", START)
    [first] = claim(db, node="dies")  # the node dies mid-job: no finish, no release
    assert claim(db, START + timedelta(seconds=LEASE - 1), node="b") == []
    later = START + timedelta(seconds=LEASE + 1)
    [second] = claim(db, later, node="b")
    assert (second.id, second.attempts) == (first.id, 2)
    assert job(db, "k1").locked_by == "b"

    # The first node wakes up late: its finish and retry no longer touch the job.
    queue.finish(db, [first], later)
    assert queue.retry(db, first, "late", later, SETTINGS) is None
    queue.release(db, [first], later)
    row = job(db, "k1")
    assert (row.state, row.locked_by, row.attempts) == ("running", "b", 2)
    queue.finish(db, [second], later)
    assert job(db, "k1").state == "done"


def test_expired_leases_are_claimed_before_new_work(db: Database) -> None:
    add(db, "old", START)
    claim(db, node="dies")
    add_many(db, 5, due=START + timedelta(seconds=LEASE))
    got = claim(db, START + timedelta(seconds=LEASE + 1), limit=1, node="b")
    assert [j.key for j in got] == ["old"]


def test_worker_takes_over_a_dead_nodes_job(db_url: str, db: Database) -> None:
    add(db, "k1", START)
    claim(db, node="dies")
    clock = ManualClock(START)
    ran: list[int] = []
    w = Worker(db, clock, SETTINGS, "b", {"test": lambda j: ran.append(j.attempts)})
    assert w.run_due() == 0
    clock.advance(seconds=LEASE + 1)
    assert w.run_due() == 1
    assert ran == [2] and job(db, "k1").state == "done"


# -- retries --------------------------------------------------------------------------------

def test_failures_retry_with_persisted_jittered_backoff(db: Database) -> None:
    add(db, "k1", START)
    clock = ManualClock(START)

    def broken(j: ClaimedJob) -> None:
        raise RuntimeError(f"boom {j.attempts}")

    w = Worker(db, clock, SETTINGS, "a", {"test": broken})
    # base 10 s, doubling, capped at 25 s; jitter in the upper half of each step
    for attempt, ceiling in [(1, 10), (2, 20), (3, 25)]:
        now = clock.now()
        assert w.run_due() == 1
        row = job(db, "k1")
        assert (row.state, row.attempts, row.last_error) == ("pending", attempt,
                                                             f"RuntimeError: boom {attempt}")
        assert row.lease_until is None and row.locked_by is None
        wait = (row.due_at - now).total_seconds()
        assert ceiling / 2 <= wait <= ceiling
        assert w.run_due() == 0  # not before its time
        clock.set(row.due_at)
    assert w.run_due() == 1  # the 4th attempt is the last (max_attempts=4)
    row = job(db, "k1")
    assert (row.state, row.attempts, row.last_error) == ("failed", 4, "RuntimeError: boom 4")
    clock.advance(hours=2)
    assert w.run_due() == 0


def test_backoff_is_jittered(db: Database) -> None:
    keys = add_many(db, 20)
    clock = ManualClock(START)
    w = Worker(db, clock, SETTINGS, "a", {"test": lambda j: 1 / 0})
    w.run_due()
    dues = {job(db, k).due_at for k in keys}
    assert len(dues) > 10  # not one thundering herd
    assert all(START + timedelta(seconds=5) <= d <= START + timedelta(seconds=10) for d in dues)


def test_retry_later_persists_its_delay(db: Database) -> None:
    add(db, "k1", START)
    add(db, "k2", START)
    clock = ManualClock(START)

    def busy(j: ClaimedJob) -> None:
        raise RetryLater("quota paused", delay=600 if j.key == "k1" else None)

    w = Worker(db, clock, SETTINGS, "a", {"test": busy})
    assert w.run_due() == 2
    k1, k2 = job(db, "k1"), job(db, "k2")
    assert (k1.state, k1.due_at, k1.last_error) == ("pending", START + timedelta(seconds=600),
                                                    "quota paused")
    assert START + timedelta(seconds=5) <= k2.due_at <= START + timedelta(seconds=10)
    # an explicit delay is "later", not a failure: it never runs out of attempts
    for _ in range(SETTINGS.max_attempts + 2):
        clock.set(job(db, "k1").due_at)
        w.run_due()
    assert job(db, "k1").state == "pending"
    assert job(db, "k2").state == "failed"


def test_give_up_and_unknown_kinds_fail_at_once(db: Database) -> None:
    add(db, "k1", START)
    add(db, "k2", START, kind="nobody-handles-this")

    def hopeless(j: ClaimedJob) -> None:
        raise GiveUp("400 bad request")

    Worker(db, ManualClock(START), SETTINGS, "a", {"test": hopeless}).run_due()
    assert (job(db, "k1").state, job(db, "k1").last_error) == ("failed", "400 bad request")
    assert job(db, "k2").state == "failed" and "no handler" in job(db, "k2").last_error


def test_a_failing_job_does_not_stop_the_others_in_its_batch(db: Database) -> None:
    keys = add_many(db, 5)
    ran: list[str] = []

    def handler(j: ClaimedJob) -> None:
        ran.append(j.key)
        if j.key == keys[1]:
            raise ValueError("bad payload")

    assert Worker(db, ManualClock(START), SETTINGS, "a", {"test": handler}).run_due() == 5
    assert ran == keys
    assert [job(db, k).state for k in keys] == ["done", "pending", "done", "done", "done"]


# -- release and shutdown -------------------------------------------------------------------

def test_release_hands_jobs_back(db: Database) -> None:
    keys = add_many(db, 3)
    got = claim(db, node="a")
    queue.release(db, got, START + timedelta(seconds=1))
    for key in keys:
        row = job(db, key)
        assert (row.state, row.attempts, row.locked_by, row.lease_until) == (
            "pending", 0, None, None)
    # due again at once, for anyone
    assert sorted(j.key for j in claim(db, START + timedelta(seconds=1), node="b")) == keys


def test_stopping_mid_batch_releases_the_rest(db: Database) -> None:
    keys = add_many(db, 5)
    clock = ManualClock(START)
    ran: list[str] = []
    w = Worker(db, clock, SETTINGS, "a")

    def handler(j: ClaimedJob) -> None:
        ran.append(j.key)
        if len(ran) == 2:
            w._stopping.set()  # what stop() does, seen from inside the batch

    w.register("test", handler)
    assert w.run_due() == 5  # claimed 5, ran 2, released 3 and did not claim them back
    assert ran == keys[:2]
    assert [job(db, k).state for k in keys] == ["done", "done", "pending", "pending", "pending"]
    assert job(db, keys[2]).attempts == 0


def test_a_batch_past_half_its_lease_hands_back_the_rest(db: Database) -> None:
    keys = add_many(db, 4)
    clock = ManualClock(START)
    ran: list[str] = []

    def slow(j: ClaimedJob) -> None:
        ran.append(j.key)
        clock.advance(seconds=LEASE / 4 + 1)

    w = Worker(db, clock, SETTINGS, "a", {"test": slow})
    # claims 4; after 2 jobs more than half the lease is gone: the rest goes back and is
    # claimed again at once with a fresh lease, so every job runs once and on time
    w.run_due()
    assert ran == keys
    assert [job(db, k).state for k in keys] == ["done"] * 4
    assert [job(db, k).attempts for k in keys] == [1, 1, 1, 1]


def test_claim_next_says_when_to_look_again(db: Database) -> None:
    add(db, "now", START)
    add(db, "soon", START + timedelta(seconds=30))
    got, look_again = queue.claim_next(db, START, 10, "a", LEASE)
    assert [j.key for j in got] == ["now"] and look_again == START + timedelta(seconds=30)
    add(db, "also-now", START)
    add(db, "and-this", START)
    got, look_again = queue.claim_next(db, START, 1, "a", LEASE)
    assert len(got) == 1 and look_again == START  # a full batch: more may be due at once


def test_a_row_locked_elsewhere_is_skipped_not_spun_on(db: Database) -> None:
    """PostgreSQL: a due row another transaction holds is skipped (SKIP LOCKED); the worker
    looks again shortly instead of spinning on it, and gets it once it is free."""
    if not db.is_postgres:
        pytest.skip("SQLite has no row locks: a writer holds the whole database")
    from syncd.jobs.worker import RECHECK_SECONDS

    add(db, "k1", START)
    ran: list[str] = []
    w = Worker(db, ManualClock(START), SETTINGS, "a", {"test": lambda j: ran.append(j.key)})
    with db.transaction() as s:
        s.execute(select(Job).where(Job.key == "k1").with_for_update())
        assert w._tick() == RECHECK_SECONDS
    assert ran == []
    assert w._tick() == 0.0 and ran == ["k1"]


# -- recurring jobs (ensure / reschedule) ----------------------------------------------------

def ensure(db: Database, key: str, due: datetime, now: datetime = START) -> None:
    with db.transaction() as s:
        queue.ensure(db, s, kind="test", key=key, due_at=due, payload={"k": key}, group="",
                     now=now)


def test_a_recurring_job_says_when_it_runs_next(db: Database) -> None:
    ensure(db, "pull:u1", START)
    clock = ManualClock(START)
    runs: list[int] = []

    def pull(j: ClaimedJob) -> datetime:
        runs.append(j.attempts)
        return clock.now() + timedelta(minutes=1)

    w = Worker(db, clock, SETTINGS, "a", {"test": pull})
    assert w.run_due() == 1
    row = job(db, "pull:u1")
    assert (row.state, row.due_at, row.attempts) == ("pending", START + timedelta(minutes=1), 0)
    clock.advance(minutes=1)
    assert w.run_due() == 1 and runs == [1, 1]


def test_ensure_keeps_the_earlier_time_and_reruns_a_running_job(db: Database) -> None:
    ensure(db, "pull:u1", START + timedelta(minutes=5))
    ensure(db, "pull:u1", START + timedelta(minutes=9))  # later: the earlier time stands
    assert job(db, "pull:u1").due_at == START + timedelta(minutes=5)
    ensure(db, "pull:u1", START + timedelta(minutes=1))  # sooner: it moves up
    assert job(db, "pull:u1").due_at == START + timedelta(minutes=1)

    later = START + timedelta(minutes=1)
    [running] = claim(db, later)
    ensure(db, "pull:u1", later)  # asked for again while it runs: once more when it ends
    queue.finish(db, [running], later + timedelta(seconds=2))
    row = job(db, "pull:u1")
    assert (row.state, row.due_at) == ("pending", later + timedelta(seconds=2))
    [again] = claim(db, later + timedelta(seconds=2))
    queue.finish(db, [again], later + timedelta(seconds=3))
    assert job(db, "pull:u1").state == "done"
    ensure(db, "pull:u1", later + timedelta(minutes=1))  # done: pending again
    assert (job(db, "pull:u1").state, job(db, "pull:u1").attempts) == ("pending", 0)


def test_a_handler_returning_something_else_is_simply_done(db: Database) -> None:
    add(db, "k1", START)
    w = Worker(db, ManualClock(START), SETTINGS, "a", {"test": lambda j: True})
    assert w.run_due() == 1 and job(db, "k1").state == "done"
