"""Is this node healthy? One answer for `GET /healthz` and for the systemd watchdog.

A health check is a function `(node, now) -> Check`. `CHECKS` lists them in order; add one by
appending to it (or pass your own list to `health()`). A check that raises counts as failed.
A failed check with `critical=False` is reported but does not make the node unhealthy: a user
whose Google sync fails is that user's problem, not a reason to restart or unroute the node.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text

from syncd.store.tables import Job

if TYPE_CHECKING:
    from syncd.daemon import Node

log = logging.getLogger(__name__)


@dataclass
class Check:
    name: str
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)
    critical: bool = True


HealthCheck = Callable[["Node", datetime], Check]


def stall_seconds(node: Node) -> float:
    """Workers idle at most `jobs.max_sleep_seconds` between loops, and a job that takes longer
    than its lease is taken over elsewhere: no progress for longer than both means stalled."""
    jobs = node.settings.jobs
    return max(float(jobs.lease_seconds), 2 * jobs.max_sleep_seconds)


def check_database(node: Node, now: datetime) -> Check:
    with node.db.read() as s:
        s.execute(text("SELECT 1"))
    return Check("database", True, {"dialect": node.db.dialect})


def check_workers(node: Node, now: datetime) -> Check:
    worker = node.worker
    threads = len(getattr(worker, "_threads", ()))
    last = worker.last_progress_at
    age = None if last is None else max(0.0, (now - last).total_seconds())
    limit = stall_seconds(node)
    ok = worker.alive and age is not None and age <= limit
    return Check("workers", ok, {"alive": worker.alive, "threads": threads,
                                 "last_progress_seconds": _round(age),
                                 "stalled_after_seconds": limit})


def oldest_overdue_seconds(node: Node, now: datetime) -> float:
    """How late the most overdue pending job is (0 if none is due). One index probe."""
    with node.db.read() as s:
        due = s.execute(select(Job.due_at).where(Job.state == "pending", Job.due_at <= now)
                        .order_by(Job.due_at).limit(1)).scalar()
    return max(0.0, (now - due).total_seconds()) if due is not None else 0.0


def check_jobs(node: Node, now: datetime) -> Check:
    late = oldest_overdue_seconds(node, now)
    limit = node.settings.jobs.health_max_lateness_seconds
    return Check("jobs", not limit or late <= limit,
                 {"oldest_overdue_seconds": _round(late), "max_lateness_seconds": limit})


def check_calendar_sync(node: Node, now: datetime) -> Check:
    failing = node.mirror.failing_users() if node.mirror is not None else []
    return Check("calendar_sync", not failing, {"failing_users": failing}, critical=False)


CHECKS: list[HealthCheck] = [check_database, check_workers, check_jobs, check_calendar_sync]


def run_check(check: HealthCheck, node: Node, now: datetime) -> Check:
    try:
        return check(node, now)
    except Exception as exc:  # noqa: BLE001 (a failing check is a result, not a crash)
        name = getattr(check, "__name__", "check").removeprefix("check_")
        log.warning("health check failed", extra={"check": name, "error": str(exc)})
        # /healthz is unauthenticated: the class name only, the details are in the log.
        return Check(name, False, {"error": type(exc).__name__})


def health(node: Node, now: datetime | None = None,
           checks: list[HealthCheck] | None = None) -> tuple[bool, dict[str, Any]]:
    now = now or node.clock.now()
    results = [run_check(c, node, now) for c in (CHECKS if checks is None else checks)]
    healthy = all(r.ok for r in results if r.critical)
    body = {
        "status": "ok" if healthy else "unhealthy",
        "node": node.name,
        "workers_alive": node.worker.alive,
        "checks": {r.name: {"ok": r.ok, **r.detail} for r in results},
    }
    return healthy, body


def workers_healthy(node: Node) -> bool:
    """The watchdog's question: only the workers (a briefly unreachable database must not get
    the node killed; the worker loop survives that on its own)."""
    return run_check(check_workers, node, node.clock.now()).ok


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
