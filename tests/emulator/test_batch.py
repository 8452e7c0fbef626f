"""Batch requests through googleapiclient's BatchHttpRequest (multipart/mixed both ways)."""

from __future__ import annotations

import json

import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from .support import connect, service_for, timed

T0, T1 = "2030-04-01T09:00:00Z", "2030-04-01T09:30:00Z"


def reason(exc: HttpError) -> str:
    return json.loads(exc.content)["error"]["errors"][0]["reason"]


def test_fifty_mixed_calls_each_get_their_own_outcome(emulator, account, calendar_id):
    events = account.service.events()
    stranger = connect(emulator)
    foreign = stranger.service.calendars().insert(body={"summary": "theirs"}).execute()["id"]
    existing = events.insert(calendarId=calendar_id, body={"id": "abcd00001",
                                                           **timed(T0, T1)}).execute()
    gone = events.insert(calendarId=calendar_id, body=timed(T0, T1)).execute()
    events.delete(calendarId=calendar_id, eventId=gone["id"]).execute()

    expected: dict[str, tuple[int, str | None]] = {}
    batch = BatchHttpRequest(batch_uri=emulator.batch_uri)

    def add(request, outcome: tuple[int, str | None]) -> None:
        request_id = str(len(expected))
        expected[request_id] = outcome
        batch.add(request, request_id=request_id)

    for n in range(30):
        add(events.insert(calendarId=calendar_id, body={"id": f"batch{n:04d}", **timed(T0, T1)}),
            (200, None))
    for _ in range(4):
        add(events.insert(calendarId=calendar_id, body={"id": "abcd00001", **timed(T0, T1)}),
            (409, "duplicate"))
    for _ in range(3):
        add(events.insert(calendarId=calendar_id, body={"id": "Bad-Id!", **timed(T0, T1)}),
            (400, "invalid"))
    for _ in range(3):
        add(events.get(calendarId=calendar_id, eventId="missing00"), (404, "notFound"))
    for _ in range(2):
        add(events.delete(calendarId=calendar_id, eventId=gone["id"]), (410, "deleted"))
    stale = events.patch(calendarId=calendar_id, eventId="abcd00001", body={"summary": "x"})
    stale.headers["If-Match"] = '"1"'
    add(stale, (412, "conditionNotMet"))
    add(events.insert(calendarId=foreign, body=timed(T0, T1)), (404, "notFound"))
    add(events.insert(calendarId=calendar_id, body=timed(T1, T0)), (400, "timeRangeEmpty"))
    add(events.patch(calendarId=calendar_id, eventId="abcd00001",
                     body={"summary": "renamed"}), (200, None))
    add(events.get(calendarId=calendar_id, eventId=existing["id"]), (200, None))
    add(events.list(calendarId=calendar_id, maxResults=5), (200, None))
    add(account.service.colors().get(), (200, None))
    add(events.delete(calendarId=calendar_id, eventId="batch0000"), (204, None))
    assert len(expected) == 50

    outcomes: dict[str, tuple[int, str | None]] = {}

    def callback(request_id: str, response, exception) -> None:
        if exception is None:
            outcomes[request_id] = (204 if response == "" else 200, None)
        else:
            outcomes[request_id] = (exception.status_code, reason(exception))

    batch._callback = callback
    batch.execute()
    assert outcomes == expected
    counters = emulator.counters.snapshot()
    assert counters["by_method_status"]["calendar.events.insert"]["409"] >= 4


def test_batch_responses_carry_each_calls_body(emulator, account, calendar_id):
    events = account.service.events()
    results = {}
    batch = BatchHttpRequest(batch_uri=emulator.batch_uri,
                             callback=lambda rid, resp, exc: results.setdefault(rid, resp))
    for n in range(3):
        batch.add(events.insert(calendarId=calendar_id, body={
            "id": f"item{n:04d}", **timed(T0, T1, summary=f"task {n}")}), request_id=f"r{n}")
    batch.execute()
    assert {rid: r["summary"] for rid, r in results.items()} == \
        {"r0": "task 0", "r1": "task 1", "r2": "task 2"}


def test_more_than_fifty_calls_is_a_bad_request(emulator, account, calendar_id):
    events = account.service.events()
    batch = BatchHttpRequest(batch_uri=emulator.batch_uri)
    for _ in range(51):
        batch.add(events.get(calendarId=calendar_id, eventId="missing00"))
    with pytest.raises(HttpError) as excinfo:
        batch.execute()
    assert excinfo.value.status_code == 400


def test_inner_401_makes_the_client_refresh_and_resend(emulator, account, calendar_id):
    creds = Credentials("stale-token", refresh_token=account.tokens["refresh_token"],
                        token_uri=emulator.token_uri, client_id=account.tokens["client_id"],
                        client_secret=account.tokens["client_secret"])
    service = service_for(emulator, creds)
    results = {}
    batch = BatchHttpRequest(batch_uri=emulator.batch_uri,
                             callback=lambda rid, resp, exc: results.setdefault(rid, exc or resp))
    batch.add(service.events().insert(calendarId=calendar_id, body=timed(T0, T1)),
              request_id="a")
    batch.add(service.calendars().get(calendarId=calendar_id), request_id="b")
    batch.execute()
    assert results["a"]["kind"] == "calendar#event"
    assert results["b"]["id"] == calendar_id
    assert creds.token != "stale-token"
