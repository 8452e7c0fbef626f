"""Fixtures for the delivery channels: a node built with channel settings, and loopback servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from syncd.api.app import create_app
from syncd.clock import ManualClock
from syncd.daemon import build
from syncd.store.tables import Delivery, Entry, Job
from tests.channels.servers import (
    Cert,
    HttpServer,
    LoopbackController,
    RecordingHandler,
    Reply,
    Request,
    self_signed,
    smtp_server,
)
from tests.conftest import Api, make_settings

MakeApi = Callable[..., Api]


@pytest.fixture
def make_api(tmp_path: Path, clock: ManualClock) -> Iterator[MakeApi]:
    """make_api(email={...}, webpush={...}, fcm={...}) → an Api on a node built with them."""
    made: list[tuple[TestClient, Api]] = []

    def make(**overrides: object) -> Api:
        node = build(make_settings(tmp_path, **overrides), clock)
        client = TestClient(create_app(node))
        client.__enter__()
        api = Api(client, node, clock)
        made.append((client, api))
        return api

    yield make
    for client, api in made:
        client.__exit__(None, None, None)
        for sender in api.node.deliverer.senders.values():
            getattr(sender, "close", lambda: None)()
        api.node.db.dispose()


@pytest.fixture
def smtp() -> Iterator[tuple[LoopbackController, RecordingHandler]]:
    handler = RecordingHandler()
    controller = smtp_server(handler)
    yield controller, handler
    controller.stop()


@pytest.fixture
def cert(tmp_path: Path) -> Cert:
    return self_signed(tmp_path)


@pytest.fixture
def http_server() -> Iterator[Callable[[Callable[[Request], Reply]], HttpServer]]:
    started: list[HttpServer] = []

    def start(respond: Callable[[Request], Reply]) -> HttpServer:
        server = HttpServer(respond).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    for server in started:
        assert server.errors == [], server.errors  # checks made inside the stand-ins


def deliveries(api: Api, channel: str) -> list[dict]:
    """Every delivery on one channel with its entry kind, job state and attempts, oldest first."""
    with api.node.db.read() as s:
        rows = s.execute(select(Delivery, Entry).join(Entry, Entry.id == Delivery.entry_id)
                         .where(Delivery.channel == channel).order_by(Delivery.id)).all()
        jobs = {j.key: j for j in s.execute(select(Job).where(Job.kind == "deliver")).scalars()}
    out = []
    for d, e in rows:
        job = jobs.get(f"deliver:{d.id}")
        out.append({"id": d.id, "kind": e.kind, "user_id": d.user_id, "state": d.state,
                    "reason": d.reason, "attempts": d.attempts,
                    "job_state": job.state if job else None, "entry_id": e.id})
    return out
