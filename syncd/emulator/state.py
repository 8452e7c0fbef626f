"""The emulator's whole world in memory: accounts, OAuth clients and grants, calendars, events,
push channels. One re-entrant lock guards it; every request holds it for its whole (short,
non-blocking) handling, which keeps each API call atomic like Google's per-resource writes.

Optionally saved to a JSON file (never per request: on demand, periodically and at shutdown).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .clock import Clock

FORMAT_VERSION = 1


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    kind: str = "installed"  # "installed" (desktop) or "web", as in client_secrets.json
    name: str = "syncd"


@dataclass
class Account:
    email: str
    time_zone: str


@dataclass
class RefreshToken:
    token: str
    account: str
    client_id: str
    scopes: list[str]


@dataclass
class AccessToken:
    token: str
    account: str
    client_id: str
    scopes: frozenset[str]
    expires_at: float
    refresh_token: str | None


@dataclass
class AuthCode:
    code: str
    account: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    expires_at: float
    offline: bool
    new_refresh_token: bool
    challenge: str | None = None
    challenge_method: str | None = None


@dataclass
class Event:
    data: dict[str, Any]
    seq: int
    index: int
    # Instants (epoch seconds) of start and end, all-day dates resolved in the calendar's zone.
    start_ts: float = 0.0
    end_ts: float = 0.0


@dataclass
class Calendar:
    id: str
    owner: str
    summary: str
    time_zone: str
    etag: str
    primary: bool = False
    description: str | None = None
    location: str | None = None
    created_by: str | None = None  # OAuth client id that created it (calendar.app.created)
    seq: int = 0
    next_index: int = 0
    events: dict[str, Event] = field(default_factory=dict)


@dataclass
class Channel:
    id: str
    resource_id: str
    resource_uri: str
    calendar_id: str
    account: str
    client_id: str
    address: str
    token: str | None
    expiration_ms: int
    message_number: int = 0
    delivered: int = 0
    failed: int = 0
    stopped: bool = False


class EmulatorState:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.listeners: list[Callable[[str], None]] = []
        self._clear()

    def _clear(self) -> None:
        self.secret = secrets.token_bytes(32)
        self.clients: dict[str, OAuthClient] = {}
        self.accounts: dict[str, Account] = {}
        self.calendars: dict[str, Calendar] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.auth_codes: dict[str, AuthCode] = {}
        self.channels: dict[str, Channel] = {}
        # Bumped to invalidate every sync token at once (admin "expire sync tokens").
        self.sync_epoch = 0
        self._seq = 0
        self._etag = 0

    def reset(self) -> None:
        with self.lock:
            self._clear()

    # -- counters shared by every resource -------------------------------------------------

    def now(self) -> datetime:
        return self.clock()

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def etag_counter(self) -> int:
        return self._etag

    def next_etag(self) -> str:
        # Unique and increasing, shaped like Google's microsecond-based etags.
        self._etag = max(self._etag + 1, int(self.clock().timestamp() * 1_000_000))
        return f'"{self._etag}"'

    def changed(self, calendar_id: str) -> None:
        for listener in self.listeners:
            listener(calendar_id)

    # -- lookups ---------------------------------------------------------------------------

    def primary_calendar(self, email: str) -> Calendar:
        return self.calendars[email]

    def calendars_of(self, email: str) -> list[Calendar]:
        return [c for c in self.calendars.values() if c.owner == email]

    def add_account(self, email: str, time_zone: str) -> Account:
        with self.lock:
            account = self.accounts.get(email)
            if account is None:
                account = Account(email=email, time_zone=time_zone)
                self.accounts[email] = account
                self.calendars[email] = Calendar(
                    id=email, owner=email, summary=email, time_zone=time_zone,
                    etag=self.next_etag(), primary=True)
            return account

    # -- persistence -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        with self.lock:
            return {
                "version": FORMAT_VERSION,
                "secret": self.secret.hex(),
                "seq": self._seq,
                "etag": self._etag,
                "sync_epoch": self.sync_epoch,
                "clients": [asdict(c) for c in self.clients.values()],
                "accounts": [asdict(a) for a in self.accounts.values()],
                "refresh_tokens": [asdict(r) for r in self.refresh_tokens.values()],
                "access_tokens": [
                    {**asdict(t), "scopes": sorted(t.scopes)} for t in self.access_tokens.values()],
                "channels": [asdict(c) for c in self.channels.values()],
                "calendars": [
                    {**{k: v for k, v in asdict(c).items() if k != "events"},
                     "events": [{"data": e.data, "seq": e.seq, "index": e.index}
                                for e in c.events.values()]}
                    for c in self.calendars.values()],
            }

    def load_json(self, doc: dict[str, Any], place_event: Callable[[Calendar, Event], None]) -> None:
        """Replace the state with a saved document; `place_event` recomputes derived fields."""
        if doc.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported emulator state version {doc.get('version')!r}")
        with self.lock:
            self._clear()
            self.secret = bytes.fromhex(doc["secret"])
            self._seq, self._etag, self.sync_epoch = doc["seq"], doc["etag"], doc["sync_epoch"]
            self.clients = {c["client_id"]: OAuthClient(**c) for c in doc["clients"]}
            self.accounts = {a["email"]: Account(**a) for a in doc["accounts"]}
            self.refresh_tokens = {r["token"]: RefreshToken(**r) for r in doc["refresh_tokens"]}
            self.access_tokens = {
                t["token"]: AccessToken(**{**t, "scopes": frozenset(t["scopes"])})
                for t in doc["access_tokens"]}
            self.channels = {c["id"]: Channel(**c) for c in doc["channels"]}
            for raw in doc["calendars"]:
                events = raw.pop("events")
                calendar = Calendar(**raw)
                self.calendars[calendar.id] = calendar
                for e in events:
                    event = Event(data=e["data"], seq=e["seq"], index=e["index"])
                    place_event(calendar, event)
                    calendar.events[event.data["id"]] = event

    def save(self, path: str) -> None:
        doc = self.to_json()
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.replace(tmp, path)
