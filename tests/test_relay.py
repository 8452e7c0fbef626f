"""N13 across nodes: a change made through one node reaches a tab streaming from another."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest

from syncd.daemon import build
from syncd.server import NodeServer
from tests.conftest import API_KEY, make_settings

pytestmark = pytest.mark.postgres


def test_N13_live_events_cross_nodes_on_postgres(postgres, tmp_path: Path):
    url = postgres.create_database()
    nodes = []
    for i in range(2):
        node = build(make_settings(tmp_path / f"n{i}", url))
        server = NodeServer(node, "127.0.0.1", 0)
        server.start()
        nodes.append(server)
    a, b = nodes
    crm = {"Authorization": f"Bearer {API_KEY}"}
    try:
        for uid in ("ann", "bob"):
            httpx.put(f"{b.url}/v1/users/{uid}", json={"name": uid}, headers=crm)
        token = httpx.post(f"{b.url}/v1/users/bob/tokens", headers=crm).json()["token"]
        seen: list[tuple[str, dict]] = []
        got_two = threading.Event()

        def listen() -> None:
            with httpx.stream("GET", f"{a.url}/v1/users/bob/stream",
                              params={"access_token": token}, timeout=20) as r:
                name = None
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        name = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and name:
                        seen.append((name, json.loads(line.split(":", 1)[1])))
                        if [n for n, _ in seen].count("unread_count") >= 2:
                            got_two.set()
                            return

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        for _ in range(100):
            if seen:
                break
            got_two.wait(0.05)
        assert seen[0] == ("unread_count", {"count": 0})
        r = httpx.put(f"{b.url}/v1/tasks/t1", headers=crm, json={
            "actor_id": "ann", "text": "Across nodes", "responsible_id": "bob"})
        assert r.status_code == 200
        assert got_two.wait(10), seen
        names = [n for n, _ in seen]
        assert names == ["unread_count", "notification", "unread_count"]
        assert seen[1][1]["kind"] == "task_assigned" and seen[2][1] == {"count": 1}
    finally:
        for server in nodes:
            server.stop()
