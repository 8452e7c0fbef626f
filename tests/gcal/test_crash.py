"""G16 for real: a `syncd run` subprocess mirrors 300 tasks of 5 users while both sides change
them under the soak's faults, and is killed with SIGKILL at 20 random instants (restarted each
time). Then: no duplicate event, no lost change, no lost pull."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from syncd.emulator.server import EmulatorServer
from tests.gcal.test_soak import FAULTY, QUIET, World, completion_problems, mismatches
from tests.support.cluster import NodeProcess, free_port

pytestmark = pytest.mark.slow

API_KEY = "crash-test-api-key-0123456789"
USERS = [f"k{i}" for i in range(5)]
TASKS, KILLS = 300, 20
ROUNDS, CRM_OPS, GOOGLE_OPS = 8, 25, 12


class Daemon:
    """One `syncd run` configured only by SYNCD_* variables, on a port fixed for its life (the
    OAuth callback address must survive restarts)."""

    def __init__(self, tmp: Path, emu: EmulatorServer) -> None:
        port = free_port()
        client_file = tmp / "google-client.json"
        client_file.write_text(json.dumps(emu.client_config()))
        settings = tmp / "settings.yaml"
        settings.write_text("{}\n")  # the repository's settings.yaml must not leak in
        self.db = tmp / "state" / "syncd.db"
        env = {
            "SYNCD_SETTINGS": str(settings), "SYNCD_STATE_DIR": str(tmp / "state"),
            "SYNCD_HTTP__HOST": "127.0.0.1", "SYNCD_HTTP__PORT": str(port),
            "SYNCD_HTTP__PUBLIC_URL": f"http://127.0.0.1:{port}",
            "SYNCD_API__KEYS": json.dumps([API_KEY]),
            "SYNCD_GOOGLE__CLIENT_FILE": str(client_file),
            "SYNCD_GOOGLE__TOKEN_KEY_FILE": str(tmp / "token.key"),
            "SYNCD_GOOGLE__API_ENDPOINT": emu.base_url, "SYNCD_GOOGLE__AUTH_URI": emu.auth_uri,
            "SYNCD_GOOGLE__TOKEN_URI": emu.token_uri, "SYNCD_GOOGLE__REVOKE_URI": emu.revoke_uri,
            "SYNCD_GOOGLE__POLL_SECONDS": "1",
            # A killed node's claimed jobs come back after their lease: keep it short here.
            "SYNCD_JOBS__LEASE_SECONDS": "5", "SYNCD_JOBS__MAX_SLEEP_SECONDS": "0.2",
            "SYNCD_JOBS__BACKOFF_BASE_SECONDS": "0.2", "SYNCD_JOBS__BACKOFF_MAX_SECONDS": "2",
            "SYNCD_LOG__LEVEL": "WARNING",
        }
        self.node = NodeProcess(0, port, env, tmp / "work")
        self.kills = 0

    @property
    def url(self) -> str:
        return self.node.url

    def start(self) -> None:
        self.node.spawn(workers=2)

    def kill_and_restart(self) -> None:
        self.node.sigkill()
        self.kills += 1
        self.start()

    def query(self, sql: str) -> list[tuple]:
        """Read the daemon's own database beside it (WAL: readers never block it)."""
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


class Crm:
    """The CRM's REST calls and the users' phones, in the shape World expects. A call that
    meets a dead daemon is sent again until one answers: every call is idempotent."""

    def __init__(self, daemon: Daemon, emu: EmulatorServer) -> None:
        self.d, self.emu = daemon, emu
        self.http = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {API_KEY}"})
        self.calls = 0  # how far the workload has got: the kills are spread over it

    def req(self, method: str, path: str, **kw: object) -> httpx.Response:
        self.calls += 1
        deadline = time.monotonic() + 120
        while True:
            try:
                return self.http.request(method, self.d.url + path, **kw)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def task(self, task_id: str, actor: str, **fields: object) -> dict:
        r = self.req("PUT", f"/v1/tasks/{task_id}", json={"actor_id": actor, **fields})
        assert r.status_code == 200, r.text
        return r.json()

    def calendar(self, user: str) -> dict:
        return self.req("GET", f"/v1/users/{user}/calendar").json()

    def connect(self, user: str) -> None:
        r = self.req("POST", f"/v1/users/{user}/calendar/connect")
        consent = httpx.get(r.json()["authorization_url"], follow_redirects=False)
        assert consent.status_code == 302, consent.text
        back = urlparse(consent.headers["location"])
        r = self.req("GET", f"{back.path}?{back.query}", follow_redirects=False)
        assert r.status_code == 303, r.text

    def google(self, user: str):
        from google.oauth2.credentials import Credentials
        from googleapiclient.discovery import build

        tokens = self.emu.create_account(f"{user}@example.com",
                                         scopes=["https://www.googleapis.com/auth/calendar"])
        return build("calendar", "v3", credentials=Credentials(tokens["access_token"]),
                     static_discovery=True, client_options={"api_endpoint": self.emu.api_endpoint})

    def tasks_of(self, user: str) -> list[dict]:
        out, cursor = [], None
        while True:
            params = {"responsible_id": user, "limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = self.req("GET", "/v1/tasks", params=params).json()
            out += page["items"]
            if not (cursor := page["next_cursor"]):
                return out

    def events(self, user: str) -> list[dict]:
        cal = self.calendar(user)["calendar_id"]
        return [e for e in self.emu.control.events(f"{user}@example.com", cal)
                if e.get("status") != "cancelled"]


@pytest.fixture
def emulator():
    with EmulatorServer() as emu:
        yield emu


def test_killed_at_random_instants_converges(emulator: EmulatorServer, tmp_path: Path):
    emu, rng = emulator, random.Random(16)
    daemon = Daemon(tmp_path, emu)
    crm = Crm(daemon, emu)
    # Deadlines from tomorrow on: the daemon runs on the real clock.
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0,
                                                                     microsecond=0)
    world = World(crm, rng, USERS, start)  # type: ignore[arg-type]
    daemon.start()
    try:
        for user in USERS:
            r = crm.req("PUT", f"/v1/users/{user}", json={
                "name": user, "email": f"{user}@example.com", "timezone": world.zone[user],
                "channels": QUIET})
            assert r.status_code == 200, r.text
            emu.create_account(f"{user}@example.com", time_zone=world.zone[user])
            crm.connect(user)
        wait_for(lambda: all(crm.calendar(u)["state"] == "on" for u in USERS), 60, "setup")
        emu.faults.configure(error_rates={503: 0.10, 429: 0.05}, methods=FAULTY)

        # The kills fall at random points of the workload (CRM calls made), each a random
        # fraction of a second later: mid-request, mid-job, mid-start-up.
        expected_calls = crm.calls + TASKS + ROUNDS * CRM_OPS
        points = sorted(rng.sample(range(crm.calls, expected_calls), KILLS))
        workload_done = threading.Event()

        def killer() -> None:
            for point in points:
                while crm.calls < point and not workload_done.is_set():
                    time.sleep(0.01)
                time.sleep(rng.uniform(0, 0.8))
                daemon.kill_and_restart()

        world.rng = random.Random(17)  # the killer thread has its own draws
        chaos = threading.Thread(target=killer, daemon=True)
        chaos.start()
        world.create(TASKS)
        for _ in range(ROUNDS):
            crm_ops = world.crm_round(CRM_OPS)
            world.google_round(GOOGLE_OPS, crm_ops)
            if world.rng.random() < 0.4:
                emu.control.expire_sync_tokens()
            time.sleep(0.3)
        workload_done.set()
        chaos.join()
        assert daemon.kills == KILLS

        def converged() -> list[str]:
            unlinked = set(daemon.query(
                "SELECT user_id, task_id FROM event_links WHERE unlinked"))
            problems = mismatches(world, unlinked, crm.tasks_of, crm.events)
            outbox = daemon.query("SELECT count(*) FROM calendar_outbox")[0][0]
            return problems + ([f"{outbox} outbox rows"] if outbox else [])

        problems = wait_for(lambda: not converged(), 120, "convergence", converged)
        # Still true a few polls later: nothing was left half-done to flip it back.
        time.sleep(3)
        assert not (problems := converged()), problems[:30]

        unlinked = set(daemon.query("SELECT user_id, task_id FROM event_links WHERE unlinked"))
        assert unlinked <= world.google_deleted, unlinked - world.google_deleted
        tasks = {row[0]: dict(zip(("id", "author_id", "responsible_id", "completed_at",
                                   "completed_by"), row)) for row in daemon.query(
            "SELECT id, author_id, responsible_id, completed_at, completed_by FROM tasks")}
        told = Counter(row[0] for row in daemon.query(
            "SELECT task_id FROM entries WHERE kind = 'task_completed'"))
        problems = completion_problems(world, tasks, told)
        assert not problems, "\n".join(problems[:30])
        stats = emu.counters.snapshot()["by_status"]
        print(f"\ncrash: {daemon.kills} kills, {crm.calls} CRM calls, statuses {stats}")
    finally:
        daemon.node.ensure_dead()
        if daemon.node.lines:
            print("\n".join(daemon.node.lines[-20:]))


def wait_for(ok, seconds: float, what: str, why=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ok():
            return []
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {seconds}s: {(why() if why else '')!s:.3000}")
