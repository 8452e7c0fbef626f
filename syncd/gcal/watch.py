"""G9 push channels: `events.watch` on each dedicated calendar when `google.webhook_url` is
set. A notification triggers a pull; the channel is renewed before it expires; polling stays
on as a slow safety net."""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from syncd.errors import Forbidden, NotFound
from syncd.gcal.mirror import PULL_JOB, Mirror
from syncd.jobs.queue import ClaimedJob
from syncd.store.tables import CalendarLink

log = logging.getLogger(__name__)

TTL = timedelta(days=7)  # what we ask for; Google may grant less and says so in `expiration`
RENEW_BEFORE = timedelta(hours=1)


class Watcher:
    def __init__(self, mirror: Mirror) -> None:
        self.m = mirror

    def __call__(self, job: ClaimedJob) -> datetime | None:
        """Open a channel (or replace one about to expire); returns when to renew it."""
        user_id = job.payload["user_id"]
        with self.m.db.read() as s:
            link = s.get(CalendarLink, user_id)
        if link is None or link.state != "on" or not link.calendar_id or not self.m.g.webhook_url:
            return None
        creds = self.m.credentials(link)
        before = creds.token
        token = secrets.token_urlsafe(24)
        body = {"id": uuid.uuid4().hex, "type": "web_hook", "address": self.m.g.webhook_url,
                "token": token, "params": {"ttl": str(int(TTL.total_seconds()))}}
        events = self.m.google.events
        try:
            channel = self.m.google.execute(events.watch(calendarId=link.calendar_id, body=body),
                                            creds, "events.watch", user_id)
        except Exception as exc:
            raise self.m.fail(user_id, exc) from exc
        now = self.m.clock.now()
        expires = datetime.fromtimestamp(int(channel["expiration"]) / 1000, UTC) \
            if channel.get("expiration") else now + TTL
        old = (link.channel_id, link.channel_resource_id)
        with self.m.db.transaction() as s:
            current = s.get(CalendarLink, user_id)
            if current is None or current.state != "on":
                return None
            current.channel_id, current.channel_resource_id = body["id"], channel["resourceId"]
            current.channel_token, current.channel_expires_at = token, expires
            s.add(current)
        if old[0] and old[1]:  # the new channel is live: the old one can go
            try:
                self.m.google.execute(self.m.google.calendar.channels().stop(
                    body={"id": old[0], "resourceId": old[1]}), creds, "channels.stop", user_id)
            except Exception as exc:  # noqa: BLE001 (it expires by itself anyway)
                log.info("stopping an old channel failed: %s", exc)
        self.m.keep_tokens(user_id, creds, before)
        return max(now + timedelta(minutes=1), expires - RENEW_BEFORE)

    def notified(self, channel_id: str, token: str, state: str) -> None:
        """POST /hooks/google: check the channel's token, then pull soon."""
        with self.m.db.transaction() as s:
            link = s.execute(select(CalendarLink).where(
                CalendarLink.channel_id == channel_id)).scalar()
            if link is None:
                raise NotFound("unknown channel", field="X-Goog-Channel-ID")
            if not link.channel_token or not hmac.compare_digest(token, link.channel_token):
                raise Forbidden("channel token does not match", field="X-Goog-Channel-Token")
            if state == "sync":  # the handshake Google sends when a channel opens
                return
            self.m.ensure(s, PULL_JOB, link.user_id, self.m.clock.now())
        self.m.service.wake()
