"""`syncd run` as a real subprocess: its own tmp state dir, settings file and a free port.

The port is 0 (the kernel picks one) and the test reads the URL from the daemon's "serving"
log line, so parallel tests (pytest-xdist) never race for a port.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

API_KEY = "ops-test-api-key-0123456789"
EMAIL_PASSWORD = "smtp-pass-Zq8vW2kT5rY"


def base_settings(state_dir: Path, db_url: str = "") -> dict[str, Any]:
    return {
        "state_dir": str(state_dir),
        "http": {"host": "127.0.0.1", "port": 0, "stop_timeout_seconds": 10},
        "database": {"url": db_url},
        "api": {"keys": [API_KEY]},
        "email": {"password": EMAIL_PASSWORD, "username": "mailer"},
        "jobs": {"max_sleep_seconds": 0.5},
        "log": {"level": "INFO", "json": True},
    }


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SYNCD_", "NOTIFY_SOCKET", "WATCHDOG_", "CREDENTIALS_DIRECTORY"))}
    env.update(extra)
    return env


@dataclass
class Daemon:
    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    url: str = ""
    _readers: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def spawn(cls, workdir: Path, settings: dict[str, Any], *args: str,
              env: dict[str, str] | None = None) -> Daemon:
        path = workdir / "settings.yaml"
        path.write_text(yaml.safe_dump(settings))
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", *args], cwd=workdir,
            env=clean_env(SYNCD_SETTINGS=str(path), **(env or {})),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        d = cls(proc)
        for stream, sink in ((proc.stdout, d.lines), (proc.stderr, d.err)):
            t = threading.Thread(target=_pump, args=(stream, sink), daemon=True)
            t.start()
            d._readers.append(t)
        return d

    @property
    def output(self) -> str:
        return "\n".join(self.lines) + "\n" + "\n".join(self.err)

    def records(self) -> list[dict]:
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def wait_serving(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in self.records():
                if rec.get("msg") == "serving":
                    self.url = rec["url"]
                    return self.url
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"syncd run did not start (rc={self.proc.poll()}):\n{self.output}")

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {API_KEY}"}, **kw)

    def terminate(self, timeout: float = 30) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds it took to exit)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"syncd run ignored SIGTERM for {timeout}s:\n{self.output}")
        self.join()
        return rc, time.monotonic() - started

    def wait(self, timeout: float = 30) -> int:
        rc = self.proc.wait(timeout)
        self.join()
        return rc

    def join(self) -> None:
        for t in self._readers:
            t.join(5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.join()


def _pump(stream: Any, sink: list[str]) -> None:
    for line in stream:
        sink.append(line.rstrip("\n"))


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Every daemon a test spawns is killed at the end, whatever happened."""
    spawned: list[Daemon] = []
    yield spawned
    for d in spawned:
        d.kill()
