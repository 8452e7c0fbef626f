"""events.list: filters, ordering, paging and incremental sync.

Page and sync tokens are opaque, HMAC-signed snapshots (so they survive a restart with the
state file and cannot be forged). A sync token records the calendar's change sequence number
when the listing began; an incremental listing returns every event changed after it,
cancelled ones included. Tokens minted before an "expire sync tokens" (a bumped epoch) or older
than the configured TTL are rejected with 410 fullSyncRequired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import errors
from .eventbody import rfc3339_millis
from .state import Calendar, EmulatorState, Event

DEFAULT_PAGE = 250
MAX_PAGE = 2500
# Google's list of parameters that cannot accompany syncToken.
FORBIDDEN_WITH_SYNC = ("iCalUID", "orderBy", "privateExtendedProperty", "q",
                       "sharedExtendedProperty", "timeMin", "timeMax", "updatedMin")


def _sign(secret: bytes, payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    mac = hmac.new(secret, raw, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")


def _unsign(secret: bytes, token: str) -> dict[str, Any] | None:
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        mac, raw = blob[:12], blob[12:]
        if not hmac.compare_digest(mac, hmac.new(secret, raw, hashlib.sha256).digest()[:12]):
            return None
        payload = json.loads(raw)
        return payload if isinstance(payload, dict) else None
    except (ValueError, TypeError):
        return None


def parse_rfc3339(name: str, value: str) -> float:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in value.upper():
        # A bound without an offset is rejected: Google requires "mandatory time zone offset".
        raise errors.ApiError(400, "badRequest", "Bad Request")
    return moment.timestamp()


def _flag(params: dict[str, list[str]], name: str) -> bool | None:
    values = params.get(name)
    if not values:
        return None
    if values[-1] not in ("true", "false"):
        raise errors.invalid_parameter(name, f"Invalid boolean value: '{values[-1]}'.")
    return values[-1] == "true"


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _property_filters(params: dict[str, list[str]], name: str) -> list[tuple[str, str]]:
    out = []
    for constraint in params.get(name, []):
        key, sep, value = constraint.partition("=")
        if not sep or not key:
            raise errors.invalid_parameter(name, f"Invalid extended property constraint: "
                                                 f"'{constraint}'.")
        out.append((key, value))
    return out


def _matches_properties(event: Event, kind: str, wanted: list[tuple[str, str]]) -> bool:
    # Repeated constraints of one kind are OR'ed; private and shared constraints are AND'ed
    # (Google's "Extended properties" guide).
    if not wanted:
        return True
    props = event.data.get("extendedProperties", {}).get(kind, {})
    return any(props.get(key) == value for key, value in wanted)


@dataclass
class Query:
    max_results: int
    order_by: str | None
    show_deleted: bool
    time_min: float | None
    time_max: float | None
    updated_min: str | None  # RFC 3339 in Google's millisecond form, compared as text
    q: list[str]
    ical_uid: str | None
    private: list[tuple[str, str]]
    shared: list[tuple[str, str]]
    since_seq: int | None  # set for an incremental (syncToken) listing


class Lister:
    def __init__(self, state: EmulatorState, sync_token_ttl: Callable[[], int | None]) -> None:
        self.state = state
        self.sync_token_ttl = sync_token_ttl

    def sync_token(self, calendar: Calendar, seq: int) -> str:
        return _sign(self.state.secret, {"c": calendar.id, "s": seq, "e": self.state.sync_epoch,
                                         "t": int(self.state.now().timestamp())})

    def _since(self, calendar: Calendar, token: str) -> int:
        payload = _unsign(self.state.secret, token)
        ttl = self.sync_token_ttl()
        if (payload is None or payload.get("c") != calendar.id
                or payload.get("e") != self.state.sync_epoch
                or (ttl is not None and self.state.now().timestamp() - payload["t"] > ttl)):
            raise errors.full_sync_required()
        return int(payload["s"])

    def parse(self, calendar: Calendar, params: dict[str, list[str]]) -> Query:
        raw_max = _one(params, "maxResults")
        try:
            max_results = DEFAULT_PAGE if raw_max is None else int(raw_max)
        except ValueError:
            raise errors.invalid_parameter("maxResults", f"Invalid value '{raw_max}'.") from None
        if max_results < 1:
            raise errors.invalid_parameter("maxResults", f"Invalid value '{raw_max}'. Values "
                                                         "must be within the range: [1, 2500]")
        order_by = _one(params, "orderBy")
        if order_by not in (None, "startTime", "updated"):
            raise errors.invalid_parameter("orderBy", f"Invalid value '{order_by}'.")
        single = _flag(params, "singleEvents")
        if order_by == "startTime" and not single:
            raise errors.bad_request("The requested ordering is not available for the "
                                     "particular query.")
        show_deleted = _flag(params, "showDeleted")
        since = None
        sync = _one(params, "syncToken")
        if sync is not None:
            for name in FORBIDDEN_WITH_SYNC:
                if params.get(name):
                    raise errors.invalid_parameter(
                        name, f"The parameter {name} cannot be used together with syncToken.")
            if show_deleted is False:
                raise errors.invalid_parameter(
                    "showDeleted", "showDeleted cannot be false with syncToken: deleted events "
                                   "are always included in incremental results.")
            since = self._since(calendar, sync)
        time_min = time_max = None
        if _one(params, "timeMin") is not None:
            time_min = parse_rfc3339("timeMin", _one(params, "timeMin") or "")
        if _one(params, "timeMax") is not None:
            time_max = parse_rfc3339("timeMax", _one(params, "timeMax") or "")
        if time_min is not None and time_max is not None and time_min >= time_max:
            raise errors.time_range_empty("timeMax")
        updated_min = None
        if _one(params, "updatedMin") is not None:
            raw = _one(params, "updatedMin") or ""
            moment = datetime.fromtimestamp(parse_rfc3339("updatedMin", raw), UTC)
            updated_min = rfc3339_millis(moment)
        return Query(
            max_results=min(max_results, MAX_PAGE), order_by=order_by,
            show_deleted=bool(show_deleted), time_min=time_min, time_max=time_max,
            updated_min=updated_min, q=(_one(params, "q") or "").lower().split(),
            ical_uid=_one(params, "iCalUID"),
            private=_property_filters(params, "privateExtendedProperty"),
            shared=_property_filters(params, "sharedExtendedProperty"), since_seq=since)

    def _included(self, event: Event, query: Query) -> bool:
        data = event.data
        if query.since_seq is not None:
            return event.seq > query.since_seq
        cancelled = data["status"] == "cancelled"
        if query.updated_min is not None:
            # Entries deleted since updatedMin are always included, whatever showDeleted says.
            if data["updated"] < query.updated_min:
                return False
        elif cancelled and not query.show_deleted:
            return False
        if query.time_min is not None and event.end_ts <= query.time_min:
            return False
        if query.time_max is not None and event.start_ts >= query.time_max:
            return False
        if query.ical_uid is not None and data.get("iCalUID") != query.ical_uid:
            return False
        if query.q:
            text = " ".join(str(data.get(k, "")) for k in ("summary", "description", "location"))
            if not all(term in text.lower() for term in query.q):
                return False
        return (_matches_properties(event, "private", query.private)
                and _matches_properties(event, "shared", query.shared))

    @staticmethod
    def _key(event: Event, order_by: str | None) -> list[Any]:
        if order_by == "startTime":
            return [event.start_ts, event.index]
        if order_by == "updated":
            return [event.data["updated"], event.index]
        return [event.index]

    def page(self, calendar: Calendar, query: Query, page_token: str | None
             ) -> tuple[list[Event], dict[str, str]]:
        """One page of matching events and the nextPageToken or nextSyncToken to return."""
        after: list[Any] | None = None
        snapshot = calendar.seq
        if page_token is not None:
            payload = _unsign(self.state.secret, page_token)
            if payload is None or payload.get("c") != calendar.id:
                raise errors.invalid_parameter("pageToken", "Invalid page token value.")
            after, snapshot = payload["k"], payload["s"]
        matched = sorted((e for e in calendar.events.values() if self._included(e, query)),
                         key=lambda e: self._key(e, query.order_by))
        if after is not None:
            matched = [e for e in matched if self._key(e, query.order_by) > after]
        items = matched[: query.max_results]
        if len(matched) > query.max_results:
            token = _sign(self.state.secret, {"c": calendar.id, "s": snapshot,
                                              "k": self._key(items[-1], query.order_by)})
            return items, {"nextPageToken": token}
        # Changes made while the client paged have seq > snapshot, so the next incremental
        # listing returns them: nothing is lost between a full sync and the first incremental.
        return items, {"nextSyncToken": self.sync_token(calendar, snapshot)}
