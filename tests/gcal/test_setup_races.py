"""G2 backfill across nodes (what the multi-node run found for its late-connecting user): on
PostgreSQL, READ COMMITTED, a setup switching a mirror on races the CRM's task changes and a
second run of the same setup job (its lease ran out on a slow node). Each race is forced here
by holding setup inside its transaction, just after it selected the tasks to backfill."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from fastapi.testclient import TestClient

from syncd.api.app import create_app
from syncd.clock import ManualClock
from syncd.daemon import build
from syncd.emulator.server import EmulatorServer
from syncd.gcal.mirror import Mirror as MirrorService
from syncd.jobs.queue import ClaimedJob
from syncd.store.tables import CalendarLink
from tests.conftest import START, make_settings
from tests.gcal.conftest import Mirror, add_people, google_settings, running_mirror

pytestmark = pytest.mark.postgres

DUE = "2026-03-02T15:00:00+01:00"
HOLD = 2.0  # how long a held setup waits for the other party before going on anyway


@pytest.fixture
def pg_mirror(postgres, emulator: EmulatorServer, tmp_path: Path) -> Iterator[Mirror]:
    with running_mirror(emulator, tmp_path, postgres.create_database()) as m:
        yield m


@pytest.fixture
def any_mirror(emulator: EmulatorServer, tmp_path: Path, db_url: str) -> Iterator[Mirror]:
    with running_mirror(emulator, tmp_path, db_url) as m:
        yield m


def consent(m: Mirror, user_id: str) -> None:
    """The G1 web flow up to the callback: the link is `connecting`, its setup job pending."""
    r = m.req("POST", f"/v1/users/{user_id}/calendar/connect")
    back = urlparse(httpx.get(r.json()["authorization_url"], follow_redirects=False)
                    .headers["location"])
    assert m.client.get(f"{back.path}?{back.query}", follow_redirects=False).status_code == 303
    assert m.calendar(user_id)["state"] == "connecting"


class HeldSetup:
    """Runs setup in a thread and holds it inside its transaction at the backfill's mark()
    (tasks selected, nothing committed) until released, or HOLD seconds passed."""

    def __init__(self, m: Mirror, monkeypatch: pytest.MonkeyPatch, user_id: str) -> None:
        self.m, self.user_id = m, user_id
        self.inside, self.release = threading.Event(), threading.Event()
        self.errors: list[BaseException] = []
        real = MirrorService.mark
        held = self

        def mark(mirror, s, uid, task_ids, now):
            if threading.current_thread() is held.thread and not held.inside.is_set():
                held.inside.set()
                held.release.wait(HOLD)
            return real(mirror, s, uid, task_ids, now)

        monkeypatch.setattr(MirrorService, "mark", mark)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.m.node.mirror.setup(setup_job(self.user_id))
        except BaseException as exc:  # noqa: BLE001 (reported by the test)
            self.errors.append(exc)

    def start(self) -> None:
        self.thread.start()
        assert self.inside.wait(10), "setup never reached its backfill"

    def finish(self) -> None:
        self.release.set()
        self.thread.join(20)
        assert not self.thread.is_alive() and not self.errors, self.errors


def setup_job(user_id: str) -> ClaimedJob:
    return ClaimedJob(id=0, kind="gcal_setup", key=f"gcal_setup:{user_id}",
                      payload={"user_id": user_id}, attempts=1)


def in_thread(fn) -> threading.Thread:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


def test_a_task_created_while_setup_switches_on_is_mirrored(
        pg_mirror: Mirror, monkeypatch: pytest.MonkeyPatch):
    """The task's change saw `connecting` (no outbox row), setup's backfill select did not see
    the task (not committed yet): neither would have queued its event."""
    m = pg_mirror
    add_people(m, "ann", "bob")
    m.task("t1", "ann", text="Before", type="call", responsible_id="bob", due_at=DUE)
    consent(m, "bob")
    setup = HeldSetup(m, monkeypatch, "bob")
    setup.start()
    upsert = in_thread(lambda: m.node.service.upsert_task("t2", {
        "text": "During", "type": "call", "responsible_id": "bob", "author_id": "ann",
        "due_at": datetime.fromisoformat(DUE)}, "ann"))
    upsert.join(HOLD / 2)  # it commits now, or waits for setup: either way, then setup goes on
    setup.finish()
    upsert.join(20)
    assert not upsert.is_alive()
    m.sync()
    assert m.calendar("bob")["state"] == "on"
    assert sorted(e["summary"] for e in m.events("bob")) == ["Call: Before", "Call: During"]


def test_a_second_run_of_setup_changes_nothing(
        any_mirror: Mirror, monkeypatch: pytest.MonkeyPatch):
    """Setup's job taken over while its first run is still at work (the lease ran out): two
    runs, two new calendars. The first to switch the mirror on wins; the other run must not
    switch it on again with its own calendar (the events already pushed to the first would
    stay there, and the outbox, finding them synced, would never write them to the second),
    and its unused calendar is removed."""
    m = any_mirror
    add_people(m, "ann", "bob")
    for i in range(3):
        m.task(f"t{i}", "ann", text=f"Task {i}", type="call", responsible_id="bob", due_at=DUE)
    consent(m, "bob")
    made: dict[str, str] = {}  # thread name -> the calendar its setup created
    real = MirrorService._create_calendar

    def create_calendar(mirror, user, creds):
        made[threading.current_thread().name] = calendar_id = real(mirror, user, creds)
        return calendar_id

    monkeypatch.setattr(MirrorService, "_create_calendar", create_calendar)
    first = HeldSetup(m, monkeypatch, "bob")
    first.start()  # its calendar made, its transaction open
    with m.node.db.read() as s:
        assert s.get(CalendarLink, "bob").state == "connecting"
    second = in_thread(lambda: m.node.mirror.setup(setup_job("bob")))
    second.join(HOLD / 2)  # done already (it saw `connecting` too), or waiting for the first
    first.finish()
    second.join(20)
    assert not second.is_alive()
    assert len(made) == 2, made
    with m.node.db.read() as s:
        link = s.get(CalendarLink, "bob")
    assert link.state == "on" and link.calendar_id == made[first.thread.name]
    calendars = [c["id"] for c in m.emu.control.calendars("bob@example.com")
                 if c.get("summary") == "CRM tasks"]
    assert calendars == [link.calendar_id]  # the loser's empty calendar is gone
    m.sync()
    assert sorted(e["summary"] for e in m.events("bob")) == [f"Call: Task {i}" for i in range(3)]


def test_G1_nodes_sharing_postgres_need_a_shared_token_key(postgres, emulator: EmulatorServer,
                                                           tmp_path: Path) -> None:
    """One node must not make a key the others can't have: with no key installed, turning the
    mirror on is refused before any consent, naming the setting, and nothing changes."""
    google = google_settings(emulator, tmp_path)  # its token_key_file does not exist
    node = build(make_settings(tmp_path, postgres.create_database(), google=google),
                 ManualClock(START))
    try:
        m = Mirror(TestClient(create_app(node)), node, node.clock)  # type: ignore[arg-type]
        m.user("ann")
        r = m.req("POST", "/v1/users/ann/calendar/connect")
        assert r.status_code == 409, r.text
        assert r.json()["error"]["field"] == "google.token_key_file"
        assert not Path(google["token_key_file"]).exists()
        assert m.req("GET", "/v1/users/ann/calendar").json()["state"] == "off"
    finally:
        node.db.dispose()
