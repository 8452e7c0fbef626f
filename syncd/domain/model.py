"""Values the rules reason about. Plain frozen dataclasses: cheap to build from rows and to compare."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum


class Kind(StrEnum):
    TASK_ASSIGNED = "task_assigned"
    TASK_DUE = "task_due"
    TASK_OVERDUE = "task_overdue"
    TASK_COMPLETED = "task_completed"
    CALENDAR_DISCONNECTED = "calendar_disconnected"


class Channel(StrEnum):
    EMAIL = "email"
    BROWSER = "browser"  # pop-ups and Web Push share the seed's one "browser" toggle
    MOBILE = "mobile"


# SPEC §2: which kinds each channel carries at all.
CHANNEL_KINDS: dict[Channel, frozenset[Kind]] = {
    Channel.EMAIL: frozenset({Kind.TASK_ASSIGNED, Kind.TASK_DUE, Kind.CALENDAR_DISCONNECTED}),
    Channel.BROWSER: frozenset(Kind),
    Channel.MOBILE: frozenset({Kind.TASK_ASSIGNED, Kind.TASK_DUE, Kind.TASK_COMPLETED}),
}


def default_preferences() -> dict[str, dict[str, bool]]:
    return {ch.value: {k.value: True for k in sorted(CHANNEL_KINDS[ch])} for ch in Channel}


@dataclass(frozen=True)
class Recipient:
    id: str
    timezone: str
    locale: str
    all_day_notify_at: time
    preferences: dict[str, dict[str, bool]] = field(default_factory=default_preferences)

    def wants(self, channel: Channel, kind: Kind) -> bool:
        if kind not in CHANNEL_KINDS[channel]:
            return False
        return self.preferences.get(channel.value, {}).get(kind.value, True)


@dataclass(frozen=True)
class Task:
    id: str
    text: str
    type: str
    author_id: str
    responsible_id: str
    due_at: datetime | None = None
    due_date: date | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None
    # Bumped on every change of responsible, so a task handed back gets a fresh task_assigned.
    assignment_seq: int = 1

    @property
    def is_open(self) -> bool:
        return self.completed_at is None

    @property
    def deadline_key(self) -> str | None:
        if self.due_at is not None:
            return self.due_at.isoformat()
        if self.due_date is not None:
            return self.due_date.isoformat()
        return None
