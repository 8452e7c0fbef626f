"""Push notification channels (events.watch / channels.stop) and their delivery.

Notifications are POSTed off the request path by a task on the server's event loop, with
Google's X-Goog-* headers and no body: one `sync` message (number 1) when a channel opens, then
`exists` after changes. Like Google, several quick changes may be coalesced into one message,
and message numbers increase but are not consecutive.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from . import errors
from .counters import Counters
from .settings import EmulatorSettings
from .state import Calendar, Channel, EmulatorState

log = logging.getLogger(__name__)

USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"
_RETRY_STATUSES = {500, 502, 503, 504}
MAX_CHANNEL_ID = 64


def _http_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


class PushHub:
    def __init__(self, state: EmulatorState, settings: EmulatorSettings,
                 counters: Counters) -> None:
        self.state = state
        self.settings = settings
        self.counters = counters
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._pending: set[str] = set()
        self._order: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._message_number = 1
        state.listeners.append(self.on_change)

    # -- API methods -----------------------------------------------------------------------

    def watch(self, account: str, client_id: str, calendar: Calendar, body: Any,
              base_url: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.parse_error()
        channel_id, kind, address = body.get("id"), body.get("type"), body.get("address")
        if not channel_id:
            raise errors.required("Missing channel id.")
        if not isinstance(channel_id, str) or len(channel_id) > MAX_CHANNEL_ID:
            raise errors.bad_request(f"Invalid channel id {channel_id}.")
        if kind not in ("web_hook", "webhook"):
            raise errors.ApiError(400, "push.channelTypeNotSupported",
                                  f"Unsupported channel type: {kind}", domain="push")
        if not address or not isinstance(address, str) or "://" not in address:
            raise errors.ApiError(400, "push.webhookUrlNoHostOrAddress",
                                  f"WebHook callback must have a host: {address}", domain="push")
        if self.settings.require_https_webhooks and not address.startswith("https://"):
            raise errors.ApiError(400, "push.webhookUrlNotHttps",
                                  f"WebHook callback must be HTTPS: {address}", domain="push")
        now_ms = int(self.state.now().timestamp() * 1000)
        existing = self.state.channels.get(channel_id)
        if existing is not None and not existing.stopped and existing.expiration_ms > now_ms:
            raise errors.bad_request(f"Channel id {channel_id} not unique", "channelIdNotUnique")
        expiration = now_ms + self.settings.channel_default_ttl * 1000
        try:
            ttl = (body.get("params") or {}).get("ttl")
            if ttl is not None:
                expiration = now_ms + int(ttl) * 1000
            if body.get("expiration") is not None:
                expiration = int(body["expiration"])
        except (TypeError, ValueError):
            raise errors.bad_request("Invalid channel expiration.") from None
        expiration = min(expiration, now_ms + self.settings.channel_max_ttl * 1000)
        channel = Channel(
            id=channel_id, resource_id=secrets.token_urlsafe(20), calendar_id=calendar.id,
            resource_uri=f"{base_url}/calendar/v3/calendars/{quote(calendar.id, safe='')}"
                         "/events?alt=json",
            account=account, client_id=client_id, address=address, token=body.get("token"),
            expiration_ms=expiration)
        self.state.channels[channel_id] = channel
        self._schedule(channel, "sync")
        return self.describe(channel)

    @staticmethod
    def describe(channel: Channel) -> dict[str, Any]:
        out = {"kind": "api#channel", "id": channel.id, "resourceId": channel.resource_id,
               "resourceUri": channel.resource_uri, "expiration": str(channel.expiration_ms)}
        if channel.token is not None:
            out["token"] = channel.token
        return out

    def stop(self, client_id: str, body: Any) -> None:
        if not isinstance(body, dict):
            raise errors.parse_error()
        channel = self.state.channels.get(body.get("id") or "")
        if (channel is None or channel.stopped or channel.client_id != client_id
                or channel.resource_id != body.get("resourceId")):
            raise errors.not_found(f"Channel '{body.get('id')}' not found for project "
                                   f"'{client_id}'")
        channel.stopped = True

    # -- delivery --------------------------------------------------------------------------

    def on_change(self, calendar_id: str) -> None:
        """State listener: an event of `calendar_id` changed (called under the state lock)."""
        if not self.state.channels:
            return
        for channel in self.state.channels.values():
            if channel.calendar_id == calendar_id and not channel.stopped:
                self._schedule(channel, "exists")

    def _schedule(self, channel: Channel, resource_state: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if resource_state == "exists":
            if channel.id in self._pending:
                return
            self._pending.add(channel.id)
        loop.call_soon_threadsafe(self._start_delivery, channel, resource_state)

    def _start_delivery(self, channel: Channel, resource_state: str) -> None:
        task = asyncio.ensure_future(self._deliver(channel, resource_state))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, channel: Channel, resource_state: str) -> None:
        lock = self._order.setdefault(channel.id, asyncio.Lock())
        async with lock:
            if resource_state == "exists":
                self._pending.discard(channel.id)
            now_ms = int(self.state.now().timestamp() * 1000)
            if channel.stopped or channel.expiration_ms <= now_ms:
                return
            if resource_state == "sync":
                number = 1
            else:
                self._message_number += secrets.randbelow(3) + 1
                number = self._message_number
            channel.message_number = number
            headers = {
                "X-Goog-Channel-ID": channel.id,
                "X-Goog-Channel-Expiration": _http_date(channel.expiration_ms),
                "X-Goog-Resource-ID": channel.resource_id,
                "X-Goog-Resource-URI": channel.resource_uri,
                "X-Goog-Resource-State": resource_state,
                "X-Goog-Message-Number": str(number),
                "User-Agent": USER_AGENT,
            }
            if channel.token is not None:
                headers["X-Goog-Channel-Token"] = channel.token
            await self._post(channel, headers)

    async def _post(self, channel: Channel, headers: dict[str, str]) -> None:
        assert self._client is not None
        for attempt in range(max(1, self.settings.push_attempts)):
            if attempt:
                await asyncio.sleep(0.2 * 2 ** attempt)
            try:
                response = await self._client.post(channel.address, headers=headers,
                                                   content=b"")
            except httpx.HTTPError as exc:
                log.debug("push to %s failed: %s", channel.address, exc)
                continue
            if response.status_code not in _RETRY_STATUSES:
                ok = response.status_code < 300 or response.status_code == 102
                channel.delivered += ok
                channel.failed += not ok
                self.counters.push_result("delivered" if ok else f"http_{response.status_code}")
                return
        channel.failed += 1
        self.counters.push_result("failed")

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._client = httpx.AsyncClient(timeout=self.settings.push_timeout)

    async def close(self) -> None:
        self._loop = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def drain(self) -> None:
        """Wait until every queued notification has been attempted (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
