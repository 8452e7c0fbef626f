"""Which OAuth scopes allow which Calendar method, copied from the v3 discovery document."""

from __future__ import annotations

SCOPE_PREFIX = "https://www.googleapis.com/auth/"
CALENDAR = SCOPE_PREFIX + "calendar"
APP_CREATED = SCOPE_PREFIX + "calendar.app.created"

_READ_EVENTS = ("calendar", "calendar.app.created", "calendar.events", "calendar.events.freebusy",
                "calendar.events.owned", "calendar.events.owned.readonly",
                "calendar.events.public.readonly", "calendar.events.readonly", "calendar.readonly")
_WRITE_EVENTS = ("calendar", "calendar.app.created", "calendar.events", "calendar.events.owned")

_METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "calendar.calendars.insert": ("calendar", "calendar.app.created", "calendar.calendars"),
    "calendar.calendars.get": ("calendar", "calendar.app.created", "calendar.calendars",
                               "calendar.calendars.readonly", "calendar.readonly"),
    "calendar.calendars.delete": ("calendar", "calendar.app.created", "calendar.calendars"),
    "calendar.calendarList.list": ("calendar", "calendar.calendarlist",
                                   "calendar.calendarlist.readonly", "calendar.readonly"),
    "calendar.calendarList.get": ("calendar", "calendar.app.created", "calendar.calendarlist",
                                  "calendar.calendarlist.readonly", "calendar.readonly"),
    "calendar.events.insert": _WRITE_EVENTS,
    "calendar.events.get": _READ_EVENTS,
    "calendar.events.list": _READ_EVENTS,
    "calendar.events.watch": _READ_EVENTS,
    "calendar.events.patch": _WRITE_EVENTS,
    "calendar.events.update": _WRITE_EVENTS,
    "calendar.events.delete": _WRITE_EVENTS,
    "calendar.channels.stop": (
        "calendar", "calendar.acls", "calendar.acls.readonly", "calendar.app.created",
        "calendar.calendarlist", "calendar.calendarlist.readonly", "calendar.events",
        "calendar.events.freebusy", "calendar.events.owned", "calendar.events.owned.readonly",
        "calendar.events.public.readonly", "calendar.events.readonly", "calendar.readonly",
        "calendar.settings", "calendar.settings.readonly"),
    "calendar.colors.get": (
        "calendar", "calendar.app.created", "calendar.calendarlist",
        "calendar.calendarlist.readonly", "calendar.events.freebusy", "calendar.events.owned",
        "calendar.events.owned.readonly", "calendar.events.public.readonly", "calendar.readonly"),
}

METHOD_SCOPES: dict[str, frozenset[str]] = {
    method: frozenset(SCOPE_PREFIX + s for s in scopes) for method, scopes in _METHOD_SCOPES.items()
}

# Scopes the token endpoint and authorization endpoint accept; anything else is invalid_scope.
KNOWN_SCOPES: frozenset[str] = frozenset().union(*METHOD_SCOPES.values()) | frozenset(
    {"openid", "email", "profile", SCOPE_PREFIX + "userinfo.email",
     SCOPE_PREFIX + "userinfo.profile", SCOPE_PREFIX + "calendar.calendars.readonly"})


def granting_scopes(method: str, token_scopes: frozenset[str]) -> frozenset[str]:
    """The token's scopes that authorise `method` (empty: 403 insufficientPermissions)."""
    return METHOD_SCOPES[method] & token_scopes


def app_created_only(granting: frozenset[str]) -> bool:
    """True when only calendar.app.created authorises the call: the caller may then touch
    nothing but secondary calendars its own OAuth client created (Google's meaning of the
    scope), and their events."""
    return granting == {APP_CREATED}
