"""Client-side request limits below Google's per-minute quotas (G14), shared by every node.

Google counts a user's requests, and the project's, "per minute using a sliding window",
whichever node sends them. A token bucket would not do: full at the start of a minute and
refilled during it, it lets nearly twice its rate through in some 60 seconds. So each limit
is a count of requests per second over the last 61 seconds (one more than Google's window, as
a second's count may have started up to a second before the window did), and a request goes
out only if the sum stays within the limit. The counts are rows (`rate_windows`) on the
injected clock, so every node draws on the same allowance; a take is one short transaction
that locks them (`FOR UPDATE` on PostgreSQL; SQLite has one writer anyway). Nothing here
sleeps: a caller given less than it asked for persists the wait (a rescheduled job).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session

from syncd.clock import Clock
from syncd.jobs.queue import RetryLater
from syncd.store.db import Database
from syncd.store.tables import RateWindow

PROJECT = "project"
SLOTS = 61  # seconds counted: see the module docstring


@dataclass(frozen=True)
class Grant:
    count: int  # requests that may go out now, up to what was asked
    retry_after: float  # if none may: seconds until one may


class RateLimited(RetryLater):
    """A single call found no request left in the window: its job runs again when there is."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"client-side rate limit: next request in {retry_after:.1f} s",
                         delay=retry_after)


class RateLimits:
    def __init__(self, db: Database, clock: Clock, per_user: int, per_project: int) -> None:
        self.db, self.clock = db, clock
        self.per_user, self.per_project = per_user, per_project

    def take(self, user_id: str, want: int = 1) -> Grant:
        """Take up to `want` requests within both the user's limit and the project's."""
        now = self.clock.now().timestamp()
        second = math.floor(now)
        limits = {"user:" + user_id: self.per_user, PROJECT: self.per_project}
        with self.db.transaction() as s:
            rows = self._lock(s, limits)
            if len(rows) < len(limits):  # first use (a row a racing node made first wins)
                self.db.insert_ignore(s, RateWindow, [
                    {"key": k, "second": second, "counts": [0] * SLOTS}
                    for k in limits if k not in rows], ["key"])
                rows = self._lock(s, limits)
            counts = {k: _slide(rows[k], second) for k in limits}
            count = min(want, *(limit - sum(counts[k]) for k, limit in limits.items()))
            if count <= 0:
                wait = max(_wait(counts[k], limit, second) for k, limit in limits.items())
                return Grant(0, max(0.0, second + wait - now))
            for k, row in rows.items():
                counts[k][-1] += count
                row.second, row.counts = max(second, row.second), counts[k]
        return Grant(count, 0.0)

    def take_one(self, user_id: str) -> None:
        """One request, or `RateLimited`."""
        grant = self.take(user_id, 1)
        if not grant.count:
            raise RateLimited(grant.retry_after)

    @staticmethod
    def _lock(s: Session, limits: dict[str, int]) -> dict[str, RateWindow]:
        # In key order, so two takes never wait on each other's rows crosswise.
        return {w.key: w for w in s.execute(
            select(RateWindow).where(RateWindow.key.in_(list(limits)))
            .order_by(RateWindow.key).with_for_update()).scalars()}


def _slide(row: RateWindow, second: int) -> list[int]:
    """The row's counts as of `second`: older seconds dropped, the ones since added as 0. A
    clock that stepped back counts into the newest second there is."""
    shift = min(SLOTS, max(0, second - row.second))
    return list(row.counts[shift:]) + [0] * shift


def _wait(counts: list[int], limit: int, second: int) -> int:
    """Seconds from `second` until the window has room for one more request."""
    excess = sum(counts) - limit + 1
    if excess <= 0:
        return 0
    for i, n in enumerate(counts):
        excess -= n
        if excess <= 0:
            return i + 1  # slot i leaves the window when the clock reaches its second + SLOTS
    return 0
