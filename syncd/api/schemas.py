"""Request and response bodies. Validation here names the field; the service checks the rest."""

from __future__ import annotations

from datetime import date, datetime, time
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
Id = Annotated[str, Field(pattern=ID_PATTERN, examples=["u-42"])]


def _printable(value: str) -> str:
    # NUL and other C0 controls break PostgreSQL text and mail headers; tabs and newlines stay.
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise ValueError("control characters are not allowed")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValueError("unpaired surrogates are not allowed")
    return value


def Text(max_length: int, min_length: int = 0) -> Any:
    return Annotated[str, Field(min_length=min_length, max_length=max_length),
                     AfterValidator(_printable)]


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _zone(name: str) -> str:
    if name not in _zones():
        raise ValueError(f"unknown time zone {name!r}")
    return name


def _sane_instant(value: datetime) -> datetime:
    # Far-off years overflow when converted between zones; no CRM deadline lives there.
    if not 1970 <= value.year <= 2200:
        raise ValueError("must be between the years 1970 and 2200")
    return value


def _sane_date(value: date) -> date:
    if not 1970 <= value.year <= 2200:
        raise ValueError("must be between the years 1970 and 2200")
    return value


TimeZone = Annotated[str, Field(max_length=64, examples=["Europe/Berlin"]), AfterValidator(_zone)]
Instant = Annotated[AwareDatetime, AfterValidator(_sane_instant)]
Day = Annotated[date, AfterValidator(_sane_date)]
Preferences = dict[Annotated[str, Field(max_length=32)], dict[Annotated[str, Field(max_length=32)], bool]]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserIn(Strict):
    name: Text(200) | None = None
    email: Annotated[str, Field(max_length=254, pattern=r"^$|^[^@\s]+@[^@\s]+$"),
                     AfterValidator(_printable)] | None = None
    timezone: TimeZone | None = None
    locale: Literal["en", "ru"] | None = None
    all_day_notify_at: time | None = None
    channels: Preferences | None = None


class SettingsIn(Strict):
    timezone: TimeZone | None = None
    locale: Literal["en", "ru"] | None = None
    all_day_notify_at: time | None = None
    channels: Preferences | None = None

    @field_validator("timezone", "locale", "all_day_notify_at", "channels")
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("may not be null")
        return v


CalendarStateName = Literal["off", "connecting", "on", "needs_reconnect", "paused"]


class CalendarState(BaseModel):
    state: CalendarStateName = "off"


class CalendarStatus(BaseModel):
    state: CalendarStateName
    calendar_id: str | None = None
    last_push_at: datetime | None = None
    last_pull_at: datetime | None = None
    last_error: str | None = None
    paused_until: datetime | None = None


class UserOut(BaseModel):
    id: str
    name: str
    email: str
    timezone: str
    locale: str
    all_day_notify_at: str
    channels: Preferences


class SettingsOut(BaseModel):
    timezone: str
    locale: str
    all_day_notify_at: str
    channels: Preferences
    google_calendar: CalendarState


class EntityIn(Strict):
    type: Text(64, 1)
    id: Text(128, 1)
    url: Annotated[str, Field(max_length=2048, pattern=r"^https?://\S+$"),
                   AfterValidator(_printable)] | None = None


NON_NULL = ("text", "type", "author_id", "responsible_id")


class TaskIn(Strict):
    actor_id: Id = Field(description="Who made this change (N3: the author of a hand-over).")
    text: Text(10_000, 1) | None = None
    type: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.-]+$")] | None = None
    author_id: Id | None = None
    responsible_id: Id | None = None
    due_at: Instant | None = Field(None, description="RFC 3339 with offset: a timed task.")
    due_date: Day | None = Field(None, description="A local date: a whole-day task.")
    duration_minutes: Annotated[int, Field(ge=1, le=10_080)] | None = None
    entity: EntityIn | None = None
    completed_at: Instant | None = None
    completed_by: Id | None = None
    result: Text(10_000) | None = None

    @field_validator(*NON_NULL)
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("may not be null")
        return v


class CompleteIn(Strict):
    by: Id
    result: Text(10_000) | None = None


class EntityOut(BaseModel):
    type: str
    id: str
    url: str | None


class TaskOut(BaseModel):
    id: str
    text: str
    type: str
    author_id: str
    responsible_id: str
    due_at: datetime | None
    due_date: date | None
    duration_minutes: int | None
    entity: EntityOut | None
    completed_at: datetime | None
    completed_by: str | None
    result: str | None
    created_at: datetime
    updated_at: datetime


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None


class TokenOut(BaseModel):
    token: str


class NotificationOut(BaseModel):
    id: int
    kind: str
    task_id: str | None
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None


class Count(BaseModel):
    count: int


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody
