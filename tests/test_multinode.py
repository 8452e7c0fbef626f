"""Issue 6, many nodes (SPEC §7, N11, G16): three `syncd run` processes share one PostgreSQL,
one of them is killed with SIGKILL while timers fire and calendar pushes go out, and when the
due work is done nothing is lost and nothing was sent twice.

The outside world is real and in this process: a loopback SMTP server (aiosmtpd) counting mail
by Message-ID, and the Google Calendar emulator that users connect to through the web OAuth
flow. The CRM's calls go over HTTP, spread over the nodes, and step around the dead one.

Timeline, in seconds after the first task is created (T0), on the real clock:
  0–~35   5,000 tasks (timed, due T0+70…120; `task_due` fires a minute before, N4)
  ~35–55  the CRM completes, moves and deletes some; a fourth user turns the mirror on
  ~45     node 1 is SIGKILLed while it holds running jobs (after `jobs.lease_seconds` the
          other two take them over)
  ~140    the last deadline has passed; the test waits for the queue to drain, then checks
          the database, the SMTP server's mailbox and every mirrored calendar.

SYNCD_MULTINODE_TASKS changes the number of tasks (the issue's figure, 5,000, by default).
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from syncd.channels.webpush import VapidKey
from syncd.emulator.server import EmulatorServer
from tests.support.cluster import Cluster, NodeProcess, SmtpSink, free_port, start_smtp

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

API_KEY = "multinode-api-key-0123456789"
TASKS = int(os.environ.get("SYNCD_MULTINODE_TASKS", "5000"))
NODES = 3
KILLED = 1  # node 0 takes the OAuth callbacks; node 1 dies; node 2 lives on
LEASE_SECONDS = 10
CLIENT_THREADS = 12
DUE_FROM, DUE_TO = 70.0, 120.0  # deadlines, seconds after T0
MIN_AHEAD = 25.0  # a task is never created closer than this to its deadline
ZONES = ["Europe/Berlin", "America/New_York", "UTC", "Asia/Tokyo"]
USERS = [f"u{i:02d}" for i in range(12)]
MIRRORED_EARLY = ["u00", "u01", "u02"]  # connected before any task exists
MIRRORED_LATE = "u03"  # connected mid-run: its tasks arrive by backfill (G2)
MIRRORED = [*MIRRORED_EARLY, MIRRORED_LATE]
TASKS_PER_MIRRORED = 150  # keeps each calendar well below Google's 600 requests/min per user
TYPES = ["call", "meeting", "follow_up", "demo"]
LABELS = {"call": "Call", "meeting": "Meeting", "follow_up": "Follow up", "demo": "demo"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat()


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Plan:
    """What the CRM does, decided up front (seeded), and what it did, as it did it."""

    def __init__(self, n: int, seed: int) -> None:
        rnd = random.Random(seed)
        self.rnd = rnd
        mirrored_n = min(TASKS_PER_MIRRORED * len(MIRRORED), n // 4)
        others = [u for u in USERS if u not in MIRRORED]
        self.tasks: dict[str, dict] = {}
        for i in range(n):
            tid = f"t{i:05d}"
            resp = MIRRORED[i % len(MIRRORED)] if i < mirrored_n else others[i % len(others)]
            author = resp if i % 5 == 0 else USERS[(USERS.index(resp) + 1) % len(USERS)]
            self.tasks[tid] = {
                "id": tid, "responsible": resp, "author": author, "type": TYPES[i % len(TYPES)],
                "text": f"Task {i} for {resp}", "offset": rnd.uniform(DUE_FROM, DUE_TO),
                "due_at": None, "created_at": None, "completed_at": None, "moved": [],
                "deleted_at": None,
            }
        ids = list(self.tasks)
        rnd.shuffle(ids)
        self.order = ids  # creation order: deadlines are not in creation order
        mirrored_ids = [t for t in ids if self.tasks[t]["responsible"] in MIRRORED]
        other_ids = [t for t in ids if self.tasks[t]["responsible"] not in MIRRORED]
        k = max(1, n // 100)
        self.complete = mirrored_ids[:k] + other_ids[:5 * k]
        self.move = mirrored_ids[k:2 * k] + other_ids[5 * k:10 * k]
        self.delete = mirrored_ids[2 * k:3 * k] + other_ids[10 * k:11 * k]


def wait_until(predicate, timeout: float, step: float = 0.5, what: str = "",  # noqa: ANN001
               explain=None) -> float:  # noqa: ANN001
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            detail = f": {explain()}" if explain else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(step)


class Timings(dict):
    """Seconds at each milestone; also printed as they happen (visible with -s)."""

    def __setitem__(self, key: str, value: float) -> None:
        print(f"[multinode] {key}: {value:.1f}s", file=sys.stderr, flush=True)
        super().__setitem__(key, value)


@pytest.fixture
def emulator():
    with EmulatorServer() as emu:
        yield emu


def test_three_nodes_one_killed(tmp_path: Path, postgres, emulator: EmulatorServer) -> None:  # noqa: ANN001, PLR0915
    started = time.monotonic()
    timings = Timings()
    url = postgres.create_database()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as c:  # as a Moscow company's database server would be set up
        c.execute(text(f'ALTER DATABASE "{urlparse(url).path[1:]}" SET timezone TO '
                       "'Europe/Moscow'"))
        c.commit()
    sink = SmtpSink()
    smtp = start_smtp(sink)
    nodes: list[NodeProcess] = []
    report: dict = {}
    try:
        # -- the world: Google, SMTP, shared secrets -----------------------------------
        client_file = tmp_path / "google-client.json"
        client_file.write_text(json.dumps(emulator.client_config()))
        token_key = tmp_path / "token.key"  # every node must open every node's sealed tokens
        token_key.write_bytes(Fernet.generate_key())
        settings_file = tmp_path / "empty-settings.yaml"
        settings_file.write_text("{}\n")
        vapid = VapidKey.generate().pem().decode()  # one key for all nodes, as a cluster needs
        common = {
            "SYNCD_SETTINGS": str(settings_file),
            "SYNCD_DATABASE__URL": url,
            "SYNCD_API__KEYS": json.dumps([API_KEY]),
            "SYNCD_HTTP__HOST": "127.0.0.1",
            "SYNCD_HTTP__STOP_TIMEOUT_SECONDS": "5",
            "SYNCD_JOBS__MAX_SLEEP_SECONDS": "0.5",
            "SYNCD_JOBS__LEASE_SECONDS": str(LEASE_SECONDS),
            "SYNCD_JOBS__BATCH_SIZE": "50",
            "SYNCD_NOTIFY__DUE_SOON_MINUTES": "1",
            "SYNCD_NOTIFY__EMAIL_GRACE_SECONDS": "5",
            "SYNCD_EMAIL__SMTP_HOST": "127.0.0.1",
            "SYNCD_EMAIL__SMTP_PORT": str(smtp.port),
            "SYNCD_EMAIL__TIMEOUT_SECONDS": "10",
            "SYNCD_WEBPUSH__VAPID_PRIVATE_KEY": vapid,
            "SYNCD_GOOGLE__CLIENT_FILE": str(client_file),
            "SYNCD_GOOGLE__TOKEN_KEY_FILE": str(token_key),
            "SYNCD_GOOGLE__API_ENDPOINT": emulator.base_url,
            "SYNCD_GOOGLE__AUTH_URI": emulator.auth_uri,
            "SYNCD_GOOGLE__TOKEN_URI": emulator.token_uri,
            "SYNCD_GOOGLE__REVOKE_URI": emulator.revoke_uri,
            "SYNCD_LOG__LEVEL": "WARNING",
            "SYNCD_LOG__JSON": "true",
        }
        for i in range(NODES):
            port = free_port()
            env = {**common, "SYNCD_STATE_DIR": str(tmp_path / f"node{i}" / "state"),
                   "SYNCD_HTTP__PORT": str(port),
                   "SYNCD_HTTP__PUBLIC_URL": f"http://127.0.0.1:{port}"}
            nodes.append(NodeProcess(i, port, env, tmp_path / f"node{i}"))
        for n in nodes:  # all at once: they race for the migrations too
            n.spawn()
        for n in nodes:
            n.wait_healthy()
        timings["nodes_up"] = time.monotonic() - started
        crm = Cluster(nodes, API_KEY)

        # -- users, and three of them switch the mirror on ------------------------------
        for i, u in enumerate(USERS):
            tz = ZONES[i % len(ZONES)]
            crm.call("PUT", f"/v1/users/{u}", json={"name": u.upper(), "email": f"{u}@example.com",
                                                    "timezone": tz, "locale": "en"})
            if u in MIRRORED:
                emulator.create_account(f"{u}@example.com", time_zone=tz)

        def connect(user: str) -> None:
            r = crm.call("POST", f"/v1/users/{user}/calendar/connect", node=0)
            consent = httpx.get(r.json()["authorization_url"], follow_redirects=False, timeout=30)
            assert consent.status_code == 302, consent.text
            back = urlparse(consent.headers["location"])
            assert back.port == nodes[0].port  # node 0's public_url
            r = crm.call("GET", f"{back.path}?{back.query}", node=0, ok=(303,),
                         follow_redirects=False)
            assert r.status_code == 303, r.text

        def calendar_state(user: str) -> str:
            return crm.call("GET", f"/v1/users/{user}/calendar").json()["state"]

        for u in MIRRORED_EARLY:
            connect(u)
        wait_until(lambda: all(calendar_state(u) == "on" for u in MIRRORED_EARLY), 30,
                   what="the first mirrors to switch on")

        # -- 5,000 tasks, spread over the nodes ----------------------------------------
        plan = Plan(TASKS, seed=int(os.environ.get("SYNCD_MULTINODE_SEED", "6")))
        t0 = utcnow()
        t0_mono = time.monotonic()

        def create(tid: str) -> None:
            t = plan.tasks[tid]
            now = utcnow()
            due = max(t0 + timedelta(seconds=t["offset"]), now + timedelta(seconds=MIN_AHEAD))
            due = due.replace(microsecond=0) + timedelta(seconds=1)
            t["due_at"], t["created_at"] = due, now
            crm.call("PUT", f"/v1/tasks/{tid}", json={
                "actor_id": t["author"], "author_id": t["author"],
                "responsible_id": t["responsible"], "text": t["text"], "type": t["type"],
                "due_at": iso(due)})

        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            list(pool.map(create, plan.order))
        timings["created"] = time.monotonic() - t0_mono

        # -- the CRM changes some, while timers fire; node 1 dies meanwhile --------------
        killed_at: list[float] = []
        held_at_kill: dict = {}
        victim = nodes[KILLED]

        def running_on(node: NodeProcess) -> dict[str, int]:
            with engine.connect() as c:
                rows = c.execute(text(
                    "SELECT kind, count(*) FROM jobs WHERE state = 'running' "
                    "AND locked_by LIKE :p GROUP BY kind"), {"p": f"%:{node.pid}:%"}).all()
            return dict(rows)

        def killer() -> None:
            # Wait until the victim is in the middle of things: timers or sends in hand,
            # and a calendar push if one comes within a few seconds.
            deadline = time.monotonic() + 12
            best: dict[str, int] = {}
            while time.monotonic() < deadline:
                held = running_on(victim)
                if held and ("gcal_push" in held or time.monotonic() > deadline - 6):
                    best = held
                    break
                time.sleep(0.05)
            held_at_kill.update(best or running_on(victim))
            victim.sigkill()
            killed_at.append(time.monotonic() - t0_mono)

        def complete(tid: str) -> None:
            t = plan.tasks[tid]
            t["completed_at"] = utcnow()
            crm.call("POST", f"/v1/tasks/{tid}/complete", json={"by": t["responsible"]})

        def move(tid: str) -> None:
            t = plan.tasks[tid]
            now = utcnow()
            new = (max(t["due_at"], now) + timedelta(seconds=20)).replace(microsecond=0)
            t["moved"].append((now, t["due_at"]))
            t["due_at"] = new
            crm.call("PUT", f"/v1/tasks/{tid}", json={"actor_id": t["author"],
                                                       "due_at": iso(new)})

        def delete(tid: str) -> None:
            plan.tasks[tid]["deleted_at"] = utcnow()
            crm.call("DELETE", f"/v1/tasks/{tid}")

        changes = ([(complete, t) for t in plan.complete] + [(move, t) for t in plan.move]
                   + [(delete, t) for t in plan.delete])
        plan.rnd.shuffle(changes)
        kill_thread = threading.Thread(target=killer, daemon=True)
        connect(MIRRORED_LATE)
        kill_thread.start()
        pace = 15.0 / max(1, len(changes))  # spread over ~15 s, around the kill

        def change(item) -> None:  # noqa: ANN001
            fn, tid = item
            fn(tid)

        with ThreadPoolExecutor(4) as pool:
            futures = []
            for item in changes:
                futures.append(pool.submit(change, item))
                time.sleep(pace)
            for f in futures:
                f.result()
        timings["changed"] = time.monotonic() - t0_mono
        kill_thread.join(30)
        assert killed_at, "the victim was never killed"
        timings["killed_at"] = killed_at[0]
        report["held_at_kill"] = held_at_kill

        # -- wait for all due work to be done -------------------------------------------
        last_due = max(t["due_at"] for t in plan.tasks.values())

        def quiet() -> bool:
            if utcnow() < last_due + timedelta(seconds=8):
                return False
            with engine.connect() as c:
                busy = c.execute(text(
                    "SELECT count(*) FROM jobs WHERE state = 'running' OR (state = 'pending' "
                    "AND kind NOT IN ('gcal_pull', 'gcal_watch'))")).scalar_one()
                outbox = c.execute(text("SELECT count(*) FROM calendar_outbox")).scalar_one()
                unsent = c.execute(text("SELECT count(*) FROM deliveries "
                                        "WHERE state IN ('pending', 'sending')")).scalar_one()
            return busy == 0 and outbox == 0 and unsent == 0

        def backlog() -> dict:
            with engine.connect() as c:
                return {
                    "jobs": [tuple(r) for r in c.execute(text(
                        "SELECT kind, state, count(*), min(due_at), max(attempts), "
                        "min(last_error) FROM jobs WHERE state IN ('running', 'pending') "
                        "GROUP BY kind, state"))],
                    "outbox": [tuple(r) for r in c.execute(text(
                        "SELECT user_id, count(*), min(not_before), max(attempts) "
                        "FROM calendar_outbox GROUP BY user_id"))],
                    "deliveries": [tuple(r) for r in c.execute(text(
                        "SELECT channel, state, count(*) FROM deliveries "
                        "WHERE state IN ('pending', 'sending') GROUP BY channel, state"))],
                    "links": [tuple(r) for r in c.execute(text(
                        "SELECT user_id, state, push_lease_until, pull_lease_until, last_error "
                        "FROM calendar_links"))],
                    "now": utcnow(), "last_due": last_due,
                }

        remaining = 170 - (time.monotonic() - started)
        wait_until(quiet, max(60.0, remaining), step=1.0, what="the queue to drain",
                   explain=backlog)
        timings["drained"] = time.monotonic() - t0_mono
        assert all(n.alive for i, n in enumerate(nodes) if i != KILLED), \
            "\n".join(n.output() for n in nodes)

        # ==============================================================================
        # Checks, straight from the database.
        # ==============================================================================
        with engine.connect() as c:
            entries = c.execute(text(
                "SELECT id, user_id, task_id, kind, occurrence, created_at, removed_at "
                "FROM entries")).mappings().all()
            deliveries = c.execute(text(
                "SELECT id, entry_id, user_id, channel, state, attempts, reason FROM deliveries"
            )).mappings().all()
            jobs = c.execute(text(
                "SELECT id, kind, key, state, attempts, due_at, lease_until, locked_by, "
                "last_error FROM jobs")).mappings().all()
            tasks = {r["id"]: r for r in c.execute(text(
                "SELECT id, text, type, responsible_id, due_at, completed_at, deleted_at "
                "FROM tasks")).mappings().all()}
            links = {r["user_id"]: r for r in c.execute(text(
                "SELECT user_id, state, calendar_id FROM calendar_links")).mappings().all()}

        # N11: one entry per (user, task, kind, occurrence), one delivery per (entry, channel)
        ident = Counter((e["user_id"], e["task_id"], e["kind"], e["occurrence"]) for e in entries)
        assert [k for k, n in ident.items() if n > 1] == []
        per_channel = Counter((d["entry_id"], d["channel"]) for d in deliveries)
        assert [k for k, n in per_channel.items() if n > 1] == []

        # Every job is done: none running or leased, none failed, no due work left.
        now = utcnow()
        assert [j["key"] for j in jobs if j["state"] == "running"] == []
        assert [(j["key"], j["last_error"]) for j in jobs if j["state"] == "failed"] == []
        assert [j["key"] for j in jobs if j["state"] == "pending" and j["due_at"] <= now
                and j["kind"] not in ("gcal_pull", "gcal_watch")] == []

        # The CRM's side of things is what the test did.
        assert len(tasks) == TASKS
        for tid, t in plan.tasks.items():
            row = tasks[tid]
            assert row["due_at"] == t["due_at"], tid
            assert (row["completed_at"] is not None) == (t["completed_at"] is not None), tid
            assert (row["deleted_at"] is not None) == (t["deleted_at"] is not None), tid

        # No lost timer, no stale one: each task's entries are what the rules say.
        by_task: dict[str, dict[tuple[str, str], dict]] = defaultdict(dict)
        for e in entries:
            by_task[e["task_id"]][(e["kind"], e["occurrence"])] = e
        dropped_after_kill: list[str] = []
        timer_jobs = {j["key"]: j for j in jobs if j["kind"] == "timer"}
        problems: list[str] = []
        for tid, t in plan.tasks.items():
            got = by_task.get(tid, {})
            occ = iso(t["due_at"])
            resp, author = t["responsible"], t["author"]
            if ("task_assigned", "assignment-1") not in got:
                problems.append(f"{tid}: no task_assigned")
            if t["deleted_at"] is not None:
                live = [k for k, e in got.items() if e["removed_at"] is None]
                if live:
                    problems.append(f"{tid}: deleted but entries left {live}")
                continue
            if t["completed_at"] is not None:
                live = [k for k, e in got.items()
                        if e["removed_at"] is None and k[0] != "task_completed"]
                if live:
                    problems.append(f"{tid}: completed but entries left {live}")
                done = [k for k in got if k[0] == "task_completed"]
                if (len(done) == 1) != (author != resp):
                    problems.append(f"{tid}: task_completed entries {done} (author {author})")
                over = got.get(("task_overdue", occ))
                if t["completed_at"] < t["due_at"] - timedelta(seconds=2) and over is not None:
                    problems.append(f"{tid}: overdue although completed before its deadline")
                continue
            # Open: its current deadline has passed, so task_due and task_overdue both fired.
            for kind in ("task_due", "task_overdue"):
                e = got.get((kind, occ))
                if e is None:
                    job = timer_jobs.get(f"timer:{kind}:{tid}:{resp}:{occ}")
                    if kind == "task_due" and job is not None and job["attempts"] > 1:
                        dropped_after_kill.append(tid)  # N12: fired late, past its deadline
                    else:
                        problems.append(f"{tid}: no {kind} for {occ} (timer job: "
                                        f"{job and dict(job)})")
                elif e["removed_at"] is not None:
                    problems.append(f"{tid}: {kind} removed")
            for moved_at, old_due in t["moved"]:
                stale = got.get(("task_overdue", iso(old_due)))
                if stale is not None and moved_at < old_due - timedelta(seconds=2):
                    problems.append(f"{tid}: overdue for the deadline it was moved away from")
        assert problems == [], problems[:30]
        report["task_due_dropped_after_kill"] = len(dropped_after_kill)

        # Deliveries: the channels SPEC §2 lists, each settled.
        by_entry: dict[int, dict[str, dict]] = defaultdict(dict)
        for d in deliveries:
            by_entry[d["entry_id"]][d["channel"]] = d
        expected_channels = {
            "task_assigned": {"email", "browser", "mobile"},
            "task_due": {"email", "browser", "mobile"},
            "task_overdue": {"browser"},
            "task_completed": {"browser", "mobile"},
        }
        self_assigned = {tid for tid, t in plan.tasks.items() if t["author"] == t["responsible"]}
        for e in entries:
            want = expected_channels[e["kind"]]
            if e["kind"] == "task_assigned" and e["task_id"] in self_assigned:
                want = set()  # N2
            got_channels = by_entry.get(e["id"], {})
            if e["removed_at"] is None:
                assert set(got_channels) == want, (dict(e), got_channels)
                for ch, d in got_channels.items():
                    assert d["state"] == ("skipped" if ch == "mobile" else "sent"), dict(d)
            else:
                assert set(got_channels) <= want, (dict(e), got_channels)
        assert [dict(d) for d in deliveries if d["state"] in ("pending", "sending", "failed")] == []

        # Every email the SMTP server got, exactly once per email delivery.
        received = sink.by_id()
        email = {f"<delivery-{d['id']}@localhost>": d for d in deliveries if d["channel"] == "email"}
        sent_ids = {mid for mid, d in email.items() if d["state"] == "sent"}
        unknown = [mid for mid in received if mid not in email]
        assert unknown == []
        missing = sorted(sent_ids - set(received))
        assert missing == [], missing[:20]
        dupes = {mid: n for mid, n in received.items() if n > 1}
        # A repeat is only legitimate for a send the kill interrupted (claimed again).
        assert [mid for mid in dupes if email[mid]["attempts"] < 2] == []
        # ...and a received mail whose delivery is not `sent` only for the same reason.
        odd = [mid for mid in received if email[mid]["state"] != "sent"
               and email[mid]["attempts"] < 2]
        assert odd == []
        # No notification went out twice under different Message-IDs.
        entry_of = {e["id"]: e for e in entries}
        idents = Counter((entry_of[email[mid]["entry_id"]]["user_id"],
                          entry_of[email[mid]["entry_id"]]["task_id"],
                          entry_of[email[mid]["entry_id"]]["kind"],
                          entry_of[email[mid]["entry_id"]]["occurrence"]) for mid in received)
        assert [k for k, n in idents.items() if n > 1] == []
        report["emails"] = {"received": sink.count(), "distinct_message_ids": len(received),
                            "duplicates_by_message_id": dupes}

        # -- every mirrored calendar converged exactly to the CRM ------------------------
        for user in MIRRORED:
            link = links.get(user)
            assert link is not None and link["state"] == "on" and link["calendar_id"], link
            events = [e for e in emulator.control.events(f"{user}@example.com",
                                                          link["calendar_id"])
                      if e.get("status") != "cancelled"]
            per_task = Counter(e["extendedProperties"]["private"]["syncd_task"] for e in events)
            assert [k for k, n in per_task.items() if n > 1] == [], user
            want = {tid: t for tid, t in plan.tasks.items()
                    if t["responsible"] == user and t["deleted_at"] is None}
            assert set(per_task) == set(want), (user, sorted(set(per_task) ^ set(want))[:20])
            for ev in events:
                t = want[ev["extendedProperties"]["private"]["syncd_task"]]
                summary = f"{LABELS[t['type']]}: {t['text']}"
                if t["completed_at"] is not None:
                    summary = "✓ " + summary
                assert ev["summary"] == summary, (user, ev["summary"], summary)
                assert instant(ev["start"]["dateTime"]) == t["due_at"], (user, ev["start"], t)
        report["events"] = {u: sum(1 for t in plan.tasks.values() if t["responsible"] == u
                                   and t["deleted_at"] is None) for u in MIRRORED}

        # The survivors did the dead node's share; who did what:
        names = Counter(j["locked_by"].split(":")[1] for j in jobs if j["locked_by"])
        report["jobs_by_pid"] = {f"node{n.index}": names.get(str(n.pid), 0) for n in nodes}
        report["rerouted_calls"] = crm.rerouted
        assert crm.errors == [], crm.errors[:10]

        # The survivors still stop cleanly.
        for i, n in enumerate(nodes):
            if i != KILLED:
                assert n.terminate() == 0, n.output()
        timings["total"] = time.monotonic() - started
    finally:
        report["timings"] = {k: round(v, 1) for k, v in timings.items()}
        print("\nmultinode report:", json.dumps(report, default=str, indent=1))
        for n in nodes:
            n.ensure_dead()
        smtp.stop()
        engine.dispose()
