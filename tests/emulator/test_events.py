"""events.* semantics through googleapiclient: ids, times, reminders, extended properties,
etags and preconditions, update versus patch, deletion."""

from __future__ import annotations

import httpx
import pytest
from googleapiclient.errors import HttpError

from .support import Account, error_of, timed

T0, T1 = "2030-03-01T09:00:00+03:00", "2030-03-01T09:30:00+03:00"


def insert(account: Account, calendar_id: str, body: dict) -> dict:
    return account.service.events().insert(calendarId=calendar_id, body=body).execute()


def rejects(account: Account, calendar_id: str, body: dict) -> tuple[int, str, dict]:
    with pytest.raises(HttpError) as excinfo:
        insert(account, calendar_id, body)
    return error_of(excinfo)


# -- ids -------------------------------------------------------------------------------------

@pytest.mark.parametrize("event_id", ["abcde", "0123456789abcdefghijklmnopqrstuv", "v" * 1024])
def test_client_supplied_base32hex_ids_are_accepted(account, calendar_id, event_id):
    created = insert(account, calendar_id, {"id": event_id, **timed(T0, T1)})
    assert created["id"] == event_id
    assert created["iCalUID"] == f"{event_id}@google.com"


@pytest.mark.parametrize("event_id", ["abcd", "abcdw", "ABCDE", "abc-de", "abc_de", "v" * 1025])
def test_ids_outside_base32hex_or_length_are_invalid(account, calendar_id, event_id):
    status, reason, body = rejects(account, calendar_id, {"id": event_id, **timed(T0, T1)})
    assert (status, reason) == (400, "invalid")
    assert body["message"] == "Invalid resource id value."


def test_reused_id_is_a_duplicate_even_after_deletion(account, calendar_id):
    insert(account, calendar_id, {"id": "task00001", **timed(T0, T1)})
    assert rejects(account, calendar_id, {"id": "task00001", **timed(T0, T1)})[:2] == \
        (409, "duplicate")
    account.service.events().delete(calendarId=calendar_id, eventId="task00001").execute()
    status, reason, body = rejects(account, calendar_id, {"id": "task00001", **timed(T0, T1)})
    assert (status, reason) == (409, "duplicate")
    assert body["message"] == "The requested identifier already exists."


def test_generated_ids_are_base32hex(account, calendar_id):
    created = insert(account, calendar_id, timed(T0, T1))
    assert set(created["id"]) <= set("0123456789abcdefghijklmnopqrstuv")


# -- start and end ---------------------------------------------------------------------------

def test_datetime_is_rendered_in_the_events_zone(account, calendar_id):
    created = insert(account, calendar_id, timed("2030-03-01T06:00:00Z", "2030-03-01T06:30:00Z",
                                                 tz="Asia/Tokyo"))
    assert created["start"] == {"dateTime": "2030-03-01T15:00:00+09:00", "timeZone": "Asia/Tokyo"}


def test_local_datetime_with_time_zone_is_placed_in_that_zone(account, calendar_id):
    created = insert(account, calendar_id, timed("2030-07-01T09:00:00", "2030-07-01T09:30:00",
                                                 tz="Europe/Berlin"))
    fetched = account.service.events().get(calendarId=calendar_id, eventId=created["id"],
                                           timeZone="UTC").execute()
    assert fetched["start"]["dateTime"] == "2030-07-01T07:00:00Z"


def test_datetime_without_offset_or_zone_is_a_missing_time_zone(account, calendar_id):
    status, reason, body = rejects(account, calendar_id,
                                   timed("2030-03-01T09:00:00", "2030-03-01T09:30:00"))
    assert (status, reason) == (400, "required")
    assert body["message"] == "Missing time zone definition for start time."


def test_recurring_event_needs_a_named_zone(account, calendar_id):
    status, reason, _ = rejects(account, calendar_id,
                                {**timed(T0, T1), "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"]})
    assert (status, reason) == (400, "required")


def test_end_before_start_is_an_empty_time_range(account, calendar_id):
    status, reason, body = rejects(account, calendar_id, timed(T1, T0))
    assert (status, reason) == (400, "timeRangeEmpty")
    assert body["errors"][0]["domain"] == "calendar"


def test_all_day_end_date_is_exclusive(account, calendar_id):
    one_day = {"summary": "all day", "start": {"date": "2030-03-01"},
               "end": {"date": "2030-03-02"}}
    assert insert(account, calendar_id, one_day)["end"] == {"date": "2030-03-02"}
    same_day = {**one_day, "end": {"date": "2030-03-01"}}
    assert rejects(account, calendar_id, same_day)[:2] == (400, "timeRangeEmpty")


def test_date_and_datetime_cannot_be_mixed(account, calendar_id):
    body = {"start": {"date": "2030-03-01"}, "end": {"dateTime": T1}}
    assert rejects(account, calendar_id, body)[:2] == (400, "invalid")


def test_missing_end_is_required(account, calendar_id):
    status, reason, body = rejects(account, calendar_id, {"start": {"dateTime": T0}})
    assert (status, reason, body["message"]) == (400, "required", "Missing end time.")


# -- reminders -------------------------------------------------------------------------------

def test_up_to_five_override_reminders(account, calendar_id):
    overrides = [{"method": "popup", "minutes": m} for m in (0, 5, 10, 60, 40320)]
    created = insert(account, calendar_id, timed(T0, T1, reminders={
        "useDefault": False, "overrides": overrides}))
    assert created["reminders"] == {"useDefault": False, "overrides": overrides}


def test_six_overrides_are_rejected(account, calendar_id):
    overrides = [{"method": "popup", "minutes": m} for m in range(6)]
    status, _, _ = rejects(account, calendar_id, timed(T0, T1, reminders={
        "useDefault": False, "overrides": overrides}))
    assert status == 400


@pytest.mark.parametrize("minutes", [-1, 40321])
def test_reminder_minutes_outside_four_weeks_are_rejected(account, calendar_id, minutes):
    reminders = {"useDefault": False, "overrides": [{"method": "popup", "minutes": minutes}]}
    assert rejects(account, calendar_id, timed(T0, T1, reminders=reminders))[:2] == \
        (400, "invalid")


def test_overrides_need_use_default_false(account, calendar_id):
    reminders = {"useDefault": True, "overrides": [{"method": "popup", "minutes": 5}]}
    status, reason, _ = rejects(account, calendar_id, timed(T0, T1, reminders=reminders))
    assert (status, reason) == (400, "cannotUseDefaultRemindersAndSpecifyOverride")


def test_reminders_default_to_the_calendar_default(account, calendar_id):
    assert insert(account, calendar_id, timed(T0, T1))["reminders"] == {"useDefault": True}


# -- extended properties ---------------------------------------------------------------------

def test_extended_properties_follow_googles_limits(account, calendar_id):
    props = {"private": {"task": "42", "k" * 45: "dropped", "long": "x" * 2000},
             "shared": {"source": "crm"}}
    created = insert(account, calendar_id, timed(T0, T1, extendedProperties=props))
    private = created["extendedProperties"]["private"]
    assert private["task"] == "42"
    assert "k" * 45 not in private  # keys over 44 characters are silently dropped
    assert private["long"] == "x" * 1024  # values over 1024 characters are truncated
    assert created["extendedProperties"]["shared"] == {"source": "crm"}


def test_more_than_300_properties_are_rejected(account, calendar_id):
    props = {"private": {f"k{i}": "v" for i in range(301)}}
    assert rejects(account, calendar_id, timed(T0, T1, extendedProperties=props))[0] == 400


def test_list_filters_by_private_and_shared_properties(account, calendar_id):
    for task, source in (("1", "crm"), ("2", "crm"), ("3", "other")):
        insert(account, calendar_id, timed(T0, T1, extendedProperties={
            "private": {"task": task}, "shared": {"source": source}}))
    events = account.service.events()
    found = events.list(calendarId=calendar_id, privateExtendedProperty="task=2").execute()
    assert [e["extendedProperties"]["private"]["task"] for e in found["items"]] == ["2"]
    both = events.list(calendarId=calendar_id, privateExtendedProperty=["task=1", "task=3"],
                       sharedExtendedProperty="source=crm").execute()
    assert [e["extendedProperties"]["private"]["task"] for e in both["items"]] == ["1"]


# -- etags, If-Match, update versus patch ----------------------------------------------------

def test_etag_changes_on_every_write_and_if_match_guards_writes(account, calendar_id):
    events = account.service.events()
    created = insert(account, calendar_id, timed(T0, T1))
    patch = events.patch(calendarId=calendar_id, eventId=created["id"], body={"summary": "b"})
    patch.headers["If-Match"] = created["etag"]
    patched = patch.execute()
    assert patched["etag"] != created["etag"]
    stale = events.patch(calendarId=calendar_id, eventId=created["id"], body={"summary": "c"})
    stale.headers["If-Match"] = created["etag"]
    with pytest.raises(HttpError) as excinfo:
        stale.execute()
    status, reason, body = error_of(excinfo)
    assert (status, reason) == (412, "conditionNotMet")
    assert body["errors"][0]["location"] == "If-Match"
    assert events.get(calendarId=calendar_id, eventId=created["id"]).execute()["summary"] == "b"


def test_update_replaces_and_patch_merges(account, calendar_id):
    events = account.service.events()
    created = insert(account, calendar_id, timed(T0, T1, description="keep me",
                                                 colorId="3", extendedProperties={
                                                     "private": {"task": "7", "state": "a"}}))
    patched = events.patch(calendarId=calendar_id, eventId=created["id"], body={
        "summary": "patched", "extendedProperties": {"private": {"state": None}}}).execute()
    assert patched["description"] == "keep me" and patched["colorId"] == "3"
    assert patched["extendedProperties"]["private"] == {"task": "7"}
    updated = events.update(calendarId=calendar_id, eventId=created["id"],
                            body=timed(T0, T1, summary="replaced")).execute()
    assert updated["summary"] == "replaced"
    assert "description" not in updated and "colorId" not in updated
    assert "extendedProperties" not in updated


def test_patch_cannot_leave_both_date_and_datetime(account, calendar_id):
    events = account.service.events()
    created = insert(account, calendar_id, timed(T0, T1))
    with pytest.raises(HttpError) as excinfo:
        events.patch(calendarId=calendar_id, eventId=created["id"],
                     body={"start": {"date": "2030-03-01"}, "end": {"date": "2030-03-02"}}
                     ).execute()
    assert error_of(excinfo)[:2] == (400, "invalid")
    moved = events.patch(calendarId=calendar_id, eventId=created["id"], body={
        "start": {"date": "2030-03-01", "dateTime": None},
        "end": {"date": "2030-03-02", "dateTime": None}}).execute()
    assert moved["start"] == {"date": "2030-03-01"}
    assert moved["sequence"] == created["sequence"] + 1


def test_if_none_match_get_returns_not_modified(account, calendar_id):
    created = insert(account, calendar_id, timed(T0, T1))
    request = account.service.events().get(calendarId=calendar_id, eventId=created["id"])
    request.headers["If-None-Match"] = created["etag"]
    with pytest.raises(HttpError) as excinfo:
        request.execute()
    assert excinfo.value.status_code == 304


# -- deletion --------------------------------------------------------------------------------

def test_deleted_event_reads_as_cancelled_and_deleting_again_is_gone(account, calendar_id):
    events = account.service.events()
    created = insert(account, calendar_id, timed(T0, T1))
    events.delete(calendarId=calendar_id, eventId=created["id"]).execute()
    fetched = events.get(calendarId=calendar_id, eventId=created["id"]).execute()
    assert fetched["status"] == "cancelled"
    with pytest.raises(HttpError) as excinfo:
        events.delete(calendarId=calendar_id, eventId=created["id"]).execute()
    status, reason, body = error_of(excinfo)
    assert (status, reason, body["message"]) == (410, "deleted", "Resource has been deleted")


def test_deleted_event_can_be_restored_by_setting_status(account, calendar_id):
    events = account.service.events()
    created = insert(account, calendar_id, timed(T0, T1))
    events.delete(calendarId=calendar_id, eventId=created["id"]).execute()
    still = events.patch(calendarId=calendar_id, eventId=created["id"],
                         body={"summary": "x"}).execute()
    assert still["status"] == "cancelled"
    back = events.patch(calendarId=calendar_id, eventId=created["id"],
                        body={"status": "confirmed"}).execute()
    assert back["status"] == "confirmed"


def test_unknown_event_is_not_found(account, calendar_id):
    with pytest.raises(HttpError) as excinfo:
        account.service.events().get(calendarId=calendar_id, eventId="nosuchevent").execute()
    assert error_of(excinfo)[:2] == (404, "notFound")


def test_post_with_method_override_is_a_patch(emulator, account, calendar_id):
    created = insert(account, calendar_id, timed(T0, T1))
    response = httpx.post(
        f"{emulator.api_endpoint}calendars/{calendar_id}/events/{created['id']}",
        json={"summary": "overridden"},
        headers={"Authorization": f"Bearer {account.creds.token}",
                 "X-HTTP-Method-Override": "PATCH"})
    assert response.status_code == 200 and response.json()["summary"] == "overridden"
    assert response.json()["start"] == created["start"]  # merged, not replaced
