"""The mirror against the emulator, through the real google-api-python-client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from syncd.api.app import create_app
from syncd.clock import ManualClock
from syncd.daemon import build
from syncd.emulator.server import EmulatorServer
from tests.conftest import START, Api, make_settings


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """A fresh Google per test: accounts, counters and faults never leak between tests."""
    with EmulatorServer() as emu:
        yield emu


def google_settings(emu: EmulatorServer, tmp_path: Path, **extra: object) -> dict:
    client_file = tmp_path / "google-client.json"
    client_file.write_text(json.dumps(emu.client_config()))
    return {"client_file": str(client_file), "token_key_file": str(tmp_path / "token.key"),
            "api_endpoint": emu.base_url, "auth_uri": emu.auth_uri, "token_uri": emu.token_uri,
            "revoke_uri": emu.revoke_uri, **extra}


class Mirror(Api):
    emu: EmulatorServer

    def connect(self, user_id: str) -> None:
        """The whole G1 web flow: our connect URL → the emulator's consent (login_hint) →
        our callback; then the setup job creates the calendar."""
        r = self.req("POST", f"/v1/users/{user_id}/calendar/connect")
        assert r.status_code == 200, r.text
        consent = httpx.get(r.json()["authorization_url"], follow_redirects=False)
        assert consent.status_code == 302, consent.text
        back = urlparse(consent.headers["location"])
        r = self.client.get(f"{back.path}?{back.query}", follow_redirects=False)
        assert r.status_code == 303, r.text
        self.sync()
        assert self.calendar(user_id)["state"] == "on"

    def callback_params(self, user_id: str) -> dict[str, str]:
        r = self.req("POST", f"/v1/users/{user_id}/calendar/connect")
        consent = httpx.get(r.json()["authorization_url"], follow_redirects=False)
        return {k: v[0] for k, v in parse_qs(urlparse(consent.headers["location"]).query).items()}

    def calendar(self, user_id: str) -> dict:
        return self.req("GET", f"/v1/users/{user_id}/calendar").json()

    def sync(self, rounds: int = 10) -> None:
        """Run due jobs until the queue is quiet (pushes, pulls, their follow-ups)."""
        for _ in range(rounds):
            if not self.node.worker.run_due():
                return

    def api_calls(self, user_id: str) -> int:
        return self.emu.counters.snapshot()["by_account"].get(f"{user_id}@example.com", 0)

    def round_trips(self) -> int:
        return self.emu.counters.snapshot()["http_requests"]

    def link(self, user_id: str, task_id: str):
        from syncd.store.tables import EventLink

        with self.node.db.read() as s:
            return s.get(EventLink, (user_id, task_id))

    def events(self, user_id: str) -> list[dict]:
        """What Google holds in the user's dedicated calendar (the emulator's admin view)."""
        cal_id = self.calendar(user_id)["calendar_id"]
        return [e for e in self.emu.control.events(f"{user_id}@example.com", cal_id)
                if e.get("status") != "cancelled"]

    def google(self, user_id: str):
        """A Calendar client acting as the user in Google (their phone, say)."""
        from google.oauth2.credentials import Credentials
        from googleapiclient.discovery import build as gbuild

        tokens = self.emu.create_account(f"{user_id}@example.com",
                                         scopes=["https://www.googleapis.com/auth/calendar"])
        creds = Credentials(tokens["access_token"])
        return gbuild("calendar", "v3", credentials=creds, static_discovery=True,
                      client_options={"api_endpoint": self.emu.api_endpoint})


@contextmanager
def running_mirror(emulator: EmulatorServer, tmp_path: Path, url: str = "") -> Iterator[Mirror]:
    clock = ManualClock(START)
    google = google_settings(emulator, tmp_path)
    if url.startswith("postgresql"):  # nodes on PostgreSQL share an installed key, not a made one
        Path(google["token_key_file"]).write_bytes(Fernet.generate_key())
    node = build(make_settings(tmp_path, url, google=google), clock)
    with TestClient(create_app(node)) as client:
        m = Mirror(client, node, clock)
        m.emu = emulator
        yield m
    node.db.dispose()


@pytest.fixture
def mirror(emulator: EmulatorServer, tmp_path: Path) -> Iterator[Mirror]:
    with running_mirror(emulator, tmp_path) as m:
        yield m


def add_people(m: Mirror, *names: str, tz: str = "Europe/Berlin") -> None:
    for name in names:
        m.user(name, timezone=tz)
        m.emu.create_account(f"{name}@example.com", time_zone=tz)
