"""A user's mirror: connect (G1), first setup and backfill (G2), disconnect, lost grants (G15),
pauses (G14), and the outbox hook every task change goes through (G5)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from google.oauth2.credentials import Credentials
from sqlalchemy import case, delete, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from syncd.domain import calendar as cal
from syncd.domain import rules
from syncd.domain.calendar import MirrorOptions, event_id
from syncd.domain.model import Kind
from syncd.errors import Conflict, NotFound
from syncd.gcal import oauth
from syncd.gcal.client import Fault, Google, classify
from syncd.gcal.limits import RateLimits
from syncd.gcal.tokens import TokenBox
from syncd.jobs import queue
from syncd.jobs.queue import ClaimedJob, RetryLater
from syncd.metrics import Metrics
from syncd.notify.center import Changes, task_value
from syncd.service import Service
from syncd.settings import Settings
from syncd.store.db import Database
from syncd.store.tables import CalendarLink, CalendarOutbox, EventLink, Job, Task, User

log = logging.getLogger(__name__)

PUSH_JOB, PULL_JOB, SETUP_JOB, WATCH_JOB = "gcal_push", "gcal_pull", "gcal_setup", "gcal_watch"
LIVE = ("on", "paused")  # states in which task changes queue up for Google
CALENDAR_MARK = "syncd"  # in the dedicated calendar's description, for people who look
TURN_WAIT = timedelta(seconds=0.25)  # how soon a push or pull waiting for its turn looks again
JOBS = (PUSH_JOB, PULL_JOB, SETUP_JOB, WATCH_JOB)
GROUP_PREFIX = "user:"


def user_group(user_id: str) -> str:
    return GROUP_PREFIX + user_id


def describe(exc: BaseException) -> str:
    """An error as the user's calendar page shows it (`last_error`)."""
    return f"{type(exc).__name__}: {exc}"[:500]


def syncing(link: CalendarLink, now: datetime) -> bool:
    """Is a push or a pull of this user under way on some worker? They take turns: a pull
    that listed an event, then applied it after two pushes had written over it, would take
    the older of our own writes for a change made in Google (G13)."""
    return any(until is not None and until > now
               for until in (link.push_lease_until, link.pull_lease_until))


class Turn:
    """A worker's turn at a user's push or pull (see `syncing`): renewed and released only
    while it is still this worker's. A turn that ran out (a slow node) may be another's by
    then, and clearing that one would let a push and a pull of the user overlap."""

    def __init__(self, db: Database, user_id: str, column: Any, until: datetime) -> None:
        self.db, self.user_id, self.column, self.until = db, user_id, column, until

    def renew(self, s: Session, until: datetime) -> bool:
        held = s.execute(update(CalendarLink).where(
            CalendarLink.user_id == self.user_id, self.column == self.until)
            .values({self.column: until})).rowcount
        if held:
            self.until = until
        return bool(held)

    def release(self) -> None:
        with self.db.transaction() as s:
            s.execute(update(CalendarLink).where(
                CalendarLink.user_id == self.user_id, self.column == self.until)
                .values({self.column: None}))


class Mirror:
    def __init__(self, service: Service, settings: Settings, google: Google | None = None,
                 metrics: Metrics | None = None):
        self.service = service
        self.metrics = metrics or Metrics()  # a node passes its own; tests may not care
        self.db = service.db
        self.clock = service.clock
        self.settings = settings
        self.g = settings.google
        self._google = google
        self.opts = MirrorOptions(event_minutes=self.g.event_minutes,
                                  reminders=tuple(self.g.reminders),
                                  done_marks=tuple(self.g.done_marks),
                                  done_color=self.g.done_color)
        service.task_listeners.append(self.record_change)

    @cached_property
    def google(self) -> Google:
        if self._google is not None:
            return self._google
        limits = RateLimits(self.db, self.clock, self.g.user_requests_per_minute,
                            self.g.project_requests_per_minute)
        return Google(self.g, limits, on_call=self.metrics.google_api_call)

    @cached_property
    def box(self) -> TokenBox:
        return TokenBox(self.g.token_key_file, generate=not self.db.is_postgres)

    # -- jobs ---------------------------------------------------------------------------

    def ensure(self, s: Session, kind: str, user_id: str, at: datetime) -> datetime:
        key = f"{kind}:{user_id}"
        # A burst of task changes finds the push job pending and due already: a locked read
        # (a claim skips the row until we commit, so it will see our outbox rows) is much
        # cheaper than the upsert, which would change nothing then.
        job = s.execute(select(Job.state, Job.due_at).where(Job.key == key)
                        .with_for_update()).first()
        if job is not None and job.state == "pending" and job.due_at <= at:
            return at
        queue.ensure(self.db, s, kind=kind, key=key, due_at=at, payload={"user_id": user_id},
                     group=user_group(user_id), now=self.clock.now())
        return at

    def record_change(self, s: Session, task_id: str, user_ids: set[str],
                      now: datetime) -> datetime | None:
        """G5: in the task change's own transaction, mark its event dirty for every user whose
        mirror is on; the push job runs after commit."""
        states = dict(s.execute(select(CalendarLink.user_id, CalendarLink.state).where(
            CalendarLink.user_id.in_(user_ids),
            CalendarLink.state.in_((*LIVE, "connecting")))).all())
        if connecting := [u for u, state in states.items() if state == "connecting"]:
            # Setup switches the mirror on and selects the tasks to backfill (G2) in one
            # transaction. Under READ COMMITTED, a task committed after that select that read
            # `connecting` before that commit would be in neither. A share lock on the link
            # orders the two: it waits for a setup under way to commit (and reads `on`), or
            # holds setup back until this change is committed (and its select sees the task).
            states.update(s.execute(select(CalendarLink.user_id, CalendarLink.state).where(
                CalendarLink.user_id.in_(connecting)).with_for_update(read=True)).all())
        live = [u for u, state in states.items() if state in LIVE]
        for user_id in live:
            self.mark(s, user_id, [task_id], now)
        return now if live else None

    def mark(self, s: Session, user_id: str, task_ids: list[str], now: datetime) -> None:
        """Queue these tasks' events for the user's next push. Every change bumps `seq`, so a
        push clears a row only if nothing newer came while its request was out."""
        if task_ids:
            s.execute(self._outbox_upsert, [
                {"user_id": user_id, "task_id": task_id, "seq": 1, "attempts": 0,
                 "not_before": now, "changed_at": now} for task_id in task_ids])
        self.ensure(s, PUSH_JOB, user_id, now)

    @cached_property
    def _outbox_upsert(self) -> Any:
        # Built once, values as parameters: compiled once, and a backfill is one executemany.
        stmt = (postgresql if self.db.is_postgres else sqlite).insert(CalendarOutbox)
        return stmt.on_conflict_do_update(
            index_elements=["user_id", "task_id"],
            set_={"seq": CalendarOutbox.seq + 1, "attempts": 0,
                  "not_before": stmt.excluded.not_before,
                  "changed_at": stmt.excluded.changed_at})

    # -- state --------------------------------------------------------------------------

    def status(self, user_id: str) -> dict[str, Any]:
        self.service.get_user(user_id)
        with self.db.read() as s:
            link = s.get(CalendarLink, user_id)
        if link is None:
            return {"state": "off", "calendar_id": None, "last_push_at": None,
                    "last_pull_at": None, "last_error": None, "paused_until": None}
        return {"state": link.state, "calendar_id": link.calendar_id,
                "last_push_at": link.last_push_at, "last_pull_at": link.last_pull_at,
                "last_error": link.last_error, "paused_until": link.paused_until}

    def failing_users(self, limit: int = 100) -> list[dict[str, Any]]:
        """Users whose sync is not working, for `/healthz`: cut off (`needs_reconnect`), paused
        by Google's quota (`paused`), with a calendar job given up (`failed`), or with a job or
        an event write waiting to retry after an error (`retrying`). Waiting for a turn is not
        an error (`TURN_WAIT`).
        One query, capped: /healthz is polled often."""
        mine = (Job.group_key == literal(GROUP_PREFIX) + CalendarLink.user_id) & Job.kind.in_(JOBS)
        backing_off = select(CalendarOutbox.task_id).where(
            CalendarOutbox.user_id == CalendarLink.user_id, CalendarOutbox.attempts > 0).exists()
        problem = case(
            (CalendarLink.state.in_(("needs_reconnect", "paused")), CalendarLink.state),
            (select(Job.id).where(mine, Job.state == "failed").exists(), "failed"),
            (select(Job.id).where(mine, Job.state == "pending",
                                  Job.last_error.is_not(None)).exists(), "retrying"),
            (backing_off, "retrying"))
        with self.db.read() as s:
            rows = s.execute(select(CalendarLink.user_id, problem, CalendarLink.last_error_at)
                             .where(CalendarLink.state != "off", problem.is_not(None))
                             .order_by(CalendarLink.user_id).limit(limit)).all()
        return [{"user_id": user_id, "problem": what,
                 "last_error_at": at.isoformat() if at else None} for user_id, what, at in rows]

    def record_error(self, user_id: str, message: str) -> None:
        with self.db.transaction() as s:
            s.execute(update(CalendarLink).where(CalendarLink.user_id == user_id).values(
                last_error=message[:500], last_error_at=self.clock.now()))

    def credentials(self, link: CalendarLink) -> Credentials:
        if not link.tokens:
            raise RetryLater("no tokens", delay=None)
        return self.google.credentials(self.box.open(link.tokens))

    def keep_tokens(self, user_id: str, creds: Credentials, before: str | None) -> None:
        """google-auth refreshed the access token during a call: store the new one, sealed."""
        if creds.token and creds.token != before:
            with self.db.transaction() as s:
                s.execute(update(CalendarLink).where(
                    CalendarLink.user_id == user_id, CalendarLink.tokens.is_not(None)).values(
                    tokens=self.box.seal(oauth.tokens_of(creds))))

    def fail(self, user_id: str, exc: BaseException) -> RetryLater:
        """Turn a Google error that concerns the whole user into state and a retry (G14, G15)."""
        if isinstance(exc, RetryLater):  # already a wait (our own rate limit): no error
            return exc
        fault = classify(exc)
        now = self.clock.now()
        if fault is Fault.GRANT:
            self.lost_grant(user_id)
            return RetryLater("grant revoked: needs reconnect", delay=0)
        if fault is Fault.QUOTA:
            until = now + timedelta(minutes=self.g.quota_pause_minutes)
            with self.db.transaction() as s:
                s.execute(update(CalendarLink).where(CalendarLink.user_id == user_id).values(
                    state="paused", paused_until=until, last_error="quotaExceeded",
                    last_error_at=now))
            return RetryLater("quota exceeded: paused", delay=(until - now).total_seconds())
        self.record_error(user_id, describe(exc))
        return RetryLater(str(exc)[:300])

    def lost_grant(self, user_id: str) -> None:
        """G15: needs_reconnect, tokens erased, `calendar_disconnected` once; no crash loop."""
        now = self.clock.now()
        changes = Changes()
        with self.db.transaction() as s:
            link = s.get(CalendarLink, user_id)
            if link is None or link.state in ("off", "needs_reconnect"):
                return
            connected = (link.connected_at or now).isoformat()
            link.state, link.tokens = "needs_reconnect", None
            link.last_error, link.last_error_at = "Google grant revoked or expired", now
            link.channel_id = link.channel_token = None
            s.add(link)
            queue.cancel(s, user_group(user_id), now)
            note = rules.Notify(user_id=user_id, task_id="", kind=Kind.CALENDAR_DISCONNECTED,
                                occurrence=f"grant:{connected}")
            self.service.center.notify(s, note, None, now, changes)
        log.warning("google grant lost", extra={"user": user_id})
        self.service.publish(changes)

    def deleted_in_google(self, s: Session, link: EventLink, now: datetime,
                          changes: Changes) -> None:
        _deleted_in_google(self, s, link, now, changes)

    # -- connect and disconnect (G1) ----------------------------------------------------

    def connect_url(self, user_id: str, redirect_uri: str | None = None) -> str:
        user = self.service.get_user(user_id)
        # Refused now, naming the setting, rather than after consent with nowhere to keep tokens.
        _ = self.box
        now = self.clock.now()
        redirect = redirect_uri or self.settings.http.public_url.rstrip("/") + "/oauth/google/callback"
        url = oauth.start(self.db, self.google.client, user_id, user.email, redirect, now)
        with self.db.transaction() as s:
            link = s.get(CalendarLink, user_id) or CalendarLink(user_id=user_id, updated_at=now)
            if link.state in ("off", "needs_reconnect"):
                link.state = "connecting"
            link.updated_at = now
            s.add(link)
        return url

    def finish_connect(self, state: str, code: str) -> str:
        now = self.clock.now()
        claimed = oauth.claim_state(self.db, state, now)
        try:
            creds = oauth.exchange(self.google.client, claimed, state, code)
        except Exception as exc:  # noqa: BLE001 (whatever went wrong, the consent failed)
            self.record_error(claimed.user_id, f"consent failed: {exc}")
            raise Conflict("Google refused the authorization code", field="code") from None
        with self.db.transaction() as s:
            link = s.get(CalendarLink, claimed.user_id) or CalendarLink(
                user_id=claimed.user_id, updated_at=now)
            link.tokens = self.box.seal(oauth.tokens_of(creds))
            link.state, link.connected_at, link.updated_at = "connecting", now, now
            link.last_error = link.paused_until = None
            s.add(link)
            s.flush()
            self.ensure(s, SETUP_JOB, claimed.user_id, now)
        self.service.wake()
        return claimed.user_id

    def setup(self, job: ClaimedJob) -> None:
        """After consent: find or create the dedicated calendar, switch on, backfill (G1, G2)."""
        user_id = job.payload["user_id"]
        with self.db.read() as s:
            link = s.get(CalendarLink, user_id)
            user = s.get(User, user_id)
        if link is None or user is None or link.state != "connecting" or not link.tokens:
            return
        creds = self.credentials(link)
        before = creds.token
        created = link.calendar_id is None
        try:
            calendar_id = link.calendar_id or self._create_calendar(user, creds)
        except Exception as exc:
            raise self.fail(user_id, exc) from exc
        self.keep_tokens(user_id, creds, before)
        if not self._switch_on(user_id, calendar_id):
            if created:  # after the transaction: Google is never called holding its locks
                self._drop_calendar(user_id, creds, calendar_id)
            return
        self.service.wake()

    def _switch_on(self, user_id: str, calendar_id: str) -> bool:
        """The mirror on with this calendar, its tasks queued for Google; False if another run
        of setup (or a disconnect) came first."""
        now = self.clock.now()
        since = now - timedelta(days=self.g.backfill_days)
        with self.db.transaction() as s:
            # Locked: a second run of this job (taken over from a node that was slow, not
            # dead) must wait for the first to commit and then see it done. Read unlocked,
            # both saw `connecting` and the later one switched the mirror on again with its
            # own calendar, stranding every event pushed meanwhile in the first one.
            link = s.execute(select(CalendarLink).where(CalendarLink.user_id == user_id)
                             .with_for_update()).scalar()
            if link is None or link.state != "connecting":
                return False
            link.calendar_id, link.state, link.updated_at = calendar_id, "on", now
            link.sync_token = None
            s.add(link)
            task_ids = s.execute(select(Task.id).where(
                Task.responsible_id == user_id, Task.deleted_at.is_(None),
                or_(Task.completed_at.is_(None), Task.completed_at >= since))).scalars().all()
            # Reconnecting after a lost grant (G15), the calendar still holds the events of
            # tasks deleted or handed away while nothing was pushed: they are revisited too.
            linked = s.execute(select(EventLink.task_id).where(
                EventLink.user_id == user_id, EventLink.unlinked.is_(False))).scalars().all()
            self.mark(s, user_id, sorted(set(task_ids) | set(linked)), now)
            self.ensure(s, PULL_JOB, user_id, now)
            if self.g.webhook_url:
                self.ensure(s, WATCH_JOB, user_id, now)
        return True

    def _create_calendar(self, user: User, creds: Credentials) -> str:
        # calendar.app.created may not list calendars, so one created by a node that died
        # before storing its id can't be found again: that instant can leave an empty
        # "CRM tasks" calendar behind (never a duplicate event: events are keyed by task).
        body = {"summary": self.g.calendar_name, "timeZone": user.timezone,
                "description": f"{CALENDAR_MARK}:{user.id}"}
        return self.google.execute(self.google.calendar.calendars().insert(body=body), creds,
                                   "calendars.insert", user.id)["id"]

    def _drop_calendar(self, user_id: str, creds: Credentials, calendar_id: str) -> None:
        """Best effort: a calendar this setup made and lost the race with (another run of the
        job switched the mirror on first, or the user disconnected meanwhile) is empty."""
        try:
            self.google.execute(self.google.calendar.calendars().delete(calendarId=calendar_id),
                                creds, "calendars.delete", user_id)
        except Exception as exc:  # noqa: BLE001 (an empty calendar left behind, logged)
            log.warning("setup: removing an unused calendar failed: %s", exc,
                        extra={"user": user_id})

    def disconnect(self, user_id: str) -> dict[str, Any]:
        """G1 off: stop channels, delete the calendar (unless kept), revoke, erase tokens."""
        self.service.get_user(user_id)
        now = self.clock.now()
        with self.db.transaction() as s:
            link = s.get(CalendarLink, user_id)
            if link is None or link.state == "off":
                return self.status(user_id)
            sealed, calendar_id = link.tokens, link.calendar_id
            channel = (link.channel_id, link.channel_resource_id)
            link.state, link.tokens, link.sync_token, link.updated_at = "off", None, None, now
            link.calendar_id = link.channel_id = link.channel_resource_id = None
            link.channel_token = link.channel_expires_at = None
            s.add(link)
            queue.cancel(s, user_group(user_id), now)
            s.execute(delete(EventLink).where(EventLink.user_id == user_id))
            s.execute(delete(CalendarOutbox).where(CalendarOutbox.user_id == user_id))
        if sealed:
            self._release_google(user_id, sealed, calendar_id, channel)
        return self.status(user_id)

    def _release_google(self, user_id: str, sealed: str, calendar_id: str | None,
                        channel: tuple[str | None, str | None]) -> None:
        """Best effort: the local state is already off and the tokens gone whatever Google says."""
        creds = self.google.credentials(self.box.open(sealed))
        cal = self.google.calendar
        steps = []
        if channel[0] and channel[1]:
            steps.append(("channels.stop", lambda: cal.channels().stop(
                body={"id": channel[0], "resourceId": channel[1]})))
        if calendar_id and not self.g.keep_calendar_on_disconnect:
            steps.append(("calendars.delete", lambda: cal.calendars().delete(
                calendarId=calendar_id)))
        for method, make in steps:
            try:
                self.google.execute(make(), creds, method, user_id)
            except Exception as exc:  # noqa: BLE001 (best effort, logged)
                log.warning("disconnect: %s failed: %s", method, exc, extra={"user": user_id})
        try:
            self.google.revoke(creds)
        except Exception as exc:  # noqa: BLE001
            log.warning("disconnect: revoke failed: %s", exc, extra={"user": user_id})


def require_link(s: Session, user_id: str) -> CalendarLink:
    link = s.get(CalendarLink, user_id)
    if link is None:
        raise NotFound(f"user {user_id!r} has no calendar link", field="id")
    return link


def wants_event(mirror: Mirror, task: Task | None, user_id: str) -> bool:
    """Should this user's calendar hold an event for the task at all (G2, G7, G8)?"""
    return task is not None and task.deleted_at is None and task.responsible_id == user_id \
        and not (task.completed_at is not None and mirror.g.completed == "delete")


def stale_event(link: EventLink, task: Task) -> bool:
    """Is the link's event one made for an earlier assignment of the task (G8)?"""
    return link.event_id != event_id(task.id, task.assignment_seq, link.incarnation)


def new_assignment_event(link: EventLink, task: Task, now: datetime) -> None:
    """Point the link at the event of the task's current assignment, to be inserted: a new
    assignment gets a new event (G8), whatever became of the old one."""
    link.event_id = event_id(task.id, task.assignment_seq)
    link.unlinked, link.incarnation, link.etag, link.synced = False, 0, None, {}
    link.base = cal.seen_of(task_value(task)).to_dict()
    link.updated_at = now


def _deleted_in_google(mirror: Mirror, s: Session, link: EventLink, now: datetime,
                       changes: Changes) -> None:
    """G11: the event was deleted in Google; `google.on_event_deleted` says what that means.

    Only for an event the CRM still wants there. G16: our own delete may be what removed it,
    its answer lost to a node killed before storing it (a full resync then misses the event,
    an incremental one lists it cancelled, a patch meets 404/410): that is not the user's."""
    task = s.get(Task, link.task_id)
    if not wants_event(mirror, task, link.user_id):
        # Deleted or handed over in the CRM: the event had to go anyway. The link goes, as
        # the delete's own answer would have taken it; nothing is let go of or completed.
        s.delete(link)
        return
    assert task is not None
    if link.etag is None and stale_event(link, task):
        # Handed away (our delete of its event went out unconfirmed) and back: the old
        # event's end is ours, not the user's. The new assignment gets its own event.
        new_assignment_event(link, task, now)
        s.add(link)
        mirror.mark(s, link.user_id, [task.id], now)
        return
    policy = mirror.g.on_event_deleted
    open_here = task is not None and task.deleted_at is None and task.completed_at is None \
        and task.responsible_id == link.user_id
    if policy == "restore" and open_here:
        assert task is not None
        link.incarnation += 1
        link.event_id = event_id(task.id, task.assignment_seq, link.incarnation)
        link.etag, link.synced, link.updated_at = None, {}, now
        s.add(link)
        mirror.mark(s, link.user_id, [task.id], now)
        return
    link.unlinked, link.etag, link.updated_at = True, None, now
    s.add(link)
    if policy == "complete" and open_here:
        assert task is not None
        mirror.service.change_task(
            s, task.id, {"completed_at": now, "completed_by": task.responsible_id,
                         "completed_source": "calendar"}, task.responsible_id, now, changes)
