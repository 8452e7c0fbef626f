"""GET /healthz (200 healthy, 503 not, and why) and GET /metrics (Prometheus text)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from syncd import health
from syncd.api.app import create_app
from syncd.clock import ManualClock
from syncd.daemon import Node, build
from syncd.jobs import queue
from tests.conftest import START, Api, make_settings


@pytest.fixture
def running(api: Api) -> Iterator[Api]:
    """The api fixture's node with its worker thread running, as under `syncd run`."""
    api.node.worker.start(1)
    yield api
    api.node.worker.stop(5)


def metrics(api: Api) -> dict[str, float]:
    r = api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


# -- /healthz --------------------------------------------------------------------------------

def test_healthy_node(running: Api) -> None:
    r = running.client.get("/healthz")  # no credentials: load balancers call it
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["status"] == "ok" and body["workers_alive"] is True
    checks = body["checks"]
    assert checks["database"] == {"ok": True, "dialect": "sqlite"}
    assert checks["workers"]["ok"] and checks["workers"]["threads"] == 1
    assert checks["jobs"] == {"ok": True, "oldest_overdue_seconds": 0.0,
                              "max_lateness_seconds": 600.0}
    assert checks["calendar_sync"] == {"ok": True, "failing_users": []}
    assert r.headers["cache-control"] == "no-store"


def test_workers_not_running_is_unhealthy(api: Api) -> None:
    r = api.client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "unhealthy"
    assert r.json()["checks"]["workers"]["ok"] is False
    assert r.json()["checks"]["workers"]["alive"] is False


def test_stalled_workers_are_unhealthy(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker thread stuck in a handler: alive, but its loop never comes round again.
    stuck, entered = threading.Event(), threading.Event()

    def hang() -> float:
        entered.set()
        stuck.wait(30)
        return 0.0

    monkeypatch.setattr(api.node.worker, "_tick", hang)
    api.node.worker.start(1)
    try:
        assert entered.wait(5)
        assert api.client.get("/healthz").status_code == 200
        assert health.workers_healthy(api.node) is True
        api.clock.advance(seconds=api.node.settings.jobs.lease_seconds + 1)
        r = api.client.get("/healthz")
        assert r.status_code == 503
        w = r.json()["checks"]["workers"]
        assert w["ok"] is False and w["alive"] is True
        assert w["last_progress_seconds"] == 61.0 and w["stalled_after_seconds"] == 60.0
        assert health.workers_healthy(api.node) is False  # the watchdog stops pinging
    finally:
        stuck.set()
        api.node.worker.stop(5)


def test_a_long_batch_of_jobs_is_progress(api: Api) -> None:
    # After an outage one batch can keep a loop busy for a long time; each job is progress.
    def slow(job: object) -> None:
        api.clock.advance(seconds=25)

    api.node.worker.register("slow", slow)
    with api.node.db.transaction() as s:
        for n in range(4):
            queue.enqueue(api.node.db, s, kind="slow", key=f"slow-{n}", due_at=START,
                          payload={}, group="", now=START)
    api.node.worker.run_due()
    assert api.clock.now() - START == timedelta(seconds=100)  # longer than the stall limit
    w = api.client.get("/healthz").json()["checks"]["workers"]
    assert w["last_progress_seconds"] == 0.0


def test_database_unreachable_is_unhealthy(running: Api, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    def down(*_a: object, **_k: object):
        raise OperationalError("SELECT 1", {}, Exception("password=hunter2 refused"))

    monkeypatch.setattr(running.node.db, "read", down)
    r = running.client.get("/healthz")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["database"] == {"ok": False, "error": "OperationalError"}
    assert "hunter2" not in r.text  # unauthenticated: the class name only
    assert checks["workers"]["ok"] is True  # the watchdog's question is unaffected
    assert health.workers_healthy(running.node) is True


def test_lateness_is_reported_below_the_limit(api: Api) -> None:
    api.user("ann")
    api.task("t1", "ann", text="Call", responsible_id="ann", due_at="2026-03-02T10:00:00+00:00")
    api.clock.advance(minutes=55, seconds=30)  # task_due was due at 09:55
    jobs = api.client.get("/healthz").json()["checks"]["jobs"]
    assert jobs == {"ok": True, "oldest_overdue_seconds": 30.0, "max_lateness_seconds": 600.0}
    api.clock.advance(minutes=10)
    jobs = api.client.get("/healthz").json()["checks"]["jobs"]
    assert jobs["ok"] is False and jobs["oldest_overdue_seconds"] == 630.0
    assert health.health(api.node, checks=[health.check_jobs])[0] is False
    api.node.worker.run_due()
    assert api.client.get("/healthz").json()["checks"]["jobs"]["oldest_overdue_seconds"] == 0


def test_checks_can_be_added(running: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def check_smtp(node: Node, now: object) -> health.Check:
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(health, "CHECKS", [*health.CHECKS, check_smtp])
    r = running.client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["checks"]["smtp"] == {"ok": False, "error": "ConnectionRefusedError"}


# -- /metrics --------------------------------------------------------------------------------

def test_job_figures_are_read_at_scrape_time(api: Api) -> None:
    m = metrics(api)
    assert m['syncd_jobs{state="pending"}'] == 0 and m["syncd_jobs_due"] == 0
    assert m["syncd_database_up"] == 1
    api.user("ann")
    api.user("bob")
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at="2026-03-02T12:00:00+00:00")
    m = metrics(api)
    pending = m['syncd_jobs{state="pending"}']
    assert pending >= 2  # deliveries of task_assigned, task_due and task_overdue timers
    assert m["syncd_jobs_due"] >= 1  # the deliveries are due at once
    assert m["syncd_jobs_failed"] == 0
    api.clock.advance(seconds=42)
    assert metrics(api)["syncd_jobs_late_seconds"] == 42.0
    api.node.worker.run_due()
    m = metrics(api)
    assert m["syncd_jobs_due"] == 0 and m["syncd_jobs_late_seconds"] == 0
    assert m['syncd_jobs{state="done"}'] >= 1
    assert m["syncd_workers_alive"] == 0 and m["syncd_workers_healthy"] == 0


def test_notification_lag_is_observed_when_timers_fire(api: Api) -> None:
    api.user("ann")
    api.task("t1", "ann", text="Call", responsible_id="ann", due_at="2026-03-02T10:00:00+00:00")
    api.clock.advance(minutes=55, seconds=3)  # task_due meant for 09:55:00, fired at 09:55:03
    api.node.worker.run_due()
    m = metrics(api)
    assert m["syncd_notification_lag_seconds_count"] == 1
    assert m["syncd_notification_lag_seconds_sum"] == pytest.approx(3.0)
    assert m['syncd_notification_lag_seconds_bucket{le="2.0"}'] == 0
    assert m['syncd_notification_lag_seconds_bucket{le="5.0"}'] == 1


def test_each_node_has_its_own_registry(tmp_path: Path) -> None:
    clock = ManualClock(START)
    a = build(make_settings(tmp_path / "a"), clock)
    b = build(make_settings(tmp_path / "b"), clock)
    try:
        a.metrics.google_api_call("events.insert", 200)
        with TestClient(create_app(b)) as client:
            text = client.get("/metrics").text
        assert 'syncd_google_api_calls_total{method="events.insert",status="200"}' not in text
        assert "syncd_jobs_due" in text
    finally:
        a.db.dispose()
        b.db.dispose()


def test_metrics_survive_an_unreachable_database(api: Api, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    def down(*_a: object, **_k: object):
        raise OperationalError("SELECT 1", {}, Exception("refused"))

    monkeypatch.setattr(api.node.db, "read", down)
    m = metrics(api)
    assert m["syncd_database_up"] == 0
    assert "syncd_jobs_due" not in m
