"""The `deliver` job: hand one delivery row to its channel's sender, recording state before
and after the send so a success is never repeated by a later retry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, bindparam, select, update

from syncd.channels.base import Message, PermanentError, Sender, Skipped, TransientError
from syncd.clock import Clock
from syncd.domain import rules
from syncd.domain.model import Channel, Kind
from syncd.jobs.queue import ClaimedJob, GiveUp, RetryLater
from syncd.store.db import Database
from syncd.store.tables import Delivery, Entry


class Deliverer:
    def __init__(self, db: Database, clock: Clock, senders: dict[str, Sender] | None = None):
        self.db = db
        self.clock = clock
        self.senders: dict[str, Sender] = dict(senders or {})

    def register(self, sender: Sender) -> None:
        self.senders[sender.channel] = sender

    def _settle(self, delivery_id: int, state: str, reason: str | None = None) -> None:
        values: dict = {"state": state, "reason": reason}
        if state == "sent":
            values["sent_at"] = self.clock.now()
        with self.db.transaction() as s:
            s.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))

    def __call__(self, job: ClaimedJob) -> None:
        delivery_id = job.payload["delivery_id"]
        now = self.clock.now()
        with self.db.transaction() as s:
            found = s.execute(_DELIVERY_AND_ENTRY, {"id": delivery_id}).first()
            if found is None or found.state in ("sent", "skipped", "cancelled", "failed"):
                return
            sender = self.senders.get(found.channel)
            skip = _why_not(found, sender is not None, now)
            if skip is not None:
                state, reason = skip
                s.execute(update(Delivery).where(Delivery.id == delivery_id)
                          .values(state=state, reason=reason))
                return
            s.execute(update(Delivery).where(Delivery.id == delivery_id)
                      .values(state="sending", attempts=Delivery.attempts + 1))
            message = Message(delivery_id, found.channel, found.user_id, found.recipient,
                              found.payload)
        assert sender is not None
        try:
            sender.send(message)
        except Skipped as exc:
            self._settle(delivery_id, "skipped", str(exc)[:500])
            return
        except PermanentError as exc:
            self._settle(delivery_id, "failed", str(exc)[:500])
            raise GiveUp(str(exc)) from exc
        except TransientError as exc:
            self._settle(delivery_id, "pending", str(exc)[:500])
            raise RetryLater(str(exc)) from exc
        self._settle(delivery_id, "sent")


_DELIVERY_AND_ENTRY = (
    select(Delivery.state, Delivery.channel, Delivery.user_id, Delivery.recipient,
           Delivery.payload, Entry.kind, Entry.occurrence, Entry.read_at, Entry.removed_at)
    .join(Entry, Entry.id == Delivery.entry_id).where(Delivery.id == bindparam("id")))


def _why_not(found: Row, has_sender: bool, now: datetime) -> tuple[str, str] | None:
    """The (state, reason) that settles a delivery without sending it, or None: send it."""
    if found.removed_at is not None:
        return "cancelled", "entry removed"
    if found.channel == Channel.EMAIL and found.kind == Kind.TASK_DUE and found.read_at is not None:
        return "skipped", "read in the app first (N5)"
    tz = found.payload.get("timezone") or "UTC"
    if rules.reminder_is_stale(Kind(found.kind), found.occurrence, tz, now):
        return "skipped", "deadline passed before it could be sent (N12)"
    if not has_sender:
        return "skipped", f"no sender configured for {found.channel}"
    return None
