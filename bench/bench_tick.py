"""A scheduler tick stays flat from 10,000 to 1,000,000 stored tasks (SQLite).

A tick is what a worker does each time it looks at the queue: claim the due jobs and learn
when the next one falls due (`queue.claim_next`: one transaction). The database holds N tasks
with their jobs as a long-running node accumulates them: per task a `task_due` and a
`task_overdue` timer (and for one task in four a delivery); 98 % of the tasks are past (all
their jobs done), 2 % are ahead (their timers pending over the next 30 days). On top, 100 jobs are due now: each timed
tick claims them (then they are handed back, untimed, for the next round).

The partial indexes on pending due times and running leases keep the tick independent of N.
The baseline is the same tick with those indexes dropped (what a plain table scan costs).
Rows are written with executemany, 100,000 tasks per transaction.

    .venv/bin/python -m bench.bench_tick [--sizes 10000,100000,1000000] [--rounds 30]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from bench import row, show
from syncd.jobs import queue
from syncd.store.db import Database

NAME = "tick"
USERS = 1000
DUE_NOW = 100
INDEXES = {  # as the migrations create them
    "ix_jobs_claim": "CREATE INDEX ix_jobs_claim ON jobs (due_at) WHERE state = 'pending'",
    "ix_jobs_lease": "CREATE INDEX ix_jobs_lease ON jobs (lease_until) WHERE state = 'running'",
}


def ts(t: datetime) -> str:
    """The text SQLAlchemy stores a UTCDateTime as on SQLite (naive UTC)."""
    return t.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def fill(db: Database, start: int, stop: int, now: datetime, rng: random.Random) -> None:
    """Tasks start..stop-1 and their jobs, in one transaction, with executemany."""
    tasks, jobs = [], []
    base = now.astimezone(UTC).replace(tzinfo=None)  # naive UTC: fast to format
    created = ts(now - timedelta(days=400))
    lead = timedelta(minutes=5)
    for n in range(start, stop):
        tid, uid = f"t{n:07d}", f"u{n % USERS}"  # ids in key order: B-trees grow at the end
        ahead = rng.random() < 0.02
        due = base + timedelta(days=rng.uniform(1, 30) if ahead else -rng.uniform(1, 365))
        deadline = due.isoformat() + "+00:00"
        due_s, fire_s = due.isoformat(" ", "microseconds"), (due - lead).isoformat(
            " ", "microseconds")
        tasks.append((tid, f"Task {n}", "call", uid, uid, due_s, created, created))
        state = "pending" if ahead else "done"
        attempts = 0 if ahead else 1
        group = f"task:{tid}"
        for kind, at in (("task_due", fire_s), ("task_overdue", due_s)):
            payload = (f'{{"kind": "{kind}", "user_id": "{uid}", "task_id": "{tid}", '
                       f'"occurrence": "{deadline}"}}')
            jobs.append(("timer", f"timer:{kind}:{tid}:{uid}:{deadline}", group, payload, state,
                         at, attempts, created, created))
        if n % 4 == 0:  # a delivery for some: the done rows outnumber the pending ones anyway
            jobs.append(("deliver", f"deliver:x{n:07d}", group, f'{{"delivery_id": {n}}}',
                         "done", fire_s, 1, created, created))
    # Setup only, on its own connection: a big page cache for the index updates and no syncs.
    # The timed ticks run through the node's Database (WAL, synchronous=NORMAL).
    conn = sqlite3.connect(db.url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        conn.execute("PRAGMA cache_size=-262144")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO tasks (id, text, type, author_id, responsible_id, due_at, "
            "assignment_seq, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)", tasks)
        conn.executemany(
            "INSERT INTO jobs (kind, key, group_key, payload, state, due_at, attempts, rerun, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)", jobs)
        conn.execute("COMMIT")
    finally:
        conn.close()


def add_due_now(db: Database, now: datetime) -> None:
    rows = [("deliver", f"deliver:now{i}", "", f'{{"delivery_id": {i}}}', "pending",
             ts(now - timedelta(seconds=i)), 0, ts(now), ts(now)) for i in range(DUE_NOW)]
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO jobs (kind, key, group_key, payload, state, due_at, attempts, rerun, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)", rows)


def time_ticks(db: Database, now: datetime, rounds: int) -> tuple[float, float]:
    """One tick (claim the due jobs, peek at the next due time): median CPU seconds and median
    wall seconds. SQLite runs in this thread, so CPU time is the work itself, unmoved by other
    processes on a busy machine; wall time also counts waiting for a core."""
    cpu, wall = [], []
    for _ in range(rounds):
        c0, w0 = time.thread_time(), time.perf_counter()
        claimed, _next = queue.claim_next(db, now, 200, "bench", 60)
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
        assert len(claimed) == DUE_NOW, len(claimed)
        queue.release(db, claimed, now)
    return statistics.median(cpu), statistics.median(wall)


def run(sizes: list[int], rounds: int = 30, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    indexed: dict[int, tuple[float, float]] = {}
    scanned: dict[int, tuple[float, float]] = {}
    fill_seconds: dict[int, float] = {}
    fill_cpu: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-tick-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'syncd.db'}")
        db.upgrade()
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO users (id, name, email, timezone, locale, all_day_notify_at, "
                "preferences, created_at, updated_at) VALUES (?, '', '', 'UTC', 'en', '09:00', "
                "'{}', ?, ?)", [(f"u{i}", ts(now), ts(now)) for i in range(USERS)])
        add_due_now(db, now)
        stored = 0
        for size in sorted(sizes):
            t0, c0 = time.perf_counter(), time.process_time()
            for lo in range(stored, size, 100_000):  # bounded memory per step
                fill(db, lo, min(size, lo + 100_000), now, rng)
            fill_seconds[size] = time.perf_counter() - t0
            fill_cpu[size] = time.process_time() - c0  # SQLite runs in this process
            stored = size
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
            time_ticks(db, now, 3)  # warm the page cache and the statement cache
            indexed[size] = time_ticks(db, now, rounds)
            with db.engine.begin() as conn:
                for name in INDEXES:
                    conn.exec_driver_sql(f"DROP INDEX {name}")
            scanned[size] = time_ticks(db, now, max(3, rounds // 5))
            with db.engine.begin() as conn:
                for ddl in INDEXES.values():
                    conn.exec_driver_sql(ddl)
        with db.read() as s:
            jobs = s.execute(text("SELECT count(*) FROM jobs")).scalar_one()
        db.dispose()

    lo, hi = min(sizes), max(sizes)
    rows = []
    for size in sorted(sizes):
        rows.append(row(NAME, f"tick at {size:,} tasks (CPU)", indexed[size][0] * 1000, "ms",
                        baseline=scanned[size][0] * 1000))
    for size in sorted(sizes):
        rows.append(row(NAME, f"tick at {size:,} tasks (wall)", indexed[size][1] * 1000, "ms",
                        baseline=scanned[size][1] * 1000))
    flat = indexed[hi][0] / indexed[lo][0]
    rows.append(row(NAME, f"tick CPU ratio {hi:,} / {lo:,} tasks", flat, "x",
                    baseline=scanned[hi][0] / scanned[lo][0], target="<= 2 (flat)",
                    ok=flat <= 2.0))
    added = hi - (sorted(sizes)[-2] if len(sizes) > 1 else 0)
    rows.append(row(NAME, f"insert {added:,} tasks + their jobs ({jobs:,} jobs in all)",
                    fill_seconds[hi], "s", target="< 60 s", ok=fill_seconds[hi] < 60))
    rows.append(row(NAME, "  the same, CPU time (what a busy machine does not stretch)",
                    fill_cpu[hi], "s"))
    return rows


def main() -> list[dict]:
    return run([10_000, 100_000, 1_000_000])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    show(run([int(s) for s in args.sizes.split(",")], args.rounds))
