"""Several `syncd run` processes on one PostgreSQL, and the outside world they talk to.

`NodeProcess` is one daemon configured only through SYNCD_* environment variables (an empty
settings file, so the repository's settings.yaml never leaks in); `Cluster` spreads CRM calls
over the live nodes and steps around a dead one; `SmtpSink` is a loopback SMTP server that
counts what it accepts by Message-ID.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SYNCD_", "NOTIFY_SOCKET", "WATCHDOG_", "CREDENTIALS_DIRECTORY"))}
    env.update(extra)
    return env


# -- SMTP -------------------------------------------------------------------------------

@dataclass
class Mail:
    message_id: str
    rcpt: tuple[str, ...]
    at: float
    subject: str = ""
    task: str = ""  # X-Syncd-Task


class SmtpSink:
    """aiosmtpd handler: keeps the Message-ID and recipients of every message it accepts."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        data = envelope.original_content or envelope.content or b""
        head = BytesHeaderParser(policy=default).parsebytes(data)
        with self.lock:
            self.mails.append(Mail(str(head.get("Message-ID", "")).strip(),
                                   tuple(envelope.rcpt_tos), time.monotonic(),
                                   str(head.get("Subject", "")), str(head.get("X-Syncd-Task", ""))))
        return "250 Message accepted for delivery"

    def by_id(self) -> Counter[str]:
        with self.lock:
            return Counter(m.message_id for m in self.mails)

    def count(self) -> int:
        with self.lock:
            return len(self.mails)


class _Loopback(Controller):
    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def start_smtp(sink: SmtpSink) -> Controller:
    controller = _Loopback(sink, hostname="127.0.0.1", port=0)
    controller.start()
    return controller


# -- one daemon -------------------------------------------------------------------------


@dataclass
class NodeProcess:
    index: int
    port: int
    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen | None = None
    lines: list[str] = field(default_factory=list)
    _readers: list[threading.Thread] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(self, workers: int = 2) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "--workers", str(workers)], cwd=self.workdir,
            env=clean_env(self.env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        t = threading.Thread(target=self._pump, daemon=True)
        t.start()
        self._readers.append(t)

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                break
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code in (200, 503):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"node {self.index} did not start (rc={self.proc and self.proc.poll()})"
                             f":\n{self.output()}")

    def output(self, last: int = 60) -> str:
        return "\n".join(self.lines[-last:])

    def sigkill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        if not self.alive:
            return self.proc.returncode if self.proc else 0
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"node {self.index} ignored SIGTERM:\n{self.output()}") from None

    def ensure_dead(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)
        for t in self._readers:
            t.join(5)


# -- the CRM's side -----------------------------------------------------------------------


class Cluster:
    """CRM calls spread round-robin over the live nodes. A call that cannot reach its node (it
    was killed, maybe mid-request) is sent again to the next one, as a CRM behind a load
    balancer would see it: every call here is an idempotent upsert, so that is safe."""

    def __init__(self, nodes: list[NodeProcess], api_key: str) -> None:
        self.nodes = nodes
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self._next = itertools.count()
        self._local = threading.local()
        self.rerouted = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client:
        c = getattr(self._local, "client", None)
        if c is None:
            c = self._local.client = httpx.Client(timeout=30, headers=self.headers)
        return c

    def call(self, method: str, path: str, *, node: int | None = None,
             ok: tuple[int, ...] = (200, 201, 204), **kw: Any) -> httpx.Response:
        start = next(self._next) if node is None else node
        last: Exception | None = None
        for attempt in range(len(self.nodes) * 3):
            n = self.nodes[(start + attempt) % len(self.nodes)]
            if not n.alive:
                continue
            try:
                r = self._client().request(method, n.url + path, **kw)
            except httpx.HTTPError as exc:  # the node died under us: the next one
                last = exc
                with self._lock:
                    self.rerouted += 1
                time.sleep(0.05)
                continue
            if r.status_code not in ok:
                with self._lock:
                    self.errors.append(f"{method} {path} on node {n.index}: "
                                       f"{r.status_code} {r.text[:300]}")
                if r.status_code >= 500:
                    continue
            return r
        raise AssertionError(f"{method} {path}: no node answered ({last!r})")
