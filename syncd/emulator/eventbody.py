"""Validation, normalisation, patch-merging and rendering of Calendar Event resources."""

from __future__ import annotations

import base64
import re
import secrets
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import errors
from .errors import ApiError

BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
_EVENT_ID = re.compile(r"[0-9a-v]{5,1024}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_OVERRIDES = 5
MAX_REMINDER_MINUTES = 40_320
MAX_PROPERTY_KEY = 44
MAX_PROPERTY_VALUE = 1024
MAX_PROPERTIES = 300
MAX_PROPERTIES_BYTES = 32 * 1024

# Fields a client may write; everything else in a request body (kind, etag, created, htmlLink,
# creator, organizer, iCalUID...) is output-only and ignored, as Google does.
_PLAIN_FIELDS = ("summary", "description", "location")
_ENUMS = {
    "status": ("confirmed", "tentative", "cancelled"),
    "transparency": ("opaque", "transparent"),
    "visibility": ("default", "public", "private", "confidential"),
    "colorId": tuple(str(n) for n in range(1, 12)),
}
_PASSTHROUGH = ("attendees", "source", "guestsCanInviteOthers", "guestsCanModify",
                "guestsCanSeeOtherGuests", "anyoneCanAddSelf", "recurrence")
WRITABLE = frozenset((*_PLAIN_FIELDS, *_ENUMS, *_PASSTHROUGH, "start", "end", "reminders",
                      "extendedProperties", "sequence"))


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def new_event_id() -> str:
    # Hex digits are base32hex digits too: 26 characters, like the ids Google generates.
    return secrets.token_hex(13)


def check_event_id(event_id: Any) -> str:
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise errors.bad_request("Invalid resource id value.")
    return event_id


def strip_nulls(value: dict[str, Any]) -> dict[str, Any]:
    """Drop null members of objects (nested objects too): Google reads null as "absent"."""
    return {k: strip_nulls(v) if type(v) is dict else v for k, v in value.items()
            if v is not None}


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Google's patch semantics: objects merge recursively, arrays and scalars replace, null
    removes the field."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


def _parse_time(raw: Any, which: str, calendar_zone: str) -> tuple[dict[str, Any], float, bool]:
    """-> (stored time object, instant, is_all_day)."""
    if not isinstance(raw, dict) or not (raw.get("date") or raw.get("dateTime")):
        raise errors.required(f"Missing {which} time.")
    tz_name = raw.get("timeZone")
    if tz_name is not None and (not isinstance(tz_name, str) or zone(tz_name) is None):
        raise errors.bad_request(f"Invalid time zone definition for {which} time.")
    if raw.get("date") and raw.get("dateTime"):
        raise errors.bad_request(f"Invalid {which} time.")
    if raw.get("date"):
        value = raw["date"]
        try:
            if not isinstance(value, str) or not _DATE.fullmatch(value):
                raise ValueError(value)
            day = date.fromisoformat(value)
        except ValueError:
            raise errors.bad_request(f'Invalid value for: Invalid format: "{value}"') from None
        local = datetime.combine(day, time(0), zone(tz_name or calendar_zone))
        stored = {"date": value} | ({"timeZone": tz_name} if tz_name else {})
        return stored, local.timestamp(), True
    value = raw["dateTime"]
    try:
        if not isinstance(value, str) or "T" not in value.upper():
            raise ValueError(value)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise errors.bad_request(f'Invalid value for: Invalid format: "{value}"') from None
    if moment.tzinfo is None:
        if tz_name is None:
            raise errors.required(f"Missing time zone definition for {which} time.")
        moment = moment.replace(tzinfo=zone(tz_name))
    instant = moment.astimezone(UTC)
    stored = {"dateTime": instant.isoformat(timespec="seconds").replace("+00:00", "Z")}
    if tz_name:
        stored["timeZone"] = tz_name
    return stored, instant.timestamp(), False


def _reminders(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {"useDefault": True}
    if not isinstance(raw, dict):
        raise errors.bad_request("Invalid value for: reminders")
    use_default = bool(raw.get("useDefault", False))
    overrides = raw.get("overrides") or []
    if use_default and overrides:
        raise ApiError(400, "cannotUseDefaultRemindersAndSpecifyOverride",
                       "Cannot specify both default reminders and overrides at the same time.",
                       domain="calendar")
    if not isinstance(overrides, list):
        raise errors.bad_request("Invalid value for: reminders.overrides")
    if len(overrides) > MAX_OVERRIDES:
        raise ApiError(400, "eventRemindersCountExceedsLimit",
                       f"The maximum number of override reminders is {MAX_OVERRIDES}.",
                       domain="calendar")
    clean = []
    for item in overrides:
        if not isinstance(item, dict) or item.get("method") is None:
            raise errors.required("Missing override reminder method.")
        if item.get("minutes") is None:
            raise errors.required("Missing override reminder minutes.")
        if item["method"] not in ("email", "popup"):
            raise errors.bad_request("Invalid reminder method value.")
        minutes = item["minutes"]
        if (isinstance(minutes, bool) or not isinstance(minutes, int)
                or not 0 <= minutes <= MAX_REMINDER_MINUTES):
            raise errors.bad_request(
                f"Invalid value for reminder minutes: {minutes}. "
                f"Values must be between 0 and {MAX_REMINDER_MINUTES}.")
        clean.append({"method": item["method"], "minutes": minutes})
    return {"useDefault": use_default, **({"overrides": clean} if clean else {})}


def _extended_properties(raw: Any) -> dict[str, dict[str, str]] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise errors.bad_request("Invalid value for: extendedProperties")
    out: dict[str, dict[str, str]] = {}
    count = size = 0
    for kind in ("private", "shared"):
        props = raw.get(kind)
        if props is None:
            continue
        if not isinstance(props, dict):
            raise errors.bad_request(f"Invalid value for: extendedProperties.{kind}")
        kept = {}
        for key, value in props.items():
            if not isinstance(value, str):
                raise errors.bad_request(f"Invalid value for: extendedProperties.{kind}.{key}")
            # Google's documented limits: long keys silently dropped, long values truncated.
            if len(key) > MAX_PROPERTY_KEY:
                continue
            kept[key] = value[:MAX_PROPERTY_VALUE]
            count += 1
            size += len(key.encode()) + len(kept[key].encode())
        if kept:
            out[kind] = kept
    if count > MAX_PROPERTIES or size > MAX_PROPERTIES_BYTES:
        raise errors.bad_request(
            f"Extended properties exceed the limit of {MAX_PROPERTIES} properties or "
            f"{MAX_PROPERTIES_BYTES} bytes per event.")
    return out or None


def normalise(body: Any, calendar_zone: str, may_hold_nulls: bool = True
              ) -> tuple[dict[str, Any], float, float]:
    """A request body as stored writable fields, with the start and end instants.
    `may_hold_nulls=False` (the raw request never says "null") skips stripping them."""
    if not isinstance(body, dict):
        raise errors.bad_request("Invalid value for: event")
    if may_hold_nulls:
        body = strip_nulls(body)
    stored: dict[str, Any] = {}
    for name in _PLAIN_FIELDS:
        if name in body:
            if not isinstance(body[name], str):
                raise errors.bad_request(f"Invalid value for: {name}")
            stored[name] = body[name]
    for name, allowed in _ENUMS.items():
        if name in body:
            if body[name] not in allowed:
                raise errors.bad_request(f"Invalid value for: {name}")
            stored[name] = body[name]
    for name in _PASSTHROUGH:
        if name in body:
            stored[name] = body[name]
    if "sequence" in body:
        if isinstance(body["sequence"], bool) or not isinstance(body["sequence"], int):
            raise errors.bad_request("Invalid value for: sequence")
        stored["sequence"] = body["sequence"]
    if "start" not in body:
        raise errors.required("Missing start time.")
    if "end" not in body:
        raise errors.required("Missing end time.")
    stored["start"], start_ts, start_all_day = _parse_time(body["start"], "start", calendar_zone)
    stored["end"], end_ts, end_all_day = _parse_time(body["end"], "end", calendar_zone)
    if start_all_day != end_all_day:
        raise errors.bad_request("Start and end times must either both be date or both be dateTime.")
    if end_ts < start_ts or (start_all_day and end_ts == start_ts):
        raise errors.time_range_empty()
    if "recurrence" in stored and not start_all_day and "timeZone" not in stored["start"]:
        # A series needs a named zone to expand across DST; an offset is not enough.
        raise errors.required("Missing time zone definition for start time.")
    stored["reminders"] = _reminders(body.get("reminders"))
    props = _extended_properties(body.get("extendedProperties"))
    if props:
        stored["extendedProperties"] = props
    return stored, start_ts, end_ts


def writable_view(data: dict[str, Any]) -> dict[str, Any]:
    """The stored fields a patch merges into; sequence is left out so that it only changes
    when the client sets it or when the event's time moves."""
    return {k: v for k, v in data.items() if k in WRITABLE and k != "sequence"}


def rfc3339_millis(moment: datetime) -> str:
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def format_instant(ts: float, zone_name: str) -> str:
    """RFC 3339 in the zone's offset at that instant, "Z" when the offset is zero."""
    local = datetime.fromtimestamp(ts, zone(zone_name) or UTC)
    text = local.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def html_link(base_url: str, calendar_id: str, event_id: str) -> str:
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
    return f"{base_url}/calendar/event?eid={eid}"


def render_time(stored: dict[str, Any], ts: float, zone_name: str) -> dict[str, Any]:
    if "date" in stored:
        return dict(stored)
    out = {"dateTime": format_instant(ts, stored.get("timeZone") or zone_name)}
    if "timeZone" in stored:
        out["timeZone"] = stored["timeZone"]
    return out


def render(data: dict[str, Any], start_ts: float, end_ts: float, zone_name: str,
           zone_forced: bool) -> dict[str, Any]:
    """The Event resource as Google returns it. dateTime values are shown in the event's own
    zone, else the calendar's; a `timeZone` request parameter overrides both."""
    out = dict(data)
    for key, ts in (("start", start_ts), ("end", end_ts)):
        stored = data[key]
        if zone_forced and "dateTime" in stored:
            out[key] = {"dateTime": format_instant(ts, zone_name),
                        **({"timeZone": stored["timeZone"]} if "timeZone" in stored else {})}
        else:
            out[key] = render_time(stored, ts, zone_name)
    return out


def minimal_cancelled(data: dict[str, Any]) -> dict[str, Any]:
    """Deleted events in list results: Google guarantees only the id (and status)."""
    return {"kind": "calendar#event", "etag": data["etag"], "id": data["id"],
            "status": "cancelled"}
