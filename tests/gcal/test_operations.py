"""What an operator sees of the mirror: /healthz names the users whose Google sync is not
working, and why, without failing the node; /metrics counts Google calls and the sync lag."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncd import health
from syncd.emulator.server import EmulatorServer
from tests.gcal.conftest import Mirror, add_people, running_mirror
from tests.gcal.test_rules_g import DUE, setup_pair


@pytest.fixture
def mirror(emulator: EmulatorServer, tmp_path: Path, db_url: str) -> Iterator[Mirror]:
    """On SQLite and on PostgreSQL: what an operator sees comes from queries."""
    with running_mirror(emulator, tmp_path, db_url) as m:
        yield m


def calendar_sync(m: Mirror) -> dict:
    r = m.client.get("/healthz")  # unauthenticated, as a load balancer calls it
    return r.json()["checks"]["calendar_sync"]


def problems(m: Mirror) -> dict[str, str]:
    return {u["user_id"]: u["problem"] for u in calendar_sync(m)["failing_users"]}


def test_failing_calendar_sync_is_reported_per_user_and_clears_when_it_recovers(mirror: Mirror):
    setup_pair(mirror)
    add_people(mirror, "cid", "dan", "eve")
    for name in ("cid", "dan", "eve"):
        mirror.connect(name)
    assert calendar_sync(mirror) == {"ok": True, "failing_users": []}

    for name in ("bob", "eve"):  # Google fails every write to their calendars
        local_part = mirror.calendar(name)["calendar_id"].split("@")[0]
        mirror.emu.faults.script(count=1000, path=local_part, status=503)
    mirror.emu.faults.set_quota_exceeded(True, ["cid@example.com"])
    mirror.emu.control.revoke("dan@example.com")
    mirror.emu.control.expire_access_tokens("dan@example.com")
    for task_id, who in (("t5", "bob"), ("t6", "cid"), ("t7", "dan"), ("t8", "eve")):
        mirror.task(task_id, "ann", text="During the outage", responsible_id=who, due_at=DUE)
    mirror.advance(seconds=5)  # past the outbox's coalescing delay
    mirror.sync()
    assert problems(mirror) == {"bob": "retrying", "cid": "paused", "dan": "needs_reconnect",
                                "eve": "retrying"}
    assert all(u["last_error_at"] == mirror.clock.now().isoformat()
               for u in calendar_sync(mirror)["failing_users"])
    assert calendar_sync(mirror)["ok"] is False
    # One user's Google trouble is theirs, not a reason to restart or unroute the node.
    assert health.health(mirror.node, checks=[health.check_database,
                                              health.check_calendar_sync])[0] is True
    body = mirror.client.get("/healthz").text
    assert "503" not in body and "Service Unavailable" not in body  # no Google detail leaks

    mirror.emu.faults.clear()  # Google is back, quota and all
    for _ in range(8):
        mirror.advance(minutes=10)
    mirror.sync()
    assert problems(mirror) == {"dan": "needs_reconnect"}  # until dan reconnects
    mirror.connect("dan")
    mirror.sync()
    assert calendar_sync(mirror) == {"ok": True, "failing_users": []}


def metrics(m: Mirror) -> dict[str, float]:
    text = m.client.get("/metrics").text
    return {f"{s.name}{{{','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))}}}": s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_google_calls_by_method_and_status_and_the_sync_lag(mirror: Mirror):
    setup_pair(mirror)  # a calendar made, an event inserted, a pull
    m = metrics(mirror)
    assert m["syncd_google_api_calls_total{method=calendars.insert,status=200}"] == 1
    assert m["syncd_google_api_calls_total{method=events.insert,status=200}"] == 1
    assert m["syncd_google_api_calls_total{method=events.list,status=200}"] >= 1
    assert m["syncd_google_sync_lag_seconds_count{}"] == 1  # the insert

    mirror.emu.faults.script(count=1, method="events.patch", status=503)
    mirror.task("t1", "ann", text="Moved on")
    mirror.clock.advance(seconds=7)  # the push runs 7 s after the change
    mirror.sync()
    m = metrics(mirror)
    assert m["syncd_google_api_calls_total{method=events.patch,status=503}"] == 1
    assert m["syncd_google_sync_lag_seconds_count{}"] == 1  # a failed write is no sync
    mirror.advance(minutes=5)  # its backoff
    m = metrics(mirror)
    assert m["syncd_google_api_calls_total{method=events.patch,status=200}"] == 1
    assert m["syncd_google_sync_lag_seconds_count{}"] == 2
    assert m["syncd_google_sync_lag_seconds_bucket{le=5.0}"] == 1  # the first, at once
    assert m["syncd_google_sync_lag_seconds_sum{}"] >= 7 + 60

    phone = mirror.google("bob")  # done in Google (G10): the pull applies it to the task
    [event] = mirror.events("bob")
    phone.events().patch(calendarId=mirror.calendar("bob")["calendar_id"], eventId=event["id"],
                         body={"summary": "✓ " + event["summary"]}).execute()
    mirror.advance(minutes=2)
    assert mirror.req("GET", "/v1/tasks/t1").json()["completed_at"] is not None
    # The completion pulled, then the CRM's side of it written back (graphite, G7).
    assert metrics(mirror)["syncd_google_sync_lag_seconds_count{}"] == 4
