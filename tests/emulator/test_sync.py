"""events.list paging and incremental sync, as the daemon's pull (G9) uses them."""

from __future__ import annotations

import random

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from syncd.emulator import EmulatorServer

from .support import Account, error_of, seed_events, timed


def fill(emulator: EmulatorServer, account: Account, calendar_id: str, count: int) -> None:
    """Insert `count` events, 50 per batch request (each inner call is one API request)."""
    events = account.service.events()
    for first in range(0, count, 50):
        batch = BatchHttpRequest(batch_uri=emulator.batch_uri)
        for n in range(first, min(first + 50, count)):
            batch.add(events.insert(
                calendarId=calendar_id, body=timed("2030-03-01T09:00:00Z", "2030-03-01T10:00:00Z",
                                                   summary=f"task {n}")))
        batch.execute()


def list_all(account: Account, calendar_id: str, **params) -> tuple[list[dict], str, int]:
    """Every page of a listing: (items, nextSyncToken, pages)."""
    events = account.service.events()
    items, token, pages = [], None, 0
    while True:
        page = events.list(calendarId=calendar_id, pageToken=token, **params).execute()
        pages += 1
        items += page["items"]
        token = page.get("nextPageToken")
        if token is None:
            return items, page["nextSyncToken"], pages
        assert "nextSyncToken" not in page  # only the last page carries it


def test_paging_and_sync_token_only_on_the_last_page(emulator, account, calendar_id):
    fill(emulator, account, calendar_id, 120)
    items, sync_token, pages = list_all(account, calendar_id, maxResults=50)
    assert pages == 3 and len(items) == 120
    assert len({e["id"] for e in items}) == 120
    assert sync_token


def test_max_results_is_capped_at_2500(emulator, account, calendar_id):
    emulator.control.config(user_rate_limit=None, project_rate_limit=None)
    seed_events(emulator, account.tokens["access_token"], calendar_id, 2600)
    page = account.service.events().list(calendarId=calendar_id, maxResults=5000).execute()
    assert len(page["items"]) == 2500 and "nextPageToken" in page
    rest = account.service.events().list(calendarId=calendar_id, maxResults=5000,
                                         pageToken=page["nextPageToken"]).execute()
    assert len(rest["items"]) == 100 and "nextSyncToken" in rest


def test_incremental_sync_returns_changes_including_deletions(account, calendar_id):
    events = account.service.events()
    kept = events.insert(calendarId=calendar_id, body=timed(
        "2030-03-01T09:00:00Z", "2030-03-01T10:00:00Z")).execute()
    doomed = events.insert(calendarId=calendar_id, body=timed(
        "2030-03-02T09:00:00Z", "2030-03-02T10:00:00Z")).execute()
    _, token, _ = list_all(account, calendar_id)
    assert events.list(calendarId=calendar_id, syncToken=token).execute()["items"] == []

    events.patch(calendarId=calendar_id, eventId=kept["id"], body={"summary": "moved"}).execute()
    events.delete(calendarId=calendar_id, eventId=doomed["id"]).execute()
    added = events.insert(calendarId=calendar_id, body=timed(
        "2030-03-03T09:00:00Z", "2030-03-03T10:00:00Z")).execute()
    changed, token2, _ = list_all(account, calendar_id, syncToken=token)
    by_id = {e["id"]: e for e in changed}
    assert set(by_id) == {kept["id"], doomed["id"], added["id"]}
    assert by_id[kept["id"]]["summary"] == "moved"
    assert by_id[doomed["id"]]["status"] == "cancelled"
    assert events.list(calendarId=calendar_id, syncToken=token2).execute()["items"] == []


def test_incremental_sync_pages_too(emulator, account, calendar_id):
    _, token, _ = list_all(account, calendar_id)
    fill(emulator, account, calendar_id, 30)
    changed, _, pages = list_all(account, calendar_id, syncToken=token, maxResults=10)
    assert len(changed) == 30 and pages == 3


def test_full_listing_hides_deleted_events_unless_show_deleted(account, calendar_id):
    events = account.service.events()
    gone = events.insert(calendarId=calendar_id, body=timed(
        "2030-03-01T09:00:00Z", "2030-03-01T10:00:00Z")).execute()
    events.delete(calendarId=calendar_id, eventId=gone["id"]).execute()
    assert events.list(calendarId=calendar_id).execute()["items"] == []
    shown = events.list(calendarId=calendar_id, showDeleted=True).execute()["items"]
    assert [(e["id"], e["status"]) for e in shown] == [(gone["id"], "cancelled")]


@pytest.mark.parametrize("param, value", [
    ("timeMin", "2030-01-01T00:00:00Z"), ("timeMax", "2030-01-01T00:00:00Z"), ("q", "call"),
    ("orderBy", "updated"), ("privateExtendedProperty", "task=1"),
    ("sharedExtendedProperty", "a=b"), ("iCalUID", "x@google.com"),
    ("updatedMin", "2030-01-01T00:00:00Z"), ("showDeleted", False)])
def test_sync_token_rejects_forbidden_parameters(account, calendar_id, param, value):
    _, token, _ = list_all(account, calendar_id)
    with pytest.raises(HttpError) as excinfo:
        account.service.events().list(calendarId=calendar_id, syncToken=token,
                                      **{param: value}).execute()
    status, reason, body = error_of(excinfo)
    assert (status, reason) == (400, "invalid")
    assert body["errors"][0]["location"] == param


def test_unknown_or_expired_sync_token_requires_a_full_sync(emulator, account, calendar_id):
    events = account.service.events()
    with pytest.raises(HttpError) as excinfo:
        events.list(calendarId=calendar_id, syncToken="CPj8uN7lnO4CEPj8uN7lnO4CGAU=").execute()
    status, reason, body = error_of(excinfo)
    assert (status, reason) == (410, "fullSyncRequired")
    assert body["message"] == "Sync token is no longer valid, a full sync is required."

    _, token, _ = list_all(account, calendar_id)
    emulator.control.expire_sync_tokens()
    with pytest.raises(HttpError) as excinfo:
        events.list(calendarId=calendar_id, syncToken=token).execute()
    assert error_of(excinfo)[:2] == (410, "fullSyncRequired")


def test_sync_tokens_expire_after_the_configured_ttl(emulator, account, calendar_id):
    emulator.control.config(sync_token_ttl=3600)
    _, token, _ = list_all(account, calendar_id)
    emulator.advance_clock(3601)
    with pytest.raises(HttpError) as excinfo:
        account.service.events().list(calendarId=calendar_id, syncToken=token).execute()
    assert error_of(excinfo)[:2] == (410, "fullSyncRequired")


def test_time_window_and_ordering(account, calendar_id):
    events = account.service.events()
    for day in (3, 1, 2):
        events.insert(calendarId=calendar_id, body=timed(
            f"2030-03-0{day}T09:00:00Z", f"2030-03-0{day}T10:00:00Z", summary=f"d{day}")).execute()
    window = events.list(calendarId=calendar_id, timeMin="2030-03-01T10:00:00Z",
                         timeMax="2030-03-03T09:00:00Z", singleEvents=True,
                         orderBy="startTime").execute()
    assert [e["summary"] for e in window["items"]] == ["d2"]
    with pytest.raises(HttpError) as excinfo:
        events.list(calendarId=calendar_id, orderBy="startTime").execute()
    assert error_of(excinfo)[0] == 400
    with pytest.raises(HttpError) as excinfo:
        events.list(calendarId=calendar_id, timeMin="2030-03-02T00:00:00Z",
                    timeMax="2030-03-01T00:00:00Z").execute()
    assert error_of(excinfo)[:2] == (400, "timeRangeEmpty")


def test_fields_selects_a_partial_response(account, calendar_id):
    events = account.service.events()
    events.insert(calendarId=calendar_id, body=timed(
        "2030-03-01T09:00:00Z", "2030-03-01T10:00:00Z",
        extendedProperties={"private": {"task": "9"}})).execute()
    page = events.list(calendarId=calendar_id,
                       fields="items(id,extendedProperties/private),nextSyncToken").execute()
    assert set(page) == {"items", "nextSyncToken"}
    assert set(page["items"][0]) == {"id", "extendedProperties"}
    assert page["items"][0]["extendedProperties"] == {"private": {"task": "9"}}
    with pytest.raises(HttpError) as excinfo:
        events.list(calendarId=calendar_id, fields="items(id").execute()
    assert error_of(excinfo)[:2] == (400, "invalidParameter")


def test_a_replica_fed_by_paged_incremental_syncs_converges(emulator, account, calendar_id):
    """Writes interleaved with the pages of incremental listings: whatever a page misses,
    a later sync delivers, so the replica ends equal to the calendar."""
    rng = random.Random(11)
    events = account.service.events()
    replica: dict[str, tuple[str, str]] = {}
    live: list[str] = []

    def write() -> None:
        roll = rng.random()
        if roll < 0.45 or not live:
            live.append(events.insert(calendarId=calendar_id, body=timed(
                "2030-03-01T09:00:00Z", "2030-03-01T10:00:00Z",
                summary=f"s{rng.randrange(1000)}")).execute()["id"])
        elif roll < 0.8:
            events.patch(calendarId=calendar_id, eventId=rng.choice(live),
                         body={"summary": f"p{rng.randrange(1000)}"}).execute()
        else:
            events.delete(calendarId=calendar_id, eventId=live.pop(rng.randrange(len(live)))
                          ).execute()

    def apply(items: list[dict]) -> None:
        for item in items:
            replica[item["id"]] = (item["status"], item.get("summary", ""))

    token = None
    for _ in range(40):
        page_token = None
        while True:
            since = {"syncToken": token} if token else {"showDeleted": True}
            page = events.list(calendarId=calendar_id, maxResults=7, pageToken=page_token,
                               **since).execute()
            apply(page["items"])
            for _ in range(rng.randrange(8)):
                write()
            page_token = page.get("nextPageToken")
            if page_token is None:
                token = page["nextSyncToken"]
                break
    apply(events.list(calendarId=calendar_id, syncToken=token, maxResults=2500).execute()["items"])
    truth = {e["id"]: (e["status"], e.get("summary", "") if e["status"] != "cancelled" else "")
             for e in emulator.control.events(account.email, calendar_id)}
    mine = {k: (s, text if s != "cancelled" else "") for k, (s, text) in replica.items()}
    assert len(truth) > 40 and mine == truth
