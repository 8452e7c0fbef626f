"""Google → CRM (G9–G13): incremental `events.list` with the stored sync token.

Pages are read to the end before anything is applied, and the new sync token is saved in the
same transaction as the last changes, so a crash mid-pull repeats the pull instead of losing
it. A 410 (token expired) falls back to a full listing of the dedicated calendar, reconciled
by task id. An event whose etag is the one we wrote is our own echo and is skipped (G13).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from googleapiclient.errors import HttpError
from sqlalchemy import select
from sqlmodel import Session

from syncd.domain import calendar as cal
from syncd.gcal.limits import RateLimited
from syncd.gcal.mirror import LIVE, TURN_WAIT, Mirror, Turn, syncing
from syncd.jobs.queue import ClaimedJob, RetryLater
from syncd.notify.center import Changes, recipient, task_value
from syncd.store.tables import CalendarLink, EventLink, Task, User

log = logging.getLogger(__name__)

PAGE = 2500  # Google's maximum maxResults for events.list


class Puller:
    def __init__(self, mirror: Mirror) -> None:
        self.m = mirror
        # One puller per user at a time, for as long as the job is claimed (see Pusher).
        self.lease = timedelta(seconds=mirror.settings.jobs.lease_seconds)

    def __call__(self, job: ClaimedJob) -> datetime | None:
        user_id = job.payload["user_id"]
        now = self.m.clock.now()
        with self.m.db.transaction() as s:
            link = s.get(CalendarLink, user_id)
            if link is None or link.state not in LIVE or not link.calendar_id:
                return None
            if link.state == "paused" and link.paused_until and link.paused_until > now:
                return link.paused_until
            if syncing(link, now):  # waiting for our turn is not a failure: no retry counted
                return now + TURN_WAIT
            link.pull_lease_until = now + self.lease
            s.add(link)
        turn = Turn(self.m.db, user_id, CalendarLink.pull_lease_until, link.pull_lease_until)
        creds = self.m.credentials(link)
        before = creds.token
        try:
            self._pull(user_id, link, creds)
        except RateLimited as limited:  # our own limit, not Google's: a wait, not a failure
            return self.m.clock.now() + timedelta(seconds=limited.delay or 0)
        except RetryLater:
            raise
        except Exception as exc:
            raise self.m.fail(user_id, exc) from exc
        finally:
            self.m.keep_tokens(user_id, creds, before)
            turn.release()
        interval = self.m.g.safety_poll_seconds if link.channel_id else self.m.g.poll_seconds
        return self.m.clock.now() + timedelta(seconds=interval)

    def _list(self, user_id: str, calendar_id: str, token: str | None, creds: Any
              ) -> tuple[list[dict], str | None, bool]:
        """Every page of changes since `token` (or of the whole calendar). Returns the events,
        the next sync token and whether this was a full listing."""
        events = self.m.google.events
        full = token is None
        items: list[dict] = []
        page: str | None = None
        while True:
            params: dict[str, Any] = {"calendarId": calendar_id, "maxResults": PAGE}
            if page:
                params["pageToken"] = page
            if token:
                params["syncToken"] = token
            try:
                resp = self.m.google.execute(events.list(**params), creds, "events.list",
                                             user_id)
            except HttpError as exc:
                if exc.resp.status == 410 and token:  # G9: fullSyncRequired
                    log.info("sync token expired: full resync", extra={"calendar": calendar_id})
                    token, full, items, page = None, True, [], None
                    continue
                raise
            items += resp.get("items", [])
            page = resp.get("nextPageToken")
            if not page:
                return items, resp.get("nextSyncToken"), full

    def _pull(self, user_id: str, link: CalendarLink, creds: Any) -> None:
        started = self.m.clock.now()
        items, next_token, full = self._list(user_id, link.calendar_id or "", link.sync_token,
                                             creds)
        now = self.m.clock.now()
        changes = Changes()
        with self.m.db.transaction() as s:
            user = s.get(User, user_id)
            current = s.get(CalendarLink, user_id)
            if user is None or current is None or current.state not in LIVE:
                return
            seen_ids = {event.get("id", "") for event in items}
            links = _links(s, user_id, seen_ids)
            for event in items:
                apply_event(self.m, s, user, event, now, changes, links.get(event.get("id", "")))
            if full:
                self._reconcile(s, user_id, seen_ids, started, now, changes)
            current.sync_token, current.last_pull_at = next_token, now
            s.add(current)
        self.m.service.publish(changes)

    def _reconcile(self, s: Session, user_id: str, seen_ids: set[str], started: datetime,
                   now: datetime, changes: Changes) -> None:
        """After a full listing: our confirmed events that Google no longer has were deleted
        there while we could not see it (G9). Links written after the listing began are
        left alone: their events may simply be newer than the listing."""
        links = s.execute(select(EventLink).where(
            EventLink.user_id == user_id, EventLink.etag.is_not(None),
            EventLink.unlinked.is_(False), EventLink.updated_at < started)).scalars().all()
        for link in links:
            if link.event_id not in seen_ids:
                self.m.deleted_in_google(s, link, now, changes)


def _links(s: Session, user_id: str, event_ids: set[str]) -> dict[str, EventLink]:
    """The links of these events, and their tasks into the session, in a few queries rather
    than two per event (a full resync lists the whole calendar)."""
    ids, links = sorted(event_ids), {}
    for i in range(0, len(ids), 500):
        links.update({lk.event_id: lk for lk in s.execute(select(EventLink).where(
            EventLink.user_id == user_id, EventLink.event_id.in_(ids[i:i + 500]))).scalars()})
    task_ids = sorted({lk.task_id for lk in links.values()})
    for i in range(0, len(task_ids), 500):
        s.execute(select(Task).where(Task.id.in_(task_ids[i:i + 500]))).scalars().all()
    return links


def apply_event(m: Mirror, s: Session, user: User, event: dict, now: datetime,
                changes: Changes, link: EventLink | None = None) -> None:
    """One event as Google has it now → the task (G10–G13). Used by the pull (which passes the
    event's link, looked up in bulk), and by the push when it adopts an event its own earlier
    insert made (409)."""
    # A cancelled event may come back as little more than its id (Google documents only
    # `id` as certain), so events are matched by id, not by our private properties.
    if link is None:
        link = s.execute(select(EventLink).where(
            EventLink.user_id == user.id, EventLink.event_id == event.get("id"))).scalar()
    if link is None or link.unlinked:
        return  # not one of ours (added to our calendar by hand), or let go of (G11)
    task_id = link.task_id
    if link.etag is not None and event.get("etag") == link.etag:
        return  # our own write coming back (G13)
    task = s.get(Task, task_id)
    if task is None or task.deleted_at is not None or task.responsible_id != user.id:
        # The push job is about to delete this event (G8): the CRM's deletion or hand-over
        # wins over what was done to it in Google. Its etag is taken all the same, or that
        # delete's If-Match would meet 412, pull, and meet 412 again, forever.
        link.etag, link.synced, link.updated_at = event.get("etag"), cal.normalize(event), now
        s.add(link)
        return
    who = recipient(user)
    google = cal.read_event(event, who, m.opts)
    if google.deleted:
        m.deleted_in_google(s, link, now, changes)
        return
    base = cal.Seen.from_dict(link.base) if link.base else cal.seen_of(task_value(task))
    merged = cal.merge(base, google, cal.seen_of(task_value(task)))
    fields: dict[str, Any] = {}
    if merged.complete is True:  # G10: done in Google, by the responsible
        fields.update(completed_at=now, completed_by=task.responsible_id,
                      completed_source="calendar")
    elif merged.complete is False:
        fields.update(completed_at=None, completed_source=None)
    if merged.due_at is not None:  # G12: moved in Google → the deadline follows (N7)
        fields["due_at"] = merged.due_at
    elif merged.due_date is not None:
        fields["due_date"] = merged.due_date
    if fields:
        task = m.service.change_task(s, task_id, fields, task.responsible_id, now, changes)
        if edited := _updated_at(event):
            m.metrics.observe_sync_lag((now - edited).total_seconds())
    # The base is what Google now has, not what the CRM settled on: where the CRM won a
    # field, its value is still on the way to Google, a CRM change until that write lands.
    # Taking it as agreed would read Google's next edit of any field as a revert (G13).
    link.etag, link.synced = event.get("etag"), cal.normalize(event)
    link.base, link.updated_at = google.to_dict(), now
    s.add(link)
    agreed = cal.seen_of(task_value(task))
    if (agreed.done, agreed.due_at, agreed.due_date) != \
            (google.done, google.due_at, google.due_date):
        m.mark(s, user.id, [task_id], now)  # the CRM won a field: write it back


def _updated_at(event: dict) -> datetime | None:
    """When the event was last changed in Google (its `updated`, RFC 3339), if it says."""
    try:
        return datetime.fromisoformat(event["updated"])
    except (KeyError, TypeError, ValueError):
        return None
