"""G14: client-side limits below Google's, kept in the database so every node shares them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from syncd.api.app import create_app
from syncd.clock import ManualClock
from syncd.daemon import build
from syncd.emulator.server import EmulatorServer
from syncd.gcal.limits import Grant, RateLimits
from syncd.store.db import Database
from tests.conftest import START, make_settings
from tests.gcal.conftest import Mirror, add_people, google_settings
from tests.gcal.test_rules_g import DUE


def test_no_sixty_seconds_hold_more_than_the_limit_per_user_or_for_the_project(db: Database):
    clock = ManualClock(START)
    limits = RateLimits(db, clock, per_user=10, per_project=15)
    assert limits.take("ann", 6).count == 6
    clock.advance(seconds=30.5)
    assert limits.take("ann", 6).count == 4  # what is left of ann's 10
    assert limits.take("ann", 1) == Grant(0, 30.5)  # when the first 6 leave the window
    assert limits.take("bob", 6).count == 5  # and the project's 15 are spent
    clock.advance(seconds=30.5)  # 61 s after the first take
    assert limits.take("cid", 9).count == 6  # the first 6 have left the window, no more
    assert limits.take("ann", 1) == Grant(0, 30.0)
    clock.advance(seconds=60)
    assert limits.take("ann", 100).count == 9  # cid's 6 are still in the project's window
    clock.advance(seconds=61)
    assert limits.take("ann", 100).count == 10  # never more than the limit at once


def test_every_node_draws_on_the_same_allowance(db: Database):
    clock = ManualClock(START)
    nodes = [RateLimits(db, clock, per_user=50, per_project=1000) for _ in range(3)]
    granted: list[int] = []
    lock = threading.Lock()

    def node_pushes(limits: RateLimits) -> None:
        for _ in range(40):
            n = limits.take("ann", 1).count
            with lock:
                granted.append(n)

    threads = [threading.Thread(target=node_pushes, args=(n,)) for n in nodes for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 50  # 240 asked for, across 3 nodes and 6 threads: ann's minute


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Mirror]:
    """Google and syncd on one manual clock, both allowing 5 requests a minute per user: even
    at Google's own limit, syncd's sliding window never gets a request refused."""
    clock = ManualClock(START)
    with EmulatorServer(clock=clock.now, user_rate_limit=5) as emu:
        google = google_settings(emu, tmp_path, user_requests_per_minute=5)
        node = build(make_settings(tmp_path, google=google), clock)
        with TestClient(create_app(node)) as client:
            m = Mirror(client, node, clock)
            m.emu = emu
            yield m
        node.db.dispose()


def test_a_burst_goes_out_at_the_limit_and_google_never_refuses(limited: Mirror):
    m = limited
    add_people(m, "ann", "bob")
    m.connect("bob")
    m.clock.advance(minutes=1)  # connecting took a few of bob's requests
    for n in range(12):
        m.task(f"t{n}", "ann", text=f"Task {n}", responsible_id="bob", due_at=DUE)
    m.advance(seconds=5)
    m.sync()
    assert len(m.events("bob")) == 5  # one minute's worth; the rest wait in the outbox
    for _ in range(30):
        if len(m.events("bob")) == 12:
            break
        m.advance(seconds=12)
    assert len(m.events("bob")) == 12
    statuses = m.emu.counters.snapshot()["by_status"]
    assert all(int(status) < 400 for status in statuses), statuses  # no 403 rate limit
    calendar = m.calendar("bob")
    assert calendar["state"] == "on" and calendar["last_error"] is None
    assert m.client.get("/healthz").json()["checks"]["calendar_sync"]["failing_users"] == []
