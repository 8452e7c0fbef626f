"""Calendar API v3 methods: calendars, calendarList, events, channels, colors.

Each handler runs under the state lock and returns (status, JSON body or None, headers).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import errors, eventbody
from .colors import COLORS
from .listing import Lister
from .push import PushHub
from .scopes import app_created_only
from .settings import EmulatorSettings
from .state import Calendar, EmulatorState, Event

Result = tuple[int, dict[str, Any] | None, dict[str, str]]

# (HTTP method, path pattern under /calendar/v3/ with None for a variable segment, method id)
ROUTES: list[tuple[str, tuple[str | None, ...], str]] = [
    ("GET", ("users", "me", "calendarList"), "calendar.calendarList.list"),
    ("GET", ("users", "me", "calendarList", None), "calendar.calendarList.get"),
    ("POST", ("calendars",), "calendar.calendars.insert"),
    ("GET", ("calendars", None), "calendar.calendars.get"),
    ("DELETE", ("calendars", None), "calendar.calendars.delete"),
    ("GET", ("calendars", None, "events"), "calendar.events.list"),
    ("POST", ("calendars", None, "events"), "calendar.events.insert"),
    ("POST", ("calendars", None, "events", "watch"), "calendar.events.watch"),
    ("GET", ("calendars", None, "events", None), "calendar.events.get"),
    ("PUT", ("calendars", None, "events", None), "calendar.events.update"),
    ("PATCH", ("calendars", None, "events", None), "calendar.events.patch"),
    ("DELETE", ("calendars", None, "events", None), "calendar.events.delete"),
    ("POST", ("channels", "stop"), "calendar.channels.stop"),
    ("GET", ("colors",), "calendar.colors.get"),
]

_CALENDAR_COLOR = ("14", "#9fe1e7", "#000000")


_ROUTES_BY_SHAPE: dict[tuple[str, int], list[tuple[tuple[str | None, ...], str]]] = {}
for _verb, _pattern, _method in ROUTES:
    _ROUTES_BY_SHAPE.setdefault((_verb, len(_pattern)), []).append((_pattern, _method))


def match_route(http_method: str, segments: list[str]) -> tuple[str, list[str]] | None:
    for pattern, method in _ROUTES_BY_SHAPE.get((http_method, len(segments)), ()):
        if all(p is None or p == s for p, s in zip(pattern, segments)):
            return method, [s for p, s in zip(pattern, segments) if p is None]
    return None


@dataclass
class Call:
    """One authorised API call as the handlers see it."""
    method: str
    account: str
    client_id: str
    granting: frozenset[str]
    args: list[str]
    params: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    base_url: str

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise errors.parse_error() from None

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[-1] if values else None


class CalendarApi:
    def __init__(self, state: EmulatorState, settings: EmulatorSettings, push: PushHub) -> None:
        self.state = state
        self.settings = settings
        self.push = push
        self.lister = Lister(state, lambda: settings.sync_token_ttl)
        self.handlers: dict[str, Callable[[Call], Result]] = {
            "calendar.calendarList.list": self.calendar_list_list,
            "calendar.calendarList.get": self.calendar_list_get,
            "calendar.calendars.insert": self.calendars_insert,
            "calendar.calendars.get": self.calendars_get,
            "calendar.calendars.delete": self.calendars_delete,
            "calendar.events.list": self.events_list,
            "calendar.events.insert": self.events_insert,
            "calendar.events.watch": self.events_watch,
            "calendar.events.get": self.events_get,
            "calendar.events.update": self.events_update,
            "calendar.events.patch": self.events_patch,
            "calendar.events.delete": self.events_delete,
            "calendar.channels.stop": self.channels_stop,
            "calendar.colors.get": self.colors_get,
        }

    def run(self, call: Call) -> Result:
        zone_param = call.param("timeZone")
        # Checked before any handler runs, so a bad parameter never follows a write.
        if zone_param is not None and eventbody.zone(zone_param) is None:
            raise errors.invalid_parameter("timeZone", f"Invalid time zone: {zone_param}")
        return self.handlers[call.method](call)

    # -- access ----------------------------------------------------------------------------

    def _visible(self, call: Call, calendar: Calendar) -> bool:
        if calendar.owner != call.account:
            return False
        return not app_created_only(call.granting) or calendar.created_by == call.client_id

    def _calendar(self, call: Call, calendar_id: str) -> Calendar:
        if calendar_id == "primary":
            calendar_id = call.account
        calendar = self.state.calendars.get(calendar_id)
        # Someone else's calendar, or one this app may not see, is indistinguishable from a
        # calendar that does not exist (Google answers 404 for both).
        if calendar is None or not self._visible(call, calendar):
            raise errors.not_found()
        return calendar

    @staticmethod
    def _event(calendar: Calendar, event_id: str) -> Event:
        event = calendar.events.get(event_id)
        if event is None:
            raise errors.not_found()
        return event

    @staticmethod
    def _check_if_match(call: Call, event: Event) -> None:
        wanted = call.headers.get("if-match")
        if wanted is not None and wanted.strip() != "*" and \
                wanted.strip().removeprefix("W/") != event.data["etag"]:
            raise errors.condition_not_met()

    # -- calendars -------------------------------------------------------------------------

    @staticmethod
    def calendar_resource(calendar: Calendar) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "calendar#calendar", "etag": calendar.etag,
                               "id": calendar.id, "summary": calendar.summary}
        if calendar.description is not None:
            out["description"] = calendar.description
        if calendar.location is not None:
            out["location"] = calendar.location
        out["timeZone"] = calendar.time_zone
        out["conferenceProperties"] = {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}
        return out

    def _list_entry(self, calendar: Calendar) -> dict[str, Any]:
        entry = self.calendar_resource(calendar)
        entry["kind"] = "calendar#calendarListEntry"
        entry.update(colorId=_CALENDAR_COLOR[0], backgroundColor=_CALENDAR_COLOR[1],
                     foregroundColor=_CALENDAR_COLOR[2], selected=True, accessRole="owner",
                     defaultReminders=[])
        if calendar.primary:
            entry["primary"] = True
            entry["defaultReminders"] = [{"method": "popup", "minutes": 10}]
        return entry

    def calendars_insert(self, call: Call) -> Result:
        body = call.json()
        if not isinstance(body, dict):
            raise errors.parse_error()
        if not body.get("summary"):
            raise errors.required("Missing title.")
        account = self.state.accounts[call.account]
        time_zone = body.get("timeZone") or account.time_zone
        if not isinstance(time_zone, str) or eventbody.zone(time_zone) is None:
            raise errors.bad_request(f"Invalid time zone: {time_zone}")
        calendar = Calendar(
            id=f"c_{secrets.token_hex(24)}@group.calendar.google.com", owner=call.account,
            summary=str(body["summary"]), time_zone=time_zone, etag=self.state.next_etag(),
            description=body.get("description"), location=body.get("location"),
            created_by=call.client_id)
        self.state.calendars[calendar.id] = calendar
        return 200, self.calendar_resource(calendar), {}

    def calendars_get(self, call: Call) -> Result:
        return 200, self.calendar_resource(self._calendar(call, call.args[0])), {}

    def calendars_delete(self, call: Call) -> Result:
        calendar = self._calendar(call, call.args[0])
        if calendar.primary:
            raise errors.ApiError(403, "cannotDeletePrimaryCalendar",
                                  "Cannot delete primary calendar.", domain="calendar")
        del self.state.calendars[calendar.id]
        for channel in self.state.channels.values():
            if channel.calendar_id == calendar.id:
                channel.stopped = True
        return 204, None, {}

    def calendar_list_list(self, call: Call) -> Result:
        mine = sorted(self.state.calendars_of(call.account), key=lambda c: (not c.primary, c.id))
        return 200, {"kind": "calendar#calendarList", "etag": self.state.next_etag(),
                     "nextSyncToken": secrets.token_urlsafe(16),
                     "items": [self._list_entry(c) for c in mine]}, {}

    def calendar_list_get(self, call: Call) -> Result:
        return 200, self._list_entry(self._calendar(call, call.args[0])), {}

    def colors_get(self, call: Call) -> Result:
        return 200, COLORS, {}

    # -- events ----------------------------------------------------------------------------

    def _render(self, calendar: Calendar, event: Event, call: Call) -> dict[str, Any]:
        forced = call.param("timeZone")
        return eventbody.render(event.data, event.start_ts, event.end_ts,
                                forced or calendar.time_zone, forced is not None)

    def _store(self, calendar: Calendar, event: Event, writable: dict[str, Any],
               start_ts: float, end_ts: float, call: Call) -> None:
        now = eventbody.rfc3339_millis(self.state.now())
        previous = event.data
        data = {"kind": "calendar#event", "etag": self.state.next_etag(), "id": previous["id"],
                "status": writable.pop("status", "confirmed")}
        data["htmlLink"] = eventbody.html_link(call.base_url, calendar.id, previous["id"])
        data["created"] = previous.get("created", now)
        data["updated"] = now
        data.update(writable)
        data["creator"] = previous.get("creator", {"email": call.account, "self": True})
        data["organizer"] = {"email": calendar.id, "self": True}
        if not calendar.primary:
            data["organizer"]["displayName"] = calendar.summary
        data["iCalUID"] = f"{previous['id']}@google.com"
        if "sequence" not in writable:
            moved = "start" in previous and (event.start_ts, event.end_ts) != (start_ts, end_ts)
            data["sequence"] = previous.get("sequence", 0) + moved
        data["eventType"] = "default"
        event.data, event.start_ts, event.end_ts = data, start_ts, end_ts
        event.seq = calendar.seq = self.state.next_seq()
        calendar.events[data["id"]] = event
        self.state.changed(calendar.id)

    def place_event(self, calendar: Calendar, event: Event) -> None:
        """Recompute derived instants of a loaded event (persistence)."""
        _, event.start_ts, event.end_ts = eventbody.normalise(
            eventbody.writable_view(event.data), calendar.time_zone)
        calendar.next_index = max(calendar.next_index, event.index + 1)

    def events_insert(self, call: Call) -> Result:
        calendar = self._calendar(call, call.args[0])
        body = call.json()
        if not isinstance(body, dict):
            raise errors.parse_error()
        event_id = body.get("id")
        if event_id is not None:
            eventbody.check_event_id(event_id)
        writable, start_ts, end_ts = eventbody.normalise(body, calendar.time_zone,
                                                         b"null" in call.body)
        if event_id is None:
            event_id = eventbody.new_event_id()
        # Ids are never reused, not even after deletion: deleted events are kept as cancelled.
        if event_id in calendar.events:
            raise errors.duplicate()
        event = Event(data={"id": event_id}, seq=0, index=calendar.next_index)
        calendar.next_index += 1
        self._store(calendar, event, writable, start_ts, end_ts, call)
        rendered = self._render(calendar, event, call)
        return 200, rendered, {"ETag": rendered["etag"]}

    def events_get(self, call: Call) -> Result:
        calendar = self._calendar(call, call.args[0])
        event = self._event(calendar, call.args[1])
        if call.headers.get("if-none-match") == event.data["etag"]:
            return 304, None, {"ETag": event.data["etag"]}
        return 200, self._render(calendar, event, call), {"ETag": event.data["etag"]}

    def _replace(self, call: Call, merge: bool) -> Result:
        calendar = self._calendar(call, call.args[0])
        event = self._event(calendar, call.args[1])
        self._check_if_match(call, event)
        body = call.json()
        if not isinstance(body, dict):
            raise errors.parse_error()
        if "id" in body and body["id"] != event.data["id"]:
            raise errors.bad_request("Invalid resource id value.")
        current = eventbody.writable_view(event.data)
        # A patch keeps a deleted event cancelled unless it sets the status; an update, which
        # replaces the whole resource, restores it (status defaults to confirmed).
        source = eventbody.merge_patch(current, body) if merge else body
        writable, start_ts, end_ts = eventbody.normalise(source, calendar.time_zone,
                                                         b"null" in call.body)
        self._store(calendar, event, writable, start_ts, end_ts, call)
        rendered = self._render(calendar, event, call)
        return 200, rendered, {"ETag": rendered["etag"]}

    def events_update(self, call: Call) -> Result:
        return self._replace(call, merge=False)

    def events_patch(self, call: Call) -> Result:
        return self._replace(call, merge=True)

    def events_delete(self, call: Call) -> Result:
        calendar = self._calendar(call, call.args[0])
        event = self._event(calendar, call.args[1])
        if event.data["status"] == "cancelled":
            raise errors.deleted()
        self._check_if_match(call, event)
        event.data = {**event.data, "status": "cancelled", "etag": self.state.next_etag(),
                      "updated": eventbody.rfc3339_millis(self.state.now())}
        event.seq = calendar.seq = self.state.next_seq()
        self.state.changed(calendar.id)
        return 204, None, {}

    def events_list(self, call: Call) -> Result:
        calendar = self._calendar(call, call.args[0])
        query = self.lister.parse(calendar, call.params)
        events, token = self.lister.page(calendar, query, call.param("pageToken"))
        items = [eventbody.minimal_cancelled(e.data) if e.data["status"] == "cancelled"
                 else self._render(calendar, e, call) for e in events]
        updated = max((e.data["updated"] for e in calendar.events.values()),
                      default=eventbody.rfc3339_millis(self.state.now()))
        body: dict[str, Any] = {
            "kind": "calendar#events", "etag": f'"{calendar.seq}"', "summary": calendar.summary,
            "updated": updated, "timeZone": call.param("timeZone") or calendar.time_zone,
            "accessRole": "owner",
            "defaultReminders": [{"method": "popup", "minutes": 10}] if calendar.primary else [],
            **token, "items": items}
        if calendar.description is not None:
            body["description"] = calendar.description
        return 200, body, {}

    def events_watch(self, call: Call) -> Result:
        calendar = self._calendar(call, call.args[0])
        return 200, self.push.watch(call.account, call.client_id, calendar, call.json(),
                                    call.base_url), {}

    def channels_stop(self, call: Call) -> Result:
        self.push.stop(call.client_id, call.json())
        return 204, None, {}
