"""CRM → Google (G2–G8, G14, G16): drain a user's outbox in batch requests.

A change costs one request: insert, patch (only the fields that differ, with If-Match) or
delete — never a read first. Each outbox row is cleared only if no newer change came while
its request was out, so a crash at any point leaves work to redo, never work lost; redoing an
insert meets 409 `duplicate` and adopts the event the first try made. A delete marks its link
unconfirmed before it goes out, so an event gone for want of its answer is never taken for
one the user deleted (G11).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from googleapiclient.errors import HttpError
from sqlalchemy import delete, func, select, tuple_, update
from sqlmodel import Session

from syncd.domain import calendar as cal
from syncd.gcal.client import BATCH_SIZE, Fault, classify, status_of
from syncd.gcal.mirror import (
    LIVE,
    PULL_JOB,
    TURN_WAIT,
    Mirror,
    Turn,
    describe,
    new_assignment_event,
    stale_event,
    syncing,
)
from syncd.gcal.pull import apply_event
from syncd.jobs import queue
from syncd.jobs.queue import ClaimedJob, RetryLater
from syncd.notify.center import Changes, recipient, task_value
from syncd.store.tables import CalendarLink, CalendarOutbox, EventLink, Task, User

log = logging.getLogger(__name__)

ROUNDS = 50  # outbox pages per run; the job comes back for the rest


@dataclass
class Op:
    task_id: str
    seq: int
    kind: str  # insert | patch | delete
    event_id: str
    body: dict
    desired: dict | None
    etag: str | None
    base: dict
    changed_at: datetime  # when the CRM changed the task: the sync lag runs from here


class Pusher:
    def __init__(self, mirror: Mirror) -> None:
        self.m = mirror
        # One pusher per user at a time. The lease is the job's own: a node killed mid-push
        # holds the user up no longer than its claimed job stays claimed; a long drain
        # renews it page by page.
        self.lease = timedelta(seconds=mirror.settings.jobs.lease_seconds)

    def __call__(self, job: ClaimedJob) -> datetime | None:
        user_id = job.payload["user_id"]
        now = self.m.clock.now()
        with self.m.db.transaction() as s:
            link = s.get(CalendarLink, user_id)
            if link is None or link.state not in LIVE or not link.calendar_id:
                return None
            if link.state == "paused":
                if link.paused_until and link.paused_until > now:
                    return link.paused_until
                link.state, link.paused_until = "on", None
            if syncing(link, now):  # waiting for our turn is not a failure: no retry counted
                return now + TURN_WAIT
            link.push_lease_until = now + self.lease
            s.add(link)
        turn = Turn(self.m.db, user_id, CalendarLink.push_lease_until, link.push_lease_until)
        try:
            return self._drain(user_id, link, turn)
        finally:
            turn.release()

    def _drain(self, user_id: str, link: CalendarLink, turn: Turn) -> datetime | None:
        creds = self.m.credentials(link)
        before = creds.token
        try:
            for _ in range(ROUNDS):
                ops = self._plan(user_id, turn)
                if ops is None:
                    break
                if not ops:
                    continue
                grant = self.m.google.limits.take(user_id, len(ops))
                if not grant.count:  # G14: the wait is persisted, never slept in a worker
                    return self.m.clock.now() + timedelta(seconds=grant.retry_after)
                # Those not sent stay due in the outbox, planned as if this node had died
                # before sending them (G16), and go out once the limit allows.
                ops = ops[:grant.count]
                results = self._send(ops, creds, link.calendar_id or "")
                self._settle(user_id, link.calendar_id or "", ops, results, creds)
            else:
                return self.m.clock.now()
        finally:
            self.m.keep_tokens(user_id, creds, before)
        with self.m.db.read() as s:
            return s.execute(select(func.min(CalendarOutbox.not_before)).where(
                CalendarOutbox.user_id == user_id)).scalar()

    # -- planning -----------------------------------------------------------------------

    def _plan(self, user_id: str, turn: Turn) -> list[Op] | None:
        """The next page of due outbox rows as requests. None: nothing due. Rows that need no
        request (the event already says it all) are cleared here."""
        now = self.m.clock.now()
        with self.m.db.transaction() as s:
            rows = s.execute(select(CalendarOutbox).where(
                CalendarOutbox.user_id == user_id, CalendarOutbox.not_before <= now)
                .order_by(CalendarOutbox.changed_at).limit(BATCH_SIZE * 4)).scalars().all()
            if not rows:
                return None
            if not turn.renew(s, now + self.lease):
                raise RetryLater("this user's push turn ran out and passed on", delay=0.25)
            user = s.get(User, user_id)
            assert user is not None
            ids = [r.task_id for r in rows]
            tasks = {t.id: t for t in s.execute(select(Task).where(Task.id.in_(ids))).scalars()}
            links = {lk.task_id: lk for lk in s.execute(select(EventLink).where(
                EventLink.user_id == user_id, EventLink.task_id.in_(ids))).scalars()}
            ops: list[Op] = []
            needless: list[tuple[str, int]] = []
            for row in rows:
                op = self._op(s, user, tasks.get(row.task_id), links.get(row.task_id), row, now)
                if op is None:
                    needless.append((row.task_id, row.seq))
                else:
                    ops.append(op)
            _clear(s, user_id, needless)
        return ops

    def desired(self, task: Task | None, user: User, link: EventLink | None,
                now: datetime) -> dict | None:
        """G2/G3/G4/G7/G8: the event this user's calendar should hold for the task, if any."""
        if task is None or task.deleted_at is not None or task.responsible_id != user.id:
            return None
        if task.completed_at is not None:
            if self.m.g.completed == "delete":
                return None
            recent = task.completed_at >= now - timedelta(days=self.m.g.backfill_days)
            if link is None and not recent:
                return None
        extras = cal.TaskExtras(duration_minutes=task.duration_minutes,
                                entity_url=task.entity_url)
        return cal.event_body(task_value(task), extras, recipient(user), self.m.opts)

    def _op(self, s: Session, user: User, task: Task | None, link: EventLink | None,
            row: CalendarOutbox, now: datetime) -> Op | None:
        if link is not None and link.unlinked:
            handed_back = task is not None and task.responsible_id == user.id and \
                stale_event(link, task)
            if not handed_back:
                return None  # G11: the user deleted this event in Google; it stays deleted
            # The task went to someone else and came back since: a new assignment gets a new
            # event (G8), whatever the user did to the old one.
            assert task is not None
            new_assignment_event(link, task, now)
            s.add(link)
        want = self.desired(task, user, link, now)
        base = cal.seen_of(task_value(task)).to_dict() if task else {}
        if want is None:
            if link is None:
                return None
            op = Op(row.task_id, row.seq, "delete", link.event_id, {}, None, link.etag, base,
                    row.changed_at)
            if link.etag is not None:
                # G16, as for an insert: what goes out is stored first. Until Google answers,
                # the event is not known to be there: if the node dies with the answer lost, a
                # pull that finds it gone must not take that for the user's deletion (G11).
                link.etag, link.updated_at = None, now
                s.add(link)
            return op
        if link is None or link.etag is None:
            if link is None:  # the id is stored before the insert goes out (G16)
                assert task is not None
                # So is what the event first says: if this insert lands but its answer is
                # lost, whatever the user then does to the event is merged against it (G13).
                link = EventLink(user_id=user.id, task_id=row.task_id,
                                 event_id=cal.event_id(task.id, task.assignment_seq),
                                 base=base, updated_at=now)
                s.add(link)
            body = {k: v for k, v in want.items() if v is not None}
            return Op(row.task_id, row.seq, "insert", link.event_id, {**body, "id": link.event_id},
                      want, None, base, row.changed_at)
        patch = cal.patch_for(want, link.synced)
        if not patch:
            if link.base != base:
                link.base, link.updated_at = base, now
                s.add(link)
            return None
        return Op(row.task_id, row.seq, "patch", link.event_id, patch, want, link.etag, base,
                  row.changed_at)

    # -- sending ------------------------------------------------------------------------

    def _request(self, op: Op, calendar_id: str) -> Any:
        events = self.m.google.events
        if op.kind == "insert":
            return events.insert(calendarId=calendar_id, body=op.body)
        if op.kind == "patch":
            req = events.patch(calendarId=calendar_id, eventId=op.event_id, body=op.body)
        else:
            req = events.delete(calendarId=calendar_id, eventId=op.event_id)
        if op.etag:
            req.headers["If-Match"] = op.etag  # G6: never overwrite a change we haven't seen
        return req

    def _send(self, ops: list[Op], creds: Any, calendar_id: str
              ) -> dict[str, tuple[Any, BaseException | None]]:
        results: dict[str, tuple[Any, BaseException | None]] = {}

        def collect(request_id: str, response: Any, exc: BaseException | None) -> None:
            results[request_id] = (response, exc)
            self.m.google.on_call(f"events.{ops[int(request_id)].kind}", status_of(exc))

        for start in range(0, len(ops), BATCH_SIZE):
            batch = self.m.google.batch()
            for i in range(start, min(start + BATCH_SIZE, len(ops))):
                batch.add(self._request(ops[i], calendar_id), callback=collect, request_id=str(i))
            try:
                self.m.google.execute_batch(batch, creds)
            except Exception as exc:  # noqa: BLE001 (the round trip failed: each op in it did)
                for i in range(start, min(start + BATCH_SIZE, len(ops))):
                    if str(i) not in results:
                        collect(str(i), None, exc)
        return results

    # -- results ------------------------------------------------------------------------

    def _settle(self, user_id: str, calendar_id: str, ops: list[Op],
                results: dict[str, tuple[Any, BaseException | None]], creds: Any) -> None:
        now = self.m.clock.now()
        fatal: BaseException | None = None
        adopt: list[Op] = []
        changes = Changes()
        done: list[tuple[str, int]] = []  # outbox rows to clear, at the seq that went out
        conflicted: list[str] = []
        retry: list[str] = []
        succeeded, transient = False, None
        with self.m.db.transaction() as s:
            # One read for the page's links and one delete for its rows: a page is 200 ops.
            links = {lk.task_id: lk for lk in s.execute(select(EventLink).where(
                EventLink.user_id == user_id,
                EventLink.task_id.in_([op.task_id for op in ops]))).scalars()}
            for i, op in enumerate(ops):
                response, exc = results.get(str(i), (None, RuntimeError("no response")))
                link = links.get(op.task_id)
                if link is not None and link.event_id != op.event_id:
                    link = None  # a pull gave the task a new event meanwhile (G11 restore)
                if exc is None:
                    self._succeeded(s, op, link, response, now)
                    done.append((op.task_id, op.seq))
                    succeeded = True
                    self.m.metrics.observe_sync_lag((now - op.changed_at).total_seconds())
                    continue
                fault = classify(exc)
                if op.kind == "delete" and link is not None and link.etag is None \
                        and fault is not Fault.GONE and _refused(exc):
                    link.etag = op.etag  # Google refused it: the event is there as it was
                    s.add(link)
                if fault in (Fault.GRANT, Fault.QUOTA):
                    fatal = fatal or exc
                elif fault is Fault.DUPLICATE and op.kind == "insert":
                    adopt.append(op)
                elif fault is Fault.GONE:
                    self._gone(s, op, link, now, changes)
                    done.append((op.task_id, op.seq))
                elif fault is Fault.CONFLICT:  # changed in Google meanwhile: merge first (G13)
                    conflicted.append(op.task_id)
                elif fault is Fault.RETRY:
                    retry.append(op.task_id)
                    transient = exc
                else:  # G14: a 400 is recorded on the task's link and not retried
                    if link is not None:
                        link.last_error, link.updated_at = str(exc)[:500], now
                        s.add(link)
                    done.append((op.task_id, op.seq))
            _clear(s, user_id, done)
            if conflicted:  # the pull goes first; these come back after it
                self.m.ensure(s, PULL_JOB, user_id, now)
                _later(s, user_id, conflicted, now + timedelta(seconds=1))
            _backoff(s, user_id, retry, now, self.m.settings.jobs)
            # What the user's calendar page and /healthz show: the last write Google took,
            # and why the ones waiting to retry failed.
            seen: dict[str, Any] = {"last_push_at": now} if succeeded else {}
            if transient is not None:
                seen |= {"last_error": describe(transient), "last_error_at": now}
            if seen:
                s.execute(update(CalendarLink).where(CalendarLink.user_id == user_id)
                          .values(**seen))
        self.m.service.publish(changes)
        for op in adopt:
            self._adopt(user_id, calendar_id, op, creds)
        if fatal is not None:
            raise self.m.fail(user_id, fatal)

    def _succeeded(self, s: Session, op: Op, link: EventLink | None, response: Any,
                   now: datetime) -> None:
        if op.kind == "delete":
            if link is not None:
                s.delete(link)
        elif link is not None:
            link.etag = response.get("etag")
            link.synced = cal.normalize(response) if response else cal.normalize(op.desired or {})
            link.base, link.last_error, link.updated_at = op.base, None, now
            s.add(link)

    def _gone(self, s: Session, op: Op, link: EventLink | None, now: datetime,
              changes: Changes) -> None:
        if op.kind == "delete" or link is None:
            if link is not None:
                s.delete(link)
            return
        # Patched an event that is no longer there: it was deleted in Google (G11).
        self.m.deleted_in_google(s, link, now, changes)

    def _adopt(self, user_id: str, calendar_id: str, op: Op, creds: Any) -> None:
        """G5: 409 means our own earlier insert landed (or the id was used before) and its
        answer was lost. Read the event once and take it as a pull would: what the user did
        to it since is merged (G13), a deletion follows `on_event_deleted` (G11)."""
        try:
            event = self.m.google.execute(self.m.google.events.get(
                calendarId=calendar_id, eventId=op.event_id), creds, "events.get", user_id)
        except Exception as exc:  # noqa: BLE001 (the row stays; the next run tries again)
            log.warning("adopting %s failed: %s", op.event_id, exc)
            return
        now = self.m.clock.now()
        changes = Changes()
        with self.m.db.transaction() as s:
            link = s.get(EventLink, (user_id, op.task_id))
            user = s.get(User, user_id)
            if link is None or user is None or link.event_id != op.event_id:
                return
            apply_event(self.m, s, user, event, now, changes)
            _later(s, user_id, [op.task_id], now)
        self.m.service.publish(changes)


def _refused(exc: BaseException) -> bool:
    """Did Google answer that it did not apply the request? A 4xx does; a 5xx or a lost
    connection leaves it unknown."""
    return isinstance(exc, HttpError) and exc.resp.status < 500


def _clear(s: Session, user_id: str, done: list[tuple[str, int]]) -> None:
    """Drop the outbox rows of (task, seq) pairs whose change is settled; a row whose seq moved
    on (a newer change came while the request was out) stays for the next push."""
    if done:
        s.execute(delete(CalendarOutbox).where(
            CalendarOutbox.user_id == user_id,
            tuple_(CalendarOutbox.task_id, CalendarOutbox.seq).in_(done)))


def _later(s: Session, user_id: str, task_ids: list[str], at: datetime) -> None:
    s.execute(update(CalendarOutbox).where(
        CalendarOutbox.user_id == user_id, CalendarOutbox.task_id.in_(task_ids))
        .values(not_before=at))


def _backoff(s: Session, user_id: str, task_ids: list[str], now: datetime,
             settings: Any) -> None:
    """G14: each failed row waits its own jittered, growing delay; the others go on."""
    if not task_ids:
        return
    for row in s.execute(select(CalendarOutbox).where(
            CalendarOutbox.user_id == user_id, CalendarOutbox.task_id.in_(task_ids))).scalars():
        row.attempts += 1
        row.not_before = now + timedelta(seconds=queue.backoff(row.attempts, settings))


