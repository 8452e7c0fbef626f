"""Live events across nodes (PostgreSQL LISTEN/NOTIFY): a change made on one node reaches a
user's open tab on another, so the counter is right in every tab (N13)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import text

from syncd.notify.hub import Event
from syncd.store.db import Database

log = logging.getLogger(__name__)

CHANNEL = "syncd_live"
LIMIT = 7000  # NOTIFY payloads stop at 8000 bytes; a long body is cut, the pop-up needs little


class Relay:
    def __init__(self, db: Database, node: str,
                 deliver: Callable[[str, list[Event]], None]) -> None:
        self.db = db
        self.node = node
        self.deliver = deliver
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def send(self, user_id: str, events: list[Event]) -> None:
        data = [{"name": e.name, "data": e.data} for e in events]
        payload = json.dumps({"from": self.node, "user": user_id, "events": data})
        if len(payload.encode()) > LIMIT:
            for item in data:
                if "body" in item["data"]:
                    item["data"] = {**item["data"], "body": item["data"]["body"][:500] + "…"}
            payload = json.dumps({"from": self.node, "user": user_id, "events": data})
        try:
            with self.db.engine.begin() as conn:
                conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                             {"channel": CHANNEL, "payload": payload})
        except Exception:  # a lost live event costs a tab its pop-up, never data
            log.exception("could not relay live events")

    def _receive(self, payload: str) -> None:
        msg = json.loads(payload)
        if msg["from"] == self.node:
            return
        user_id = msg["user"]
        self.deliver(user_id, [Event(user_id, e["name"], e["data"]) for e in msg["events"]])

    def _listen(self) -> None:
        url = self.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._receive(note.payload)
            except Exception:
                log.exception("live relay connection lost; reconnecting")
                self._stop.wait(2.0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="syncd-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
