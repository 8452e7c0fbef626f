"""The emulator as one ASGI application.

Calendar API and batch traffic take a lean path straight to the Dispatcher (no framework
routing, no per-request allocation beyond the request itself), because benchmarks of the daemon
must measure the daemon. OAuth and admin pages go through Starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette

from .admin import AdminApi
from .api import ApiRequest, Dispatcher, route_of
from .batch import BatchEndpoint
from .calendar import CalendarApi
from .clock import AdjustableClock, Clock
from .control import Control
from .counters import Counters
from .errors import not_found
from .faults import Faults
from .grants import Grants
from .oauth import OAuthEndpoints
from .push import PushHub
from .settings import EmulatorSettings
from .state import EmulatorState

log = logging.getLogger(__name__)

BATCH_PATH = "/batch/calendar/v3"
_PURGE_EVERY = 60.0

Scope = dict[str, Any]


class Emulator:
    def __init__(self, settings: EmulatorSettings | None = None, clock: Clock | None = None) -> None:
        self.settings = settings or EmulatorSettings()
        self.clock = clock or AdjustableClock()
        self.state = EmulatorState(self.clock)
        self.counters = Counters()
        self.grants = Grants(self.state, self.settings)
        self.push = PushHub(self.state, self.settings, self.counters)
        self.calendar = CalendarApi(self.state, self.settings, self.push)
        self.faults = Faults(self.settings, self.clock)
        self.dispatcher = Dispatcher(self.state, self.grants, self.calendar, self.faults,
                                     self.counters)
        self.batch = BatchEndpoint(self.dispatcher, self.settings.max_batch_size)
        self.control = Control(state=self.state, grants=self.grants, calendar=self.calendar,
                               faults=self.faults, counters=self.counters, push=self.push,
                               settings=self.settings, clock=self.clock)
        path = self.settings.state_file
        if path and os.path.exists(path):
            self.load(path)
        self.grants.ensure_default_client()
        self.pages = Starlette(routes=[*OAuthEndpoints(self.state, self.grants,
                                                       self.settings).routes(),
                                       *AdminApi(self.control, self.faults).routes()])
        self._housekeeping: asyncio.Task[None] | None = None

    def load(self, path: str) -> None:
        with open(path, encoding="utf-8") as fh:
            self.state.load_json(json.load(fh), self.calendar.place_event)

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path = scope["path"]
        if scope["type"] == "http" and (path.startswith("/calendar/v3/") or path == BATCH_PATH):
            await self._api(scope, receive, send)
            return
        self.counters.http_request("admin" if path.startswith("/emulator/") else "oauth")
        await self.pages(scope, receive, send)

    async def _api(self, scope: Scope, receive: Any, send: Any) -> None:
        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        # ASGI servers deliver header names lower-cased already.
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        path = path.split("?", 1)[0]
        http_method = scope["method"]
        if http_method == "POST" and "x-http-method-override" in headers:
            http_method = headers["x-http-method-override"].upper()
        base_url = self.settings.public_url.rstrip("/") or \
            f"{scope.get('scheme', 'http')}://{headers.get('host', 'localhost')}"
        is_batch = path == BATCH_PATH
        route = None if is_batch else route_of(http_method, path)
        self.counters.http_request("batch" if is_batch else "api")
        delay, drop = self.faults.http_level("batch" if is_batch else route and route[0],
                                             http_method, path)
        if delay:
            await asyncio.sleep(delay)
        if drop:
            await self._drop(send)
            return
        if is_batch:
            if http_method != "POST":
                error = not_found()
                status, out_headers, payload = error.code, {"Content-Type": "application/json"}, \
                    error.to_bytes()
            else:
                status, out_headers, payload = self.batch.handle(body, headers, base_url)
        else:
            params = _query(scope.get("query_string", b""))
            response = self.dispatcher.handle(ApiRequest(
                method=http_method, path=path, params=params, headers=headers, body=body,
                base_url=base_url), route=route)
            status, out_headers, payload = response.status, response.headers, response.body
        raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out_headers.items()]
        raw_headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": payload})

    @staticmethod
    async def _drop(send: Any) -> None:
        """Close the TCP connection without a response, as a flaky network would."""
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is None:
            # Unknown server: the closest thing is a response cut off mid-way.
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"100")]})
            raise ConnectionAbortedError("emulated dropped connection")
        transport.abort()
        # Let the server notice the disconnect before the app returns, so it does not try to
        # answer on a dead socket.
        for _ in range(3):
            await asyncio.sleep(0)

    # -- lifecycle -------------------------------------------------------------------------

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def start(self) -> None:
        self.push.start(asyncio.get_running_loop())
        self._housekeeping = asyncio.ensure_future(self._keep_house())

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        await self.push.close()
        if self.settings.state_file:
            self.state.save(self.settings.state_file)

    def _fingerprint(self) -> tuple[int, ...]:
        s = self.state
        return (s.seq, s.etag_counter, s.sync_epoch, len(s.accounts), len(s.clients), len(s.calendars),
                len(s.refresh_tokens), len(s.access_tokens), len(s.channels))

    async def _keep_house(self) -> None:
        """Periodic saving (never per request) and purging of expired tokens."""
        saved = self._fingerprint()
        since_purge = 0.0
        interval = max(0.5, self.settings.save_interval)
        while True:
            await asyncio.sleep(interval)
            since_purge += interval
            if since_purge >= _PURGE_EVERY:
                since_purge = 0.0
                self.grants.purge_expired()
            current = self._fingerprint()
            if self.settings.state_file and current != saved:
                try:
                    await asyncio.to_thread(self.state.save, self.settings.state_file)
                    saved = current
                except OSError:
                    log.exception("could not save emulator state to %s",
                                  self.settings.state_file)


@lru_cache(maxsize=512)
def _parsed_query(query: bytes) -> tuple[tuple[str, tuple[str, ...]], ...]:
    pairs = parse_qs(query.decode("latin-1"), keep_blank_values=True)
    return tuple((k, tuple(v)) for k, v in pairs.items())


def _query(query: bytes) -> dict[str, list[str]]:
    # Clients repeat the same few query strings ("alt=json"), so parsing is memoised.
    return {k: list(v) for k, v in _parsed_query(query)}


def create_app(settings: EmulatorSettings | None = None, clock: Clock | None = None) -> Emulator:
    """The emulator as an ASGI application (also exposing .state, .control, .counters...)."""
    return Emulator(settings, clock)

