"""The sd_notify protocol (syncd/systemd.py), against a real unix datagram socket bound here."""

from __future__ import annotations

import itertools
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.systemd import Notifier, Watchdog
from tests.ops.conftest import Daemon, base_settings


class Listener:
    """Plays systemd: binds the socket and records every datagram with its arrival time."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + address[1:].encode() if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def lines(self) -> list[tuple[float, str]]:
        return [(t, line) for t, msg in list(self.messages) for line in msg.split("\n")]

    def wait_for(self, line: str, timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, got in self.lines():
                if got == line:
                    return t
            time.sleep(0.02)
        raise AssertionError(f"no {line!r} in {self.lines()}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def path_listener() -> Iterator[Listener]:
    # A short path: sun_path holds 108 bytes, pytest's tmp_path can be longer.
    d = tempfile.mkdtemp(prefix="sdn")
    listener = Listener(os.path.join(d, "notify"))
    yield listener
    listener.close()
    os.unlink(listener.address)
    os.rmdir(d)


@pytest.fixture
def abstract_listener() -> Iterator[Listener]:
    listener = Listener(f"@syncd-test-{uuid.uuid4().hex}")
    yield listener
    listener.close()


def test_messages_reach_a_path_socket(path_listener: Listener) -> None:
    n = Notifier(environ={"NOTIFY_SOCKET": path_listener.address})
    assert n.enabled
    assert n.ready("serving on x")
    assert n.status("busy\nreally")  # a newline would start a new KEY=value line
    assert n.stopping()
    time.sleep(0.3)
    assert [m for _, m in path_listener.messages] == [
        "READY=1\nSTATUS=serving on x", "STATUS=busy really", "STOPPING=1"]


def test_messages_reach_an_abstract_socket(abstract_listener: Listener) -> None:
    n = Notifier(environ={"NOTIFY_SOCKET": abstract_listener.address})
    assert n.watchdog()
    abstract_listener.wait_for("WATCHDOG=1", timeout=2)


def test_without_notify_socket_everything_is_a_no_op() -> None:
    n = Notifier(environ={})
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and not n.stopping() and not n.status("x")
    assert n.watchdog_interval() is None


def test_a_missing_socket_is_logged_not_raised(tmp_path: Path) -> None:
    n = Notifier(environ={"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.ready() is False


@pytest.mark.parametrize("env, expected", [
    ({"WATCHDOG_USEC": "2000000"}, 1.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "junk"}, None),
    ({}, None),
])
def test_watchdog_interval_is_half_of_watchdog_usec(env: dict, expected: float | None) -> None:
    assert Notifier(environ={"NOTIFY_SOCKET": "@x", **env}).watchdog_interval() == expected


def test_watchdog_pings_only_while_healthy(abstract_listener: Listener) -> None:
    healthy = threading.Event()
    healthy.set()
    n = Notifier(environ={"NOTIFY_SOCKET": abstract_listener.address})
    dog = Watchdog(n, healthy.is_set, interval=0.05)
    dog.start()
    try:
        time.sleep(0.3)
        pings = lambda: sum(1 for _, line in abstract_listener.lines() if line == "WATCHDOG=1")
        assert pings() >= 3
        healthy.clear()
        time.sleep(0.15)
        before = pings()
        time.sleep(0.3)
        assert pings() == before  # unhealthy: silence, and systemd restarts the node
        assert any(line.startswith("STATUS=unhealthy") for _, line in abstract_listener.lines())
        healthy.set()
        time.sleep(0.3)
        assert pings() > before
    finally:
        dog.stop()


def test_a_raising_health_check_means_no_ping(abstract_listener: Listener) -> None:
    n = Notifier(environ={"NOTIFY_SOCKET": abstract_listener.address})
    dog = Watchdog(n, lambda: 1 / 0, interval=1)
    assert dog.tick() is False


def test_syncd_run_speaks_the_notify_protocol(tmp_path: Path, abstract_listener: Listener,
                                              daemons: list[Daemon]) -> None:
    d = Daemon.spawn(tmp_path, base_settings(tmp_path), env={
        "NOTIFY_SOCKET": abstract_listener.address, "WATCHDOG_USEC": "2000000"})
    daemons.append(d)
    ready = abstract_listener.wait_for("READY=1", timeout=120)
    url = d.wait_serving()
    with d.client() as c:  # READY=1 means serving: the port answers
        assert c.get("/healthz").status_code == 200
    statuses = [line for _, line in abstract_listener.lines() if line.startswith("STATUS=")]
    assert any(url in s for s in statuses), statuses

    # WATCHDOG_USEC=2 s: a ping every ~1 s (half), while the workers are healthy.
    time.sleep(3.3)
    pings = [t for t, line in abstract_listener.lines() if line == "WATCHDOG=1" and t >= ready]
    assert len(pings) >= 3, abstract_listener.lines()
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    # ~1 s apart (not 2 s): generous bounds for a loaded CI machine's thread scheduling.
    assert all(0.5 < g < 1.9 for g in gaps), gaps
    assert 0.8 < sum(gaps) / len(gaps) < 1.4, gaps

    rc, took = d.terminate()
    assert rc == 0, d.output
    assert took < 10  # http.stop_timeout_seconds in base_settings
    stopping = abstract_listener.wait_for("STOPPING=1", timeout=1)
    assert stopping > pings[-1]
    assert not [t for t, line in abstract_listener.lines() if line == "WATCHDOG=1" and t > stopping]
