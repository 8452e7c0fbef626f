"""The `deliver` job: hand one delivery row to its channel's sender, recording state before
and after the send so a success is never repeated by a later retry."""

from __future__ import annotations

from sqlalchemy import update

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
        with self.db.transaction() as s:
            d = s.get(Delivery, delivery_id)
            if d is None or d.state in ("sent", "skipped", "cancelled", "failed"):
                return
            entry = s.get(Entry, d.entry_id)
            assert entry is not None
            if entry.removed_at is not None:
                d.state, d.reason = "cancelled", "entry removed"
                return
            if (d.channel == Channel.EMAIL and entry.kind == Kind.TASK_DUE
                    and entry.read_at is not None):
                d.state, d.reason = "skipped", "read in the app first (N5)"
                return
            tz = d.payload.get("timezone") or "UTC"
            if rules.reminder_is_stale(Kind(entry.kind), entry.occurrence, tz, self.clock.now()):
                d.state, d.reason = "skipped", "deadline passed before it could be sent (N12)"
                return
            sender = self.senders.get(d.channel)
            if sender is None:
                d.state, d.reason = "skipped", f"no sender configured for {d.channel}"
                return
            d.state, d.attempts = "sending", d.attempts + 1
            message = Message(d.id, d.channel, d.user_id, d.recipient, d.payload)
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
