"""Helpers the senders share: localised wording of dates and types, push text, fan-out progress."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from syncd.channels.base import Gone, PermanentError, TransientError
from syncd.domain import messages

T = TypeVar("T")

WEEKDAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "ru": ["понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"],
}
MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"],
    # genitive: «2 марта»
    "ru": ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
           "сентября", "октября", "ноября", "декабря"],
}
ALL_DAY = {"en": "all day", "ru": "весь день"}
ENTITY_TYPES = {
    "en": {"lead": "Lead", "deal": "Deal", "contact": "Contact", "company": "Company",
           "customer": "Customer"},
    "ru": {"lead": "Сделка", "deal": "Сделка", "contact": "Контакт", "company": "Компания",
           "customer": "Покупатель"},
}

PUSH_BODY_CHARS = 1000  # Web Push and FCM carry about 4 KB; the task text may be 10,000 chars


def locale_of(payload: dict) -> str:
    return payload.get("locale") if payload.get("locale") in WEEKDAYS else "en"


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def long_date(d: date, locale: str) -> str:
    return f"{WEEKDAYS[locale][d.weekday()]}, {d.day} {MONTHS[locale][d.month - 1]} {d.year}"


def deadline(payload: dict) -> dict[str, str]:
    """The task's deadline in the recipient's zone: {"text", "time"} ("" when there is none).

    text: "Monday, 2 March 2026, 14:00 (Europe/Berlin)" / "понедельник, 2 марта 2026, 14:00
    (Europe/Moscow)"; a whole-day task: "Monday, 2 March 2026, all day".
    """
    locale = locale_of(payload)
    if payload.get("due_at"):
        tz_name = payload.get("timezone") or "UTC"
        local = datetime.fromisoformat(payload["due_at"]).astimezone(zone(tz_name))
        hhmm = local.strftime("%H:%M")
        return {"text": f"{long_date(local.date(), locale)}, {hhmm} ({tz_name})", "time": hhmm}
    if payload.get("due_date"):
        d = date.fromisoformat(payload["due_date"])
        return {"text": f"{long_date(d, locale)}, {ALL_DAY[locale]}", "time": ""}
    return {"text": "", "time": ""}


def task_type_label(task_type: str | None, locale: str) -> str:
    """The same words as the notification center's (call → Call / Звонок)."""
    return messages.type_label(task_type, locale) if task_type else ""


def entity_label(payload: dict, locale: str) -> str:
    kind, ident = payload.get("entity_type"), payload.get("entity_id")
    if not kind:
        return ""
    name = ENTITY_TYPES[locale].get(kind, kind)
    return f"{name} {ident}" if ident else name


def safe_link(url: str | None) -> str | None:
    """Only http(s) links go into a message (never javascript: or data:)."""
    if url and url.split(":", 1)[0].lower() in ("http", "https"):
        return url
    return None


def one_line(text: str | None, limit: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def clip(text: str | None, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def push_text(payload: dict) -> tuple[str, str]:
    """(title, body) for a push notification: the center entry's own localised wording. A long
    task text is cut, not the deadline and "set by" lines after it."""
    title, body = clip(payload.get("title"), 200), payload.get("body") or ""
    if len(body) <= PUSH_BODY_CHARS:
        return title, body
    text = payload.get("task_text") or ""
    at = body.find(text) if text else -1
    if at >= 0:
        head, tail = body[:at + len(text)], body[at + len(text):][:PUSH_BODY_CHARS // 2]
        return title, clip(head, PUSH_BODY_CHARS - len(tail)) + tail
    return title, clip(body, PUSH_BODY_CHARS)


def push_data(message_id: int, payload: dict, public_url: str) -> dict[str, str]:
    """What the page's service worker / the app gets beside title and body (all strings)."""
    data = {
        "delivery_id": str(message_id),
        "entry_id": str(payload.get("entry_id") or ""),
        "kind": payload.get("kind") or "",
        "task_id": payload.get("task_id") or "",
        "url": safe_link(payload.get("entity_url")) or public_url,
        "tag": f"entry-{payload.get('entry_id')}",
    }
    return data


class Progress:
    """Targets (subscriptions, devices) one delivery already reached, so a retry after a partial
    failure goes only to the rest. In memory, bounded: after a crash, or on another node, a
    retry may reach a target twice; the notification's tag / collapse key makes the device
    replace, not repeat, it."""

    def __init__(self, limit: int = 10_000) -> None:
        self._done: OrderedDict[int, set[str]] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def done(self, delivery_id: int) -> set[str]:
        with self._lock:
            return set(self._done.get(delivery_id, ()))

    def mark(self, delivery_id: int, target: str) -> None:
        with self._lock:
            self._done.setdefault(delivery_id, set()).add(target)
            self._done.move_to_end(delivery_id)
            while len(self._done) > self._limit:
                self._done.popitem(last=False)

    def forget(self, delivery_id: int) -> None:
        with self._lock:
            self._done.pop(delivery_id, None)


def fan_out(delivery_id: int, targets: list[T], progress: Progress, label: str,
            push: Callable[[T], None], drop: Callable[[T], None]) -> None:
    """Send one delivery to each of a user's targets (browsers, phones), each once: a retry
    goes only to those not reached yet. A target the service calls gone is dropped; any
    transient failure makes the delivery retry; it fails for good only if none was reached."""
    done = progress.done(delivery_id)
    transient: list[str] = []
    permanent: list[str] = []
    reached = 0
    for target in targets:
        key = str(target.id)  # type: ignore[attr-defined]
        if key in done:
            reached += 1
            continue
        try:
            push(target)
        except Gone:
            drop(target)
            continue
        except TransientError as exc:
            transient.append(f"{label} {key}: {exc}")
            continue
        except PermanentError as exc:
            permanent.append(f"{label} {key}: {exc}")
            continue
        reached += 1
        progress.mark(delivery_id, key)
    if transient:
        raise TransientError("; ".join(transient)[:500])
    progress.forget(delivery_id)
    if permanent and not reached:
        raise PermanentError("; ".join(permanent)[:500])
