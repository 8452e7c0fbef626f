"""The emulator's notion of "now", injectable so expiry can be tested without sleeping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class AdjustableClock:
    """Real time (or a frozen instant) plus an offset that only moves forward.

    The admin API and tests advance it to expire access tokens, channels and sync tokens;
    going backwards is refused because etags and sync sequence numbers assume monotonic time.
    """

    def __init__(self, frozen_at: datetime | None = None) -> None:
        if frozen_at is not None and frozen_at.tzinfo is None:
            raise ValueError("frozen_at must be timezone-aware")
        self._frozen_at = frozen_at
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        base = self._frozen_at if self._frozen_at is not None else system_clock()
        return base + self._offset

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self()
