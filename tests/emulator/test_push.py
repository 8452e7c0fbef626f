"""Push channels: events.watch, Google's notification headers, channels.stop, expiry."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from googleapiclient.errors import HttpError

from .support import error_of, timed


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records every notification's headers."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        self.delay = 0.0
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(receiver.delay)
                if receiver.fail_next:
                    receiver.fail_next -= 1
                    self.send_response(503)
                else:
                    receiver.received.append({k.lower(): v for k, v in self.headers.items()})
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/google"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def states(self, channel_id: str) -> list[str]:
        return [r["x-goog-resource-state"] for r in self.received
                if r["x-goog-channel-id"] == channel_id]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def watch(account, calendar_id, receiver, channel_id, **extra):
    return account.service.events().watch(calendarId=calendar_id, body={
        "id": channel_id, "type": "web_hook", "address": receiver.url, **extra}).execute()


def add_event(account, calendar_id):
    return account.service.events().insert(calendarId=calendar_id, body=timed(
        "2030-05-01T09:00:00Z", "2030-05-01T09:30:00Z")).execute()


def test_watch_sends_sync_then_exists_with_googles_headers(emulator, account, calendar_id,
                                                           receiver):
    channel = watch(account, calendar_id, receiver, "chan-headers", token="secret-token")
    assert channel["kind"] == "api#channel" and channel["id"] == "chan-headers"
    assert channel["resourceUri"].endswith("/events?alt=json")
    now_ms = emulator.clock().timestamp() * 1000
    assert abs(int(channel["expiration"]) - (now_ms + 604_800_000)) < 60_000
    emulator.drain_push()
    add_event(account, calendar_id)
    emulator.drain_push()
    sync, exists = receiver.received
    assert sync["x-goog-resource-state"] == "sync" and sync["x-goog-message-number"] == "1"
    assert exists["x-goog-resource-state"] == "exists"
    assert int(exists["x-goog-message-number"]) > 1
    for message in (sync, exists):
        assert message["x-goog-channel-id"] == "chan-headers"
        assert message["x-goog-channel-token"] == "secret-token"
        assert message["x-goog-resource-id"] == channel["resourceId"]
        assert message["x-goog-resource-uri"] == channel["resourceUri"]
        assert message["x-goog-channel-expiration"].endswith(" GMT")


def test_notifications_are_sent_off_the_request_path(emulator, account, calendar_id, receiver):
    receiver.delay = 1.0
    watch(account, calendar_id, receiver, "chan-slow")
    started = time.monotonic()
    add_event(account, calendar_id)
    assert time.monotonic() - started < 0.5
    emulator.drain_push()
    assert "exists" in receiver.states("chan-slow")


def test_failed_deliveries_are_retried(emulator, account, calendar_id, receiver):
    receiver.fail_next = 1
    watch(account, calendar_id, receiver, "chan-retry")
    emulator.drain_push()
    assert receiver.states("chan-retry") == ["sync"]


def test_stop_ends_a_channel(emulator, account, calendar_id, receiver):
    channel = watch(account, calendar_id, receiver, "chan-stop")
    emulator.drain_push()
    account.service.channels().stop(body={"id": channel["id"],
                                          "resourceId": channel["resourceId"]}).execute()
    add_event(account, calendar_id)
    emulator.drain_push()
    assert receiver.states("chan-stop") == ["sync"]
    with pytest.raises(HttpError) as excinfo:
        account.service.channels().stop(body={"id": channel["id"],
                                              "resourceId": channel["resourceId"]}).execute()
    assert error_of(excinfo)[:2] == (404, "notFound")


def test_channels_expire(emulator, account, calendar_id, receiver):
    channel = watch(account, calendar_id, receiver, "chan-ttl", params={"ttl": "60"})
    assert int(channel["expiration"]) <= emulator.clock().timestamp() * 1000 + 60_000
    emulator.drain_push()
    emulator.advance_clock(61)
    add_event(account, calendar_id)
    emulator.drain_push()
    assert receiver.states("chan-ttl") == ["sync"]
    expired = [c for c in emulator.control.channels() if c["id"] == "chan-ttl"]
    assert expired[0]["expired"] is True


def test_channel_ids_must_be_unique_while_active(account, calendar_id, receiver):
    watch(account, calendar_id, receiver, "chan-dup")
    with pytest.raises(HttpError) as excinfo:
        watch(account, calendar_id, receiver, "chan-dup")
    assert error_of(excinfo)[:2] == (400, "channelIdNotUnique")


def test_https_webhooks_can_be_required(emulator, account, calendar_id, receiver):
    emulator.control.config(require_https_webhooks=True)
    with pytest.raises(HttpError) as excinfo:
        watch(account, calendar_id, receiver, "chan-http")
    assert error_of(excinfo)[:2] == (400, "push.webhookUrlNotHttps")


def test_only_web_hook_channels(account, calendar_id, receiver):
    with pytest.raises(HttpError) as excinfo:
        watch(account, calendar_id, receiver, "chan-type", type="email")
    assert error_of(excinfo)[0] == 400
