"""Shared fixtures: databases on both backends, a node on a manual clock, an API client."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from syncd.api.app import create_app
from syncd.channels.registry import Registry
from syncd.clock import ManualClock
from syncd.daemon import Node, build
from syncd.settings import Settings
from syncd.store.db import Database
from tests.support.postgres import Postgres, pg_bin

API_KEY = "test-api-key-0123456789"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    if pg_bin() is None:
        pytest.skip("PostgreSQL binaries (pg_ctl) are not installed on this machine")
    pg = Postgres().start()
    yield pg
    pg.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL: the test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'syncd.db'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated database, once on SQLite and once on PostgreSQL."""
    d = Database(db_url)
    d.upgrade()
    yield d
    d.dispose()


def make_settings(tmp_path: Path, url: str = "", **overrides: object) -> Settings:
    base: dict = {"state_dir": tmp_path, "database": {"url": url}, "api": {"keys": [API_KEY]},
                      "log": {"level": "WARNING", "json": False}}
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def node(tmp_path: Path, clock: ManualClock) -> Iterator[Node]:
    n = build(make_settings(tmp_path), clock)
    yield n
    n.db.dispose()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Api:
    """A CRM-side client on a node whose clock the test moves."""

    client: TestClient
    node: Node
    clock: ManualClock

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or API_KEY}"}

    def req(self, method: str, path: str, token: str | None = None, **kw):
        return self.client.request(method, path, headers=self.headers(token), **kw)

    def user(self, user_id: str, *, push: bool = False, **fields: object) -> dict:
        """push: also give them a browser subscribed to Web Push and a phone with the app, so
        their browser and mobile deliveries have somewhere to go."""
        fields.setdefault("name", user_id.title())
        fields.setdefault("email", f"{user_id}@example.com")
        r = self.req("PUT", f"/v1/users/{user_id}", json=fields)
        assert r.status_code == 200, r.text
        if push:
            registry = Registry(self.node.db, self.clock)
            browser = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
            registry.subscribe_webpush(user_id, f"https://push.example.com/{user_id}",
                                       b64url(browser), b64url(os.urandom(16)))
            registry.register_device(user_id, "fcm", f"fcm-token-{user_id}")
        return r.json()

    def task(self, task_id: str, actor: str, **fields: object) -> dict:
        r = self.req("PUT", f"/v1/tasks/{task_id}", json={"actor_id": actor, **fields})
        assert r.status_code == 200, r.text
        return r.json()

    def entries(self, user_id: str, **params: object) -> list[dict]:
        r = self.req("GET", f"/v1/users/{user_id}/notifications", params={"limit": 200, **params})
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def unread(self, user_id: str) -> int:
        return self.req("GET", f"/v1/users/{user_id}/notifications/unread-count").json()["count"]

    def advance(self, **delta: float) -> int:
        """Move the clock and run every job now due; returns how many ran."""
        self.clock.advance(**delta)
        return self.node.worker.run_due()

    def deliveries(self, user_id: str | None = None) -> list:
        from sqlmodel import select

        from syncd.store.tables import Delivery, Entry

        with self.node.db.read() as s:
            stmt = select(Delivery, Entry).join(Entry, Entry.id == Delivery.entry_id)
            if user_id:
                stmt = stmt.where(Delivery.user_id == user_id)
            return [(d.channel, e.kind, d.state, d.user_id) for d, e in s.execute(stmt).all()]

    def delivery_rows(self, user_id: str | None = None) -> list[dict]:
        """Every delivery with its entry's identity, send_after and reason, oldest first."""
        from sqlmodel import select

        from syncd.store.tables import Delivery, Entry

        with self.node.db.read() as s:
            stmt = (select(Delivery, Entry).join(Entry, Entry.id == Delivery.entry_id)
                    .order_by(Delivery.id))
            if user_id:
                stmt = stmt.where(Delivery.user_id == user_id)
            return [{"id": d.id, "channel": d.channel, "kind": e.kind, "state": d.state,
                     "reason": d.reason, "user_id": d.user_id, "task_id": e.task_id,
                     "occurrence": e.occurrence, "entry_id": e.id, "send_after": d.send_after,
                     "entry_created_at": e.created_at} for d, e in s.execute(stmt).all()]

    def entry_rows(self, user_id: str | None = None) -> list[dict]:
        """Every center entry ever made, removed ones included, with its N11 identity."""
        from sqlmodel import select

        from syncd.store.tables import Entry

        with self.node.db.read() as s:
            stmt = select(Entry).order_by(Entry.id)
            if user_id:
                stmt = stmt.where(Entry.user_id == user_id)
            return [{"id": e.id, "user_id": e.user_id, "task_id": e.task_id, "kind": e.kind,
                     "occurrence": e.occurrence, "created_at": e.created_at,
                     "read_at": e.read_at, "removed_at": e.removed_at}
                    for e in s.execute(stmt).scalars()]

    def job_rows(self) -> list[dict]:
        """Every job row (timers, deliveries, …) with its key, state and due time."""
        from sqlmodel import select

        from syncd.store.tables import Job

        with self.node.db.read() as s:
            return [{"id": j.id, "kind": j.kind, "key": j.key, "state": j.state,
                     "due_at": j.due_at, "payload": j.payload}
                    for j in s.execute(select(Job).order_by(Job.id)).scalars()]

    def token(self, user_id: str) -> str:
        r = self.req("POST", f"/v1/users/{user_id}/tokens")
        assert r.status_code == 201, r.text
        return r.json()["token"]


@pytest.fixture
def api(node: Node, clock: ManualClock) -> Iterator[Api]:
    with TestClient(create_app(node)) as client:
        yield Api(client, node, clock)
