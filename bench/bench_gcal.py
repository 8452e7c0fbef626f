"""The Google Calendar mirror's cost and speed, beside a naive client measured in the same run.

Everything runs against the calendar emulator (in this process, per-minute quotas off, so no
figure is shaped by throttling) through the real google-api-python-client:

- API requests per task change, and HTTP round trips per 1,000 changes: 1,000 text edits of
  distinct tasks (4 users x 250) pushed by syncd (outbox -> batched patches with If-Match,
  G6), versus the naive client: one `execute()` per change, each preceded by an `events.get`
  (read before write).
- Pull cost per idle user per poll: syncd's incremental `events.list` with the sync token
  (G9), versus a full `events.list` (every page) per poll; and with watch channels on, the
  pulls between two safety polls (none expected).
- Change-to-calendar latency on the real clock with the workers running: 200 task changes at
  20/s through the service; the time from the change's commit until the emulator stores the
  event that shows it. The naive client gets the same changes, one get + patch each, from as
  many threads as syncd has workers.

    .venv/bin/python -m bench.bench_gcal
"""

from __future__ import annotations

import json
import queue
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build as discovery_build
from sqlalchemy import select

from bench import percentile, row, settings, show
from syncd.clock import ManualClock, SystemClock
from syncd.daemon import Node, build
from syncd.domain import calendar as cal
from syncd.domain.model import default_preferences
from syncd.emulator.server import EmulatorServer
from syncd.notify.center import recipient, task_value
from syncd.store.tables import CalendarLink, CalendarOutbox, EventLink, Task, User

NAME = "gcal"
APP_CREATED = "https://www.googleapis.com/auth/calendar.app.created"
QUIET = {ch: {kind: False for kind in kinds} for ch, kinds in default_preferences().items()}
USERS, TASKS_PER_USER, CHANGES = 4, 300, 1000  # 300 events: a full listing is 2 pages of 250
POLLS = 5


# -- a node and its users ---------------------------------------------------------------------


def make_node(emu: EmulatorServer, tmp: Path, clock: Any, **google: Any) -> Node:
    client_file = tmp / "google-client.json"
    client_file.write_text(json.dumps(emu.client_config()))
    g = {"client_file": str(client_file), "token_key_file": str(tmp / "token.key"),
         "api_endpoint": emu.base_url, "auth_uri": emu.auth_uri, "token_uri": emu.token_uri,
         "revoke_uri": emu.revoke_uri,
         # The emulator's quotas are off here and so are syncd's (they would only pace the
         # run; tests/gcal/test_limits.py holds them to Google's): requests are what's counted.
         "user_requests_per_minute": 10**9, "project_requests_per_minute": 10**9, **google}
    node = build(settings(tmp, google=g, jobs={"max_sleep_seconds": 0.05}), clock)
    node.service.put_user("boss", {"name": "Boss", "channels": QUIET})  # sets every task
    return node


def connect(node: Node, emu: EmulatorServer, user: str, tasks: int, due: datetime) -> None:
    """A user, their Google account, consent (the emulator's consent page answers at once)
    and `tasks` tasks set for them by a manager."""
    node.service.put_user(user, {"name": user, "email": f"{user}@example.com",
                                 "channels": QUIET})
    emu.create_account(f"{user}@example.com")
    consent = httpx.get(node.mirror.connect_url(user), follow_redirects=False)
    params = {k: v[0] for k, v in parse_qs(urlparse(consent.headers["location"]).query).items()}
    node.mirror.finish_connect(params["state"], params["code"])
    for i in range(tasks):
        node.service.upsert_task(f"{user}-t{i}", {
            "text": f"Call client {i}", "type": "call", "responsible_id": user,
            "due_at": due + timedelta(minutes=15 * i)}, actor_id="boss")


def drain(node: Node) -> None:
    """Run due jobs until the outbox is empty (a manual clock: nothing else comes due)."""
    for _ in range(100):
        node.worker.run_due()
        with node.db.read() as s:
            if s.execute(select(CalendarOutbox)).first() is None:
                return
    raise RuntimeError("the outbox did not drain")


def requests(emu: EmulatorServer) -> tuple[int, int, dict]:
    snap = emu.counters.snapshot()
    return snap["api_requests"], snap["http_requests"], snap["by_method"]


# -- the naive client ---------------------------------------------------------------------------


class Naive:
    """What a first attempt looks like: per change, read the event, then write it (one
    `execute()` each); per poll, list the whole calendar."""

    def __init__(self, emu: EmulatorServer, node: Node, user: str) -> None:
        tokens = emu.create_account(f"{user}@example.com", scopes=[APP_CREATED])
        self.events = discovery_build(
            "calendar", "v3", credentials=Credentials(tokens["access_token"]),
            static_discovery=True, client_options={"api_endpoint": emu.api_endpoint}).events()
        self.node, self.user = node, user
        with node.db.read() as s:
            self.calendar_id = s.get(CalendarLink, user).calendar_id

    def push(self, task_id: str) -> None:
        with self.node.db.read() as s:
            task, user = s.get(Task, task_id), s.get(User, self.user)
            event_id = s.get(EventLink, (self.user, task_id)).event_id
        body = cal.event_body(task_value(task), cal.TaskExtras(task.duration_minutes),
                              recipient(user), self.node.mirror.opts)
        self.events.get(calendarId=self.calendar_id, eventId=event_id).execute()
        self.events.patch(calendarId=self.calendar_id, eventId=event_id,
                          body={k: v for k, v in body.items() if v is not None}).execute()

    def poll(self) -> int:
        """A full listing, every page; returns how many events came back."""
        n, page = 0, None
        while True:
            resp = self.events.list(calendarId=self.calendar_id, pageToken=page).execute()
            n += len(resp.get("items", []))
            if not (page := resp.get("nextPageToken")):
                return n


# -- the figures ----------------------------------------------------------------------------------


def cost(emu: EmulatorServer, tmp: Path) -> list[dict]:
    """Requests per change, round trips per 1,000 changes, pull cost per idle poll."""
    now = datetime.now(UTC).replace(microsecond=0)
    clock = ManualClock(now)
    node = make_node(emu, tmp, clock)
    users = [f"u{i}" for i in range(USERS)]
    for user in users:
        connect(node, emu, user, TASKS_PER_USER, now + timedelta(days=1))
    drain(node)
    changed = [f"{u}-t{i}" for i in range(CHANGES // USERS) for u in users]

    api0, http0, _ = requests(emu)
    for n, task_id in enumerate(changed):
        node.service.upsert_task(task_id, {"text": f"Call client, take {n}"}, actor_id="boss")
    drain(node)
    api1, http1, _ = requests(emu)
    ours_per_change = (api1 - api0) / len(changed)
    ours_trips = (http1 - http0) * 1000 / len(changed)

    # Idle polls: no change anywhere, the clock past each poll interval.
    lists0 = requests(emu)[2].get("calendar.events.list", 0)
    for _ in range(POLLS):
        clock.advance(seconds=node.settings.google.poll_seconds + 1)
        node.worker.run_due()
    ours_poll = (requests(emu)[2].get("calendar.events.list", 0) - lists0) / (USERS * POLLS)

    naive = {u: Naive(emu, node, u) for u in users}
    api0, http0, _ = requests(emu)
    returned = sum(naive[u].poll() for _ in range(POLLS) for u in users)
    api1, _, _ = requests(emu)
    naive_poll = (api1 - api0) / (USERS * POLLS)

    # The naive client writes the same 1,000 changes (the CRM changes them once more, so its
    # writes are real ones; syncd's worker is not run meanwhile).
    for n, task_id in enumerate(changed):
        node.service.upsert_task(task_id, {"text": f"Call client, naive {n}"}, actor_id="boss")
    api0, http0, _ = requests(emu)
    for task_id in changed:
        naive[task_id.split("-")[0]].push(task_id)
    api1, http1, _ = requests(emu)
    naive_per_change = (api1 - api0) / len(changed)
    naive_trips = (http1 - http0) * 1000 / len(changed)
    node.db.dispose()

    return [
        row(NAME, "API requests per task change", ours_per_change, "requests",
            baseline=naive_per_change, target="1.00", ok=ours_per_change <= 1.0),
        row(NAME, "HTTP round trips per 1,000 changes", ours_trips, "trips",
            baseline=naive_trips, target="<= 25", ok=ours_trips <= 25),
        row(NAME, f"pull requests per idle user per poll ({TASKS_PER_USER} events)", ours_poll,
            "requests", baseline=naive_poll, target="1", ok=ours_poll <= 1.0),
        row(NAME, "events transferred per idle user per poll", 0.0, "events",
            baseline=returned / (USERS * POLLS), ratio=0.0),
    ]


def watched(emu: EmulatorServer, tmp: Path) -> list[dict]:
    """With watch channels (G9), an idle user costs no pull between two safety polls."""
    now = datetime.now(UTC).replace(microsecond=0)
    clock = ManualClock(now)
    node = make_node(emu, tmp, clock, webhook_url="http://127.0.0.1:9/hooks/google")
    users = [f"w{i}" for i in range(2)]
    for user in users:
        connect(node, emu, user, 20, now + timedelta(days=1))
    drain(node)
    with node.db.read() as s:
        assert all(s.get(CalendarLink, u).channel_id for u in users), "no watch channel"
    # The pull scheduled before the channel opened comes at the poll interval; from the one
    # that knows of the channel on, pulls wait for a notification or the safety poll.
    clock.advance(seconds=node.settings.google.poll_seconds + 1)
    node.worker.run_due()
    lists0 = requests(emu)[2].get("calendar.events.list", 0)
    minutes = node.settings.google.safety_poll_seconds // 60 - 1
    for _ in range(minutes):  # every poll interval up to (not including) the safety poll
        clock.advance(seconds=60)
        node.worker.run_due()
    pulls = requests(emu)[2].get("calendar.events.list", 0) - lists0
    node.db.dispose()
    return [row(NAME, f"pulls per idle user between safety polls ({minutes} min, watched)",
                pulls / len(users), "requests", baseline=float(minutes), target="0",
                ok=pulls == 0)]


def latency(emu: EmulatorServer, tmp: Path, changes: int = 200, rate: float = 20.0
            ) -> list[dict]:
    """Commit → stored in Google, on the real clock, the node's workers running."""
    node = make_node(emu, tmp, SystemClock())
    users = [f"l{i}" for i in range(USERS)]
    due = datetime.now(UTC) + timedelta(days=1)
    for user in users:
        connect(node, emu, user, 50, due)
    node.worker.start(2)
    landed: dict[str, float] = {}
    store = emu.app.calendar._store

    def probe(calendar, event, writable, *rest):
        store(calendar, event, writable, *rest)
        marker = (writable.get("summary") or "").rpartition(" ")[2]
        if marker.startswith("#") and marker not in landed:
            landed[marker] = time.perf_counter()

    emu.app.calendar._store = probe
    try:
        _wait(lambda: _quiet(node), 60)
        ours = _run(changes, rate, users, node, landed, "a", lambda task_id: None)
        node.worker.stop()
        naive = {u: Naive(emu, node, u) for u in users}
        work: queue.Queue[str | None] = queue.Queue()

        def naive_worker() -> None:
            while (task_id := work.get()) is not None:
                naive[task_id.split("-")[0]].push(task_id)

        threads = [threading.Thread(target=naive_worker) for _ in range(2)]
        for t in threads:
            t.start()
        baseline = _run(changes, rate, users, node, landed, "b", work.put)
        for _ in threads:
            work.put(None)
        for t in threads:
            t.join()
    finally:
        emu.app.calendar._store = store
        node.worker.stop()
        node.db.dispose()
    rows = []
    for p in (50, 99):
        value = percentile(ours, p)
        rows.append(row(NAME, f"change-to-calendar latency p{p} ({rate:.0f} changes/s)",
                        value, "s", baseline=percentile(baseline, p),
                        target="<= 2 s" if p == 99 else None, ok=value <= 2.0 if p == 99
                        else None))
    return rows


def _run(changes: int, rate: float, users: list[str], node: Node, landed: dict[str, float],
         tag: str, after_commit: Any) -> list[float]:
    committed: dict[str, float] = {}
    start = time.perf_counter()
    for n in range(changes):
        time.sleep(max(0.0, start + n / rate - time.perf_counter()))
        task_id = f"{users[n % len(users)]}-t{n // len(users) % 50}"
        marker = f"#{tag}{n}"
        node.service.upsert_task(task_id, {"text": f"Call client {marker}"}, actor_id="boss")
        committed[marker] = time.perf_counter()
        after_commit(task_id)
    _wait(lambda: len(set(committed) & set(landed)) == changes, 60)
    return [landed[m] - committed[m] for m in committed]


def _quiet(node: Node) -> bool:
    with node.db.read() as s:
        return s.execute(select(CalendarOutbox)).first() is None


def _wait(ok: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not ok():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for the calendars")
        time.sleep(0.01)


def main() -> list[dict]:
    rows: list[dict] = []
    with EmulatorServer(user_rate_limit=None, project_rate_limit=None) as emu:
        for part in (cost, watched, latency):
            with tempfile.TemporaryDirectory(prefix=f"bench-gcal-{part.__name__}-") as tmp:
                rows += part(emu, Path(tmp))
    return rows


if __name__ == "__main__":
    show(main())
