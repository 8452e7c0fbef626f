"""SIGTERM with many jobs in flight: `syncd run` exits promptly, leaves no job `running`, loses
none, and a restarted node finishes them all with exactly one center entry each.

The timers are made through the API (in-process, `TestClient` on the same app `syncd run`
serves; over HTTP to a subprocess each PUT costs more) before the daemon starts, so that it
starts with a full backlog: both workers claim whole batches at once (up to `jobs.batch_size`),
and SIGTERM lands while most of them are claimed but not yet run. SYNCD_OPS_TIMERS sets the
count: the default, 1,000, is enough backlog that SIGTERM finds most of it still queued however
fast the machine; 2,000 (the issue's figure) passes too.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from syncd.api.app import create_app
from syncd.daemon import build
from syncd.settings import Settings
from syncd.store.db import Database
from syncd.store.tables import Entry, Job
from tests.ops.conftest import API_KEY, Daemon, base_settings

TIMERS = int(os.environ.get("SYNCD_OPS_TIMERS", "1000"))
CENTER_ONLY = {ch: {"task_due": False} for ch in ("email", "browser", "mobile")}


def make_due_timers(settings: Settings, n: int) -> None:
    """n tasks due within `notify.due_soon_minutes`: each one's `task_due` timer is due at
    once (N4), and stays worth sending (N12) until the deadline, an hour away."""
    node = build(settings)
    try:
        with TestClient(create_app(node), headers={"Authorization": f"Bearer {API_KEY}"}) as c:
            # Self-assigned and center-only: each timer makes one entry and no delivery job,
            # so the test measures the queue, not the senders.
            r = c.put("/v1/users/ann", json={"name": "Ann", "channels": CENTER_ONLY})
            assert r.status_code == 200, r.text
            due = (datetime.now(UTC) + timedelta(minutes=59)).isoformat()
            for i in range(n):
                r = c.put(f"/v1/tasks/t{i}", json={"actor_id": "ann", "responsible_id": "ann",
                                                   "text": f"task {i}", "due_at": due})
                assert r.status_code == 200, r.text
    finally:
        node.db.dispose()


def due_timers(db: Database) -> dict[str, str]:
    """task id → state of its task_due timer job."""
    with db.read() as s:
        rows = s.execute(select(Job.payload, Job.state).where(Job.kind == "timer")).all()
    return {p["task_id"]: state for p, state in rows if p["kind"] == "task_due"}


def due_entries(db: Database) -> dict[str, int]:
    with db.read() as s:
        rows = s.execute(select(Entry.task_id, func.count()).where(Entry.kind == "task_due")
                         .group_by(Entry.task_id)).all()
    return dict(rows)


def running(db: Database) -> int:
    with db.read() as s:
        return s.execute(select(func.count()).select_from(Job)
                         .where(Job.state == "running")).scalar_one()


@pytest.mark.slow
def test_sigterm_drains_and_a_restart_finishes_everything(tmp_path: Path, db_url: str,
                                                          daemons: list[Daemon]) -> None:
    settings = base_settings(tmp_path, db_url)
    settings["jobs"]["batch_size"] = 50  # several batches per worker
    settings["notify"] = {"due_soon_minutes": 60}  # however slow the machine, no deadline passes
    make_due_timers(Settings(**settings), TIMERS)
    db = Database(Settings(**settings).database_url)
    try:
        assert set(due_timers(db).values()) == {"pending"} and len(due_timers(db)) == TIMERS

        d = Daemon.spawn(tmp_path, settings)
        daemons.append(d)
        d.wait_serving()
        # Stop the workers as soon as they are going (batches claimed, the first ones run).
        deadline = time.monotonic() + 60
        while "done" not in due_timers(db).values():
            assert time.monotonic() < deadline and d.proc.poll() is None, d.output
            time.sleep(0.02)
        rc, took = d.terminate()
        assert rc == 0, d.output
        assert took < 10, f"took {took:.1f}s to stop"  # http.stop_timeout_seconds: 10

        states = due_timers(db)
        assert running(db) == 0
        assert len(states) == TIMERS  # none lost
        assert set(states.values()) <= {"done", "pending"}
        left = sum(s == "pending" for s in states.values())
        assert left > 0, "the backlog was gone before SIGTERM: nothing was in flight"
        entries = due_entries(db)
        assert all(entries.get(t) == 1 for t, s in states.items() if s == "done")
        assert all(n == 1 for n in entries.values())

        # A restarted node picks up what was handed back and finishes it, once each.
        d2 = Daemon.spawn(tmp_path, settings)
        daemons.append(d2)
        d2.wait_serving()
        deadline = time.monotonic() + 120
        while any(s != "done" for s in due_timers(db).values()):
            assert time.monotonic() < deadline and d2.proc.poll() is None, d2.output
            time.sleep(0.1)
        rc, _ = d2.terminate()
        assert rc == 0, d2.output
        assert running(db) == 0
        entries = due_entries(db)
        assert len(entries) == TIMERS and set(entries.values()) == {1}
    finally:
        db.dispose()
