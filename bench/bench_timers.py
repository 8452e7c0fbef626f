"""10,000 `task_due` timers due within the same minute fire on time (SQLite, real clock).

Setup: 100 users, each responsible for 100 open timed tasks they set themselves, their
deadlines spread at random over one minute starting 5 min + S seconds from now (S: however
long the setup takes, measured on a warm-up batch), so their `task_due` timers (N4) fall due
over one minute starting S from now. The tasks and their timers are written in one
transaction with the rules' own decisions (`rules.on_change` → `Center.set_timer`), the state
10,000 upserts would leave less their `task_assigned` center entries.

Then a node on the real clock (SystemClock), with its worker threads as `syncd run` starts them,
fires them: each timer makes a center entry and its three delivery rows. These users have no
browser subscribed to push and no phone, so the browser and mobile rows are recorded skipped
at once (no job); each email is a job due after the N5 grace (60 s), so the first timers'
emails run while the later timers fire (no SMTP server is configured: each is settled as
skipped, the bookkeeping of a send without the SMTP conversation). Lag = entry `created_at` −
the instant the timer was meant to fire (deadline − 5 min). Target: p99 ≤ 1 s.

    .venv/bin/python -m bench.bench_timers [--tasks 10000] [--window 60]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bench import percentile, row, settings, show
from syncd.clock import ManualClock, SystemClock
from syncd.daemon import Node, build
from syncd.domain import rules
from syncd.notify.center import Changes, recipient, task_value
from syncd.store.tables import Entry, Job, Task, User

NAME = "timers"
USERS = 100


def plant(node: Node, tasks: list[tuple[str, str, datetime]], now: datetime) -> None:
    """Write open timed tasks and their timers as a first upsert of each would (one transaction)."""
    svc = node.service
    rows = [{"id": tid, "text": f"Call back #{tid}", "type": "call", "author_id": uid,
                 "responsible_id": uid, "due_at": due, "assignment_seq": 1, "created_at": now,
                 "updated_at": now} for tid, uid, due in tasks]
    changes = Changes()
    with node.db.transaction() as s:
        s.execute(Task.__table__.insert(), rows)
        users = {u.id: recipient(u) for u in s.execute(select(User)).scalars()}
        for r in rows:
            value = task_value(Task(**r))
            decision = rules.on_change(None, value, r["author_id"], users[r["responsible_id"]],
                                       now, svc.policy)
            for timer in decision.timers:
                svc.center.set_timer(s, timer, now, changes)


def count_due_entries(node: Node) -> int:
    with node.db.read() as s:
        return s.execute(select(func.count()).select_from(Entry)
                         .where(Entry.kind == "task_due")).scalar_one()


def deliveries_left(node: Node, until: datetime) -> int:
    with node.db.read() as s:
        return s.execute(select(func.count()).select_from(Job).where(
            Job.kind == "deliver", Job.due_at <= until,
            Job.state.in_(("pending", "running")))).scalar_one()


def run(n_tasks: int = 10_000, window: float = 60.0, threads: int = 2, seed: int = 1
        ) -> list[dict]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="syncd-bench-timers-") as tmp:
        cfg = settings(Path(tmp))
        lead = timedelta(minutes=cfg.notify.due_soon_minutes)
        setup = build(cfg, ManualClock(datetime.now(UTC)))
        for u in range(USERS):
            setup.service.put_user(f"u{u:03d}", {"name": f"User {u}", "email": f"u{u}@example.com"})

        # Warm-up: 2 x 300 tasks due tomorrow (pending timers, not due) time the setup; the
        # second batch, with the statement caches warm, sets the pace.
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        for batch in range(2):
            t0 = time.perf_counter()
            plant(setup, [(f"w{batch}-{i}", f"u{i % USERS:03d}", tomorrow) for i in range(300)],
                  setup.clock.now())
        per_task = (time.perf_counter() - t0) / 300
        start = datetime.now(UTC) + timedelta(seconds=5 + 1.5 * per_task * n_tasks)
        offsets = [rng.uniform(0, window) for _ in range(n_tasks)]
        tasks = [(f"t{i}", f"u{i % USERS:03d}", start + lead + timedelta(seconds=off))
                 for i, off in enumerate(offsets)]
        setup.clock.set(datetime.now(UTC))
        plant(setup, tasks, setup.clock.now())
        setup.db.dispose()
        slack = (start - datetime.now(UTC)).total_seconds()

        node = build(cfg, SystemClock(), migrate=False)
        node.worker.start(threads)  # `syncd run` starts 2
        try:
            time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()))
            cpu0, wall0 = time.process_time(), time.monotonic()
            give_up = time.monotonic() + window + 30  # keeps the run near 2 minutes
            while count_due_entries(node) < n_tasks and time.monotonic() < give_up:
                time.sleep(0.5)
            cpu_timers, wall_timers = time.process_time() - cpu0, time.monotonic() - wall0
            window_end = start + timedelta(seconds=window + 1)
            while deliveries_left(node, window_end) and time.monotonic() < give_up:
                time.sleep(0.5)
        finally:
            stopped_at = datetime.now(UTC)
            node.worker.stop()

        with node.db.read() as s:
            fired = s.execute(select(Entry.created_at, Task.due_at).join(
                Task, Task.id == Entry.task_id).where(Entry.kind == "task_due")).all()
            unfired = s.execute(select(Task.due_at).where(
                Task.id.like("t%"), Task.id.not_in(select(Entry.task_id).where(
                    Entry.kind == "task_due")))).scalars().all()
            delivered = s.execute(select(Job.updated_at, Job.due_at).where(
                Job.kind == "deliver", Job.state == "done", Job.due_at <= window_end)).all()
            finished = s.execute(select(Job.updated_at).where(Job.state == "done")).scalars().all()
        node.db.dispose()

    fired_lags = [(created - (due - lead)).total_seconds() for created, due in fired]
    # Timers that had not fired when the run gave up count with the lag they had reached then
    # (a lower bound), so a backlog cannot flatter the percentiles.
    lags = fired_lags + [(stopped_at - (due - lead)).total_seconds() for due in unfired]
    # a delivery job's updated_at is when its batch was marked done: an upper bound on its lag
    delivery_lags = [(done - due).total_seconds() for done, due in delivered]
    first = min(c for c, _ in fired) if fired else None
    last = max(c for c, _ in fired) if fired else None
    span = (last - first).total_seconds() if fired else 0.0
    jobs_run = sum(1 for t in finished if first <= t <= last) if fired else 0
    p99 = percentile(lags, 99) if lags else float("inf")
    rows = [
        row(NAME, f"timers fired (of {n_tasks})", float(len(fired_lags)), "timers",
            target=f"= {n_tasks}", ok=len(fired_lags) == n_tasks),
        row(NAME, "task_due lag p50", percentile(lags, 50) if lags else float("nan"), "s"),
        row(NAME, "task_due lag p95", percentile(lags, 95) if lags else float("nan"), "s"),
        row(NAME, "task_due lag p99", p99, "s", target="<= 1 s", ok=p99 <= 1.0),
        row(NAME, "task_due lag max", max(lags) if lags else float("nan"), "s"),
        row(NAME, "timers fired per second (over the minute)",
            len(fired_lags) / span if span else 0.0, "/s"),
        row(NAME, "jobs run per second (timers + emails)", jobs_run / span if span else 0.0,
            "/s"),
        row(NAME, "CPU per task_due incl. its delivery rows",
            1000 * cpu_timers / max(1, len(fired_lags)), "ms"),
        row(NAME, "CPU used while firing (100 % = one core)", 100 * cpu_timers / wall_timers,
            "%"),
        # One process, one interpreter lock: about one core's worth of Python at most.
        row(NAME, "sustainable task_due/s on one core (1 s / CPU each)",
            len(fired_lags) / cpu_timers if cpu_timers else 0.0, "/s",
            target=f">= {n_tasks / window:.0f} (arrival rate)",
            ok=cpu_timers > 0 and len(fired_lags) / cpu_timers >= n_tasks / window),
        row(NAME, "email job lag p99 (those due within the minute)",
            percentile(delivery_lags, 99) if delivery_lags else float("nan"), "s"),
        row(NAME, "setup slack before the first timer", slack, "s",
            target=">= 0", ok=slack >= 0),
    ]
    return rows


def main() -> list[dict]:
    return run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2, help="worker threads")
    args = parser.parse_args()
    show(run(args.tasks, args.window, args.threads))
