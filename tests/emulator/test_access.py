"""calendars, calendarList and colors; who may see what (scopes, calendar.app.created, other
accounts); the 401 family."""

from __future__ import annotations

import httplib2
import pytest
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from .support import CALENDAR, connect, error_of, timed


def test_calendars_insert_get_delete(account):
    calendars = account.service.calendars()
    created = calendars.insert(body={"summary": "CRM tasks", "description": "mirror",
                                     "timeZone": "Asia/Tokyo"}).execute()
    assert created["kind"] == "calendar#calendar"
    assert created["timeZone"] == "Asia/Tokyo"
    assert calendars.get(calendarId=created["id"]).execute()["summary"] == "CRM tasks"
    calendars.delete(calendarId=created["id"]).execute()
    with pytest.raises(HttpError) as excinfo:
        calendars.get(calendarId=created["id"]).execute()
    assert error_of(excinfo)[:2] == (404, "notFound")


def test_calendar_needs_a_title(account):
    with pytest.raises(HttpError) as excinfo:
        account.service.calendars().insert(body={"timeZone": "UTC"}).execute()
    assert error_of(excinfo)[:2] == (400, "required")


def test_calendar_list_with_full_scope(emulator):
    full = connect(emulator, scopes=[CALENDAR])
    created = full.service.calendars().insert(body={"summary": "Team"}).execute()
    entries = full.service.calendarList().list().execute()
    assert entries["kind"] == "calendar#calendarList"
    by_id = {e["id"]: e for e in entries["items"]}
    assert by_id[full.email]["primary"] is True
    assert by_id[created["id"]]["accessRole"] == "owner"
    entry = full.service.calendarList().get(calendarId=created["id"]).execute()
    assert entry["kind"] == "calendar#calendarListEntry" and entry["summary"] == "Team"
    assert full.service.calendarList().get(calendarId="primary").execute()["id"] == full.email
    with pytest.raises(HttpError) as excinfo:
        full.service.calendars().delete(calendarId="primary").execute()
    assert error_of(excinfo)[:2] == (403, "cannotDeletePrimaryCalendar")


def test_colors(account):
    colors = account.service.colors().get().execute()
    assert colors["kind"] == "calendar#colors"
    assert colors["event"]["8"]["background"] == "#e1e1e1"  # graphite
    assert len(colors["calendar"]) == 24 and len(colors["event"]) == 11


def test_app_created_scope_sees_only_this_apps_calendars(emulator, account, calendar_id):
    """calendar.app.created: the app may manage the secondary calendars it created and their
    events, nothing else: not the primary calendar, not calendars made by other apps."""
    assert account.service.calendarList().get(calendarId=calendar_id).execute()["id"] == \
        calendar_id
    other_app = emulator.control.register_client(redirect_uris=[], kind="installed")
    elsewhere = connect(emulator, email=account.email, client_id=other_app["client_id"])
    theirs = elsewhere.service.calendars().insert(body={"summary": "other app"}).execute()["id"]
    for target in ("primary", account.email, theirs):
        with pytest.raises(HttpError) as excinfo:
            account.service.events().list(calendarId=target).execute()
        assert error_of(excinfo)[:2] == (404, "notFound")
    with pytest.raises(HttpError) as excinfo:
        account.service.calendars().get(calendarId=theirs).execute()
    assert error_of(excinfo)[:2] == (404, "notFound")


def test_app_created_scope_cannot_list_calendar_list(account):
    with pytest.raises(HttpError) as excinfo:
        account.service.calendarList().list().execute()
    status, reason, body = error_of(excinfo)
    assert (status, reason) == (403, "insufficientPermissions")
    assert body["message"] == "Request had insufficient authentication scopes."
    assert 'error="insufficient_scope"' in excinfo.value.resp["www-authenticate"]
    assert body["details"][0]["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    assert body["details"][0]["metadata"]["method"] == "calendar.v3.CalendarList.List"


def test_read_only_scope_cannot_write(emulator):
    reader = connect(emulator, scopes=["https://www.googleapis.com/auth/calendar.readonly"])
    assert reader.service.events().list(calendarId="primary").execute()["items"] == []
    with pytest.raises(HttpError) as excinfo:
        reader.service.events().insert(calendarId="primary", body=timed(
            "2030-01-01T09:00:00Z", "2030-01-01T10:00:00Z")).execute()
    assert error_of(excinfo)[:2] == (403, "insufficientPermissions")


def test_full_scope_reaches_every_own_calendar(emulator, account, calendar_id):
    full = connect(emulator, email=account.email, scopes=[CALENDAR])
    assert full.service.events().list(calendarId=calendar_id).execute()["items"] == []
    assert full.service.events().list(calendarId="primary").execute()["items"] == []


def test_another_accounts_calendar_is_not_found(emulator, calendar_id):
    stranger = connect(emulator, scopes=[CALENDAR])
    for call in (stranger.service.calendars().get(calendarId=calendar_id),
                 stranger.service.events().list(calendarId=calendar_id),
                 stranger.service.events().insert(calendarId=calendar_id, body=timed(
                     "2030-01-01T09:00:00Z", "2030-01-01T10:00:00Z"))):
        with pytest.raises(HttpError) as excinfo:
            call.execute()
        assert error_of(excinfo)[:2] == (404, "notFound")


# -- 401 -------------------------------------------------------------------------------------

def bare_service(emulator):
    """A client with no credentials at all, so the test controls the Authorization header."""
    return build("calendar", "v3", http=httplib2.Http(), static_discovery=True,
                 client_options={"api_endpoint": emulator.api_endpoint})


def unauthorised(request, header: str | None) -> tuple[HttpError, dict]:
    if header is not None:
        request.headers["Authorization"] = header
    with pytest.raises(HttpError) as excinfo:
        request.execute()
    return excinfo.value, error_of(excinfo)[2]


def test_missing_bearer_is_401_login_required(emulator):
    exc, body = unauthorised(bare_service(emulator).colors().get(), None)
    assert exc.status_code == 401 and body["status"] == "UNAUTHENTICATED"
    assert body["errors"][0] == {"message": "Login Required.", "domain": "global",
                                 "reason": "required", "locationType": "header",
                                 "location": "Authorization"}
    assert exc.resp["www-authenticate"] == 'Bearer realm="https://accounts.google.com/"'
    assert body["details"][0]["reason"] == "CREDENTIALS_MISSING"


@pytest.mark.parametrize("header", ["Bearer ya29.not-a-token", "Basic dXNlcjpwYXNz"])
def test_invalid_bearer_is_401_auth_error(emulator, header):
    exc, body = unauthorised(bare_service(emulator).colors().get(), header)
    assert exc.status_code == 401
    assert body["errors"][0] == {"message": "Invalid Credentials", "domain": "global",
                                 "reason": "authError", "locationType": "header",
                                 "location": "Authorization"}
    assert 'error="invalid_token"' in exc.resp["www-authenticate"]


def test_expired_bearer_is_401_auth_error(emulator, account):
    token = account.tokens["access_token"]
    fresh = bare_service(emulator).colors().get()
    fresh.headers["Authorization"] = f"Bearer {token}"
    assert fresh.execute()["kind"] == "calendar#colors"
    emulator.advance_clock(3600)
    exc, body = unauthorised(bare_service(emulator).colors().get(), f"Bearer {token}")
    assert exc.status_code == 401 and body["errors"][0]["reason"] == "authError"
