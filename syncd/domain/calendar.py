"""Google Calendar mapping and merge, pure (SPEC §5: G3, G4, G5, G7, G10–G13).

A task becomes an event body; an event read back from Google becomes the task fields it
implies; and a three-way merge against the state last synced decides which side wins.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from syncd.domain.messages import type_label
from syncd.domain.model import Recipient, Task
from syncd.domain.rules import local_instant

OPEN_IN_CRM = {"en": "Open in CRM", "ru": "Открыть в CRM"}
DONE_PREFIX = "✓ "
GRAPHITE = "8"  # Google's colorId for graphite
# Fields syncd owns on an event. A patch carries only those that differ from what was synced.
MIRRORED = ("summary", "description", "source", "start", "end", "reminders", "colorId",
            "transparency", "extendedProperties")


@dataclass(frozen=True)
class MirrorOptions:
    event_minutes: int = 30
    reminders: tuple[int, ...] = (5,)
    done_marks: tuple[str, ...] = ("✓", "✔", "☑", "[x]")
    done_color: str = GRAPHITE


@dataclass(frozen=True)
class TaskExtras:
    """Task fields the rules don't need but the event shows."""

    duration_minutes: int | None = None
    entity_url: str | None = None


def event_id(task_id: str, assignment: int, incarnation: int = 0) -> str:
    """G5: a deterministic id in Google's alphabet (base32hex, lowercase), so a retried insert
    hits 409 `duplicate` instead of creating a second event. A task handed to someone else, or
    restored after deletion in Google, gets a fresh id: Google never accepts an id twice."""
    raw = f"{task_id}\x1f{assignment}\x1f{incarnation}".encode()
    return base64.b32hexencode(raw).decode().rstrip("=").lower()


def _title(task: Task, locale: str) -> str:
    title = f"{type_label(task.type, locale)}: {task.text}"
    if len(title) > 1000:
        title = title[:999] + "…"
    return (DONE_PREFIX + title) if not task.is_open else title


def event_body(task: Task, extras: TaskExtras, who: Recipient, opts: MirrorOptions) -> dict | None:
    """G3/G4/G7: the event for a task, or None if the task has no deadline to show."""
    whole_day = task.due_at is None
    if whole_day:
        if task.due_date is None:
            return None
        start = local_instant(task.due_date, who.all_day_notify_at, who.timezone)
        minutes = extras.duration_minutes or opts.event_minutes
        reminders = [0]  # G4: Google can't remind on the day of a real all-day event
    else:
        start = task.due_at  # type: ignore[assignment]
        minutes = extras.duration_minutes or opts.event_minutes
        reminders = list(opts.reminders)
    tz = ZoneInfo(who.timezone)
    end = start + timedelta(minutes=minutes)
    done = not task.is_open
    description = task.text
    if extras.entity_url:
        description += f"\n\n{OPEN_IN_CRM.get(who.locale, OPEN_IN_CRM['en'])}: {extras.entity_url}"
    return {
        "summary": _title(task, who.locale),
        "description": description[:8000],
        "source": {"title": "CRM", "url": extras.entity_url} if extras.entity_url else None,
        "start": {"dateTime": start.astimezone(tz).isoformat(), "timeZone": who.timezone},
        "end": {"dateTime": end.astimezone(tz).isoformat(), "timeZone": who.timezone},
        "reminders": {"useDefault": False, "overrides": [] if done else [
            {"method": "popup", "minutes": m} for m in reminders[:5]]},
        "colorId": GRAPHITE if done else None,
        "transparency": "transparent",  # tasks don't block free/busy
        "extendedProperties": {"private": {
            "syncd_task": task.id, "syncd_whole_day": "1" if whole_day else "0"}},
    }


def _instant(value: dict | None) -> str | None:
    if not value:
        return None
    if value.get("date"):
        return value["date"]
    parsed = datetime.fromisoformat(value["dateTime"])
    return parsed.astimezone(UTC).isoformat()


def normalize(event: dict) -> dict:
    """The mirrored fields in one spelling, so Google's echo of our own write compares equal
    (it may shift offsets, drop empty fields or reorder reminders)."""
    reminders = event.get("reminders") or {}
    private = ((event.get("extendedProperties") or {}).get("private") or {})
    return {
        "summary": event.get("summary") or "",
        "description": event.get("description") or "",
        "source": event.get("source") or None,
        "start": _instant(event.get("start")),
        "end": _instant(event.get("end")),
        "reminders": {"useDefault": bool(reminders.get("useDefault", True)),
                      "overrides": sorted((o.get("method"), o.get("minutes"))
                                          for o in reminders.get("overrides") or [])},
        "colorId": event.get("colorId") or None,
        "transparency": event.get("transparency") or "opaque",
        "extendedProperties": {k: v for k, v in private.items() if k.startswith("syncd_")},
    }


def patch_for(desired: dict, synced: dict | None) -> dict:
    """G6: only the mirrored fields whose value differs from the state last synced."""
    if not synced:
        return dict(desired)
    want = normalize(desired)
    return {k: desired.get(k) for k in MIRRORED if want[k] != _jsonish(synced.get(k))}


def _jsonish(value: object) -> object:
    # Stored JSON turns tuples into lists; compare like with like.
    if isinstance(value, dict) and "overrides" in value:
        return {**value, "overrides": sorted(tuple(o) for o in value["overrides"])}
    return value


# -- reading events back -----------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What an event says about its task, in the task's terms."""

    done: bool
    due_at: datetime | None
    due_date: date | None
    deleted: bool = False

    def to_dict(self) -> dict:
        return {"done": self.done, "due_at": self.due_at.isoformat() if self.due_at else None,
                "due_date": self.due_date.isoformat() if self.due_date else None}

    @classmethod
    def from_dict(cls, data: dict) -> Seen:
        due_at, due_date = data.get("due_at"), data.get("due_date")
        return cls(done=bool(data.get("done")),
                   due_at=datetime.fromisoformat(due_at) if due_at else None,
                   due_date=date.fromisoformat(due_date) if due_date else None)


def _start(event: dict) -> datetime | None:
    value = (event.get("start") or {}).get("dateTime")
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.astimezone(UTC) if parsed.tzinfo else None


def read_event(event: dict, who: Recipient, opts: MirrorOptions) -> Seen:
    """G10/G11/G12: done marks or graphite mean done; the start is the deadline."""
    if event.get("status") == "cancelled":
        return Seen(done=False, due_at=None, due_date=None, deleted=True)
    title = (event.get("summary") or "").lstrip()
    done = any(title.startswith(m) for m in opts.done_marks) or \
        event.get("colorId") == opts.done_color
    start = _start(event)
    private = (event.get("extendedProperties") or {}).get("private") or {}
    if private.get("syncd_whole_day") == "1":
        day = start.astimezone(ZoneInfo(who.timezone)).date() if start else None
        return Seen(done=done, due_at=None, due_date=day, deleted=False)
    return Seen(done=done, due_at=start, due_date=None, deleted=False)


@dataclass(frozen=True)
class Merge:
    """What the CRM should take from Google. None: keep the CRM's value."""

    complete: bool | None = None  # True: complete the task; False: reopen it
    due_at: datetime | None = None
    due_date: date | None = None

    @property
    def empty(self) -> bool:
        return self.complete is None and self.due_at is None and self.due_date is None


def merge(base: Seen, google: Seen, crm: Seen) -> Merge:
    """G13: a field changed on one side takes that side; changed on both, the CRM wins."""
    complete = None
    if google.done != base.done and crm.done == base.done:
        complete = google.done
    due_at = due_date = None
    google_moved = (google.due_at, google.due_date) != (base.due_at, base.due_date)
    crm_moved = (crm.due_at, crm.due_date) != (base.due_at, base.due_date)
    if google_moved and not crm_moved and (google.due_at or google.due_date):
        due_at, due_date = google.due_at, google.due_date
    return Merge(complete=complete, due_at=due_at, due_date=due_date)


def seen_of(task: Task) -> Seen:
    return Seen(done=not task.is_open, due_at=task.due_at, due_date=task.due_date, deleted=False)
