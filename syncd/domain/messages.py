"""Titles and bodies of notifications, in the recipient's locale (en, ru) and time zone."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from syncd.domain.model import Kind

TITLES: dict[str, dict[Kind, str]] = {
    "en": {
        Kind.TASK_ASSIGNED: "New task",
        Kind.TASK_DUE: "Time to do the task",
        Kind.TASK_OVERDUE: "Task overdue",
        Kind.TASK_COMPLETED: "Your task was completed",
        Kind.CALENDAR_DISCONNECTED: "Google Calendar disconnected",
    },
    "ru": {
        Kind.TASK_ASSIGNED: "Новая задача",
        Kind.TASK_DUE: "Пора выполнить задачу",
        Kind.TASK_OVERDUE: "Задача просрочена",
        Kind.TASK_COMPLETED: "Ваша задача выполнена",
        Kind.CALENDAR_DISCONNECTED: "Google Календарь отключён",
    },
}

TYPE_LABELS = {
    "en": {"call": "Call", "meeting": "Meeting", "follow_up": "Follow up", "task": "Task"},
    "ru": {"call": "Звонок", "meeting": "Встреча", "follow_up": "Связаться", "task": "Задача"},
}


def type_label(task_type: str, locale: str) -> str:
    """The CRM's own type words are shown as they are; the standard ones are translated."""
    return TYPE_LABELS.get(locale, TYPE_LABELS["en"]).get(task_type, task_type)


WORDS = {
    "en": {"due": "Due", "all_day": "all day", "by": "Set by", "done_by": "Completed by",
           "reconnect": "Reconnect Google Calendar in your profile to keep your tasks in sync."},
    "ru": {"due": "Срок", "all_day": "весь день", "by": "Поставил", "done_by": "Выполнил",
           "reconnect": "Подключите Google Календарь в профиле заново, чтобы задачи снова синхронизировались."},
}


def format_deadline(due_at: datetime | None, due_date: date | None, tz: str, locale: str) -> str:
    if due_at is not None:
        return due_at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")
    if due_date is not None:
        return f"{due_date.isoformat()} ({WORDS[locale]['all_day']})"
    return ""


def render(kind: Kind, locale: str, *, task_type: str = "", text: str = "",
           deadline: str = "", actor_name: str = "") -> tuple[str, str]:
    """(title, body) as plain text; every surface escapes them for its own format."""
    words = WORDS[locale]
    title = TITLES[locale][kind]
    if kind is Kind.CALENDAR_DISCONNECTED:
        return title, words["reconnect"]
    lines = [f"{type_label(task_type, locale)}: {text}" if task_type else text]
    if deadline:
        lines.append(f"{words['due']}: {deadline}")
    if actor_name:
        label = words["done_by"] if kind is Kind.TASK_COMPLETED else words["by"]
        lines.append(f"{label}: {actor_name}")
    return title, "\n".join(lines)
