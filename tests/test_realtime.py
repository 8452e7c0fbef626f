"""End to end on the real clock: `syncd run` as an operator starts it, a task due in 5 min + 3 s,
its task_due in the center about 3 s later (N4) and on an open SSE stream."""

from __future__ import annotations

import json
import os
import queue as stdqueue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import API_KEY

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Daemon:
    proc: subprocess.Popen
    url: str
    log: Path

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10,
                            headers={"Authorization": f"Bearer {API_KEY}"})


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    port = free_port()
    env = {
        **os.environ,
        "SYNCD_SETTINGS": str(REPO / "settings.yaml"),
        "SYNCD_STATE_DIR": str(tmp_path / "state"),
        "SYNCD_HTTP__PORT": str(port),
        "SYNCD_API__KEYS": json.dumps([API_KEY]),
        "SYNCD_LOG__LEVEL": "WARNING",
    }
    env.pop("SYNCD_DATABASE__URL", None)
    log = tmp_path / "syncd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "syncd", "run"], env=env, cwd=tmp_path,
                                stdout=out, stderr=subprocess.STDOUT)
    d = Daemon(proc, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60  # starting is not what is timed; a busy box is slow
        while True:
            assert proc.poll() is None, f"syncd run exited:\n{log.read_text()}"
            try:
                if httpx.get(f"{d.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"syncd run never served:\n{log.read_text()}"
            time.sleep(0.05)
        yield d
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def read_stream(url: str, token: str, events: stdqueue.Queue, stop: threading.Event) -> None:
    """Parse server-sent events into (name, data, received_at) until `stop` is set."""
    try:
        with httpx.stream("GET", url, headers={"Authorization": f"Bearer {token}"},
                          timeout=httpx.Timeout(10, read=None)) as r:
            assert r.status_code == 200, r.read()
            name, data = "message", []
            for line in r.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    events.put((name, json.loads("\n".join(data)), datetime.now(UTC)))
                    name, data = "message", []
    except Exception as exc:  # noqa: BLE001 (surfaces in the test, not as a thread traceback)
        events.put(("error", repr(exc), datetime.now(UTC)))


def next_event(events: stdqueue.Queue, name: str, timeout: float, **match: object):
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            got, data, at = events.get(timeout=left)
        except stdqueue.Empty:
            break
        assert got != "error", data
        if got == name and all(data.get(k) == v for k, v in match.items()):
            return data, at
    raise AssertionError(f"no {name} event {match} within {timeout} s")


def test_task_due_reaches_center_and_stream_on_time(daemon: Daemon) -> None:
    with daemon.api() as api:
        for uid in ("ann", "bob"):
            assert api.put(f"/v1/users/{uid}", json={"name": uid.title()}).status_code == 200
        r = api.post("/v1/users/bob/tokens")
        assert r.status_code == 201, r.text
        token = r.json()["token"]

        events: stdqueue.Queue = stdqueue.Queue()
        stop = threading.Event()
        reader = threading.Thread(target=read_stream, daemon=True, args=(
            f"{daemon.url}/v1/users/bob/stream", token, events, stop))
        reader.start()
        assert next_event(events, "unread_count", 5)[0] == {"count": 0}  # the stream is open

        fire_at = datetime.now(UTC) + timedelta(seconds=3)
        r = api.put("/v1/tasks/t1", json={"actor_id": "ann", "text": "Call the client",
                                          "responsible_id": "bob",
                                          "due_at": (fire_at + timedelta(minutes=5)).isoformat()})
        assert r.status_code == 200, r.text
        assigned, _ = next_event(events, "notification", 2, kind="task_assigned")
        assert assigned["popup"] is True

        due, received_at = next_event(events, "notification", 3 + 2, kind="task_due")
        assert due["task_id"] == "t1"
        created = datetime.fromisoformat(due["created_at"])
        assert abs((created - fire_at).total_seconds()) < 2, (created, fire_at)
        assert abs((received_at - fire_at).total_seconds()) < 2, (received_at, fire_at)
        assert next_event(events, "unread_count", 2)[0] == {"count": 2}

        user = {"Authorization": f"Bearer {token}"}
        items = api.get("/v1/users/bob/notifications", headers=user).json()["items"]
        assert items[0]["kind"] == "task_due"
        assert items[0]["created_at"] == due["created_at"]  # the same instant, spelt the same
        stop.set()

    # a clean drain on SIGTERM (SPEC §7)
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(15) == 0, daemon.log.read_text()
