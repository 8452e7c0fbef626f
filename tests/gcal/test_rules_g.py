"""One test per mirror rule G1–G16, against the emulator through the real client library."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from syncd.api.app import create_app
from syncd.clock import ManualClock
from syncd.daemon import build
from syncd.emulator.server import EmulatorServer
from syncd.store.tables import CalendarLink
from tests.conftest import START, make_settings
from tests.gcal.conftest import Mirror, add_people, google_settings

DUE = "2026-03-02T15:00:00+01:00"


def other_mirror(emulator: EmulatorServer, tmp_path: Path, **google: object) -> Mirror:
    settings = make_settings(tmp_path, google=google_settings(emulator, tmp_path, **google))
    node = build(settings, ManualClock(START))
    m = Mirror(TestClient(create_app(node)), node, node.clock)  # type: ignore[arg-type]
    m.emu = emulator
    return m


def setup_pair(m: Mirror, **task: object) -> dict:
    add_people(m, "ann", "bob")
    m.connect("bob")
    fields = {"text": "Call the client", "type": "call", "responsible_id": "bob", "due_at": DUE}
    fields.update(task)
    m.task("t1", "ann", **fields)
    m.sync()
    [event] = m.events("bob")
    return event


def test_G1_consent_calendar_in_user_zone_and_disconnect_revokes_and_erases(mirror: Mirror):
    add_people(mirror, "bob", tz="America/New_York")
    mirror.connect("bob")
    [cal] = [c for c in mirror.emu.control.calendars("bob@example.com")
             if c["summary"] == "CRM tasks"]
    assert cal["timeZone"] == "America/New_York"
    with mirror.node.db.read() as s:
        sealed = s.get(CalendarLink, "bob").tokens
    assert sealed and "refresh" not in sealed  # encrypted at rest
    r = mirror.req("POST", "/v1/users/bob/calendar/disconnect")
    assert r.status_code == 200 and r.json()["state"] == "off"
    with mirror.node.db.read() as s:
        assert s.get(CalendarLink, "bob").tokens is None
    assert not [c for c in mirror.emu.control.calendars("bob@example.com")
                if c["summary"] == "CRM tasks"]
    # The grant is revoked at Google: the old refresh token no longer works.
    refresh = mirror.node.mirror.box.open(sealed)["refresh_token"]
    client = mirror.node.mirror.google.client
    r = httpx.post(mirror.emu.token_uri, data={
        "grant_type": "refresh_token", "refresh_token": refresh,
        "client_id": client.client_id, "client_secret": client.client_secret})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_G1_state_is_single_use_and_bound_to_its_user(mirror: Mirror):
    add_people(mirror, "ann", "bob")
    params = mirror.callback_params("bob")
    bad = mirror.client.get("/oauth/google/callback",
                            params={**params, "state": "forged"}, follow_redirects=False)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "state"
    assert mirror.calendar("bob")["state"] == "connecting"
    ok = mirror.client.get("/oauth/google/callback", params=params, follow_redirects=False)
    assert ok.status_code == 303
    replay = mirror.client.get("/oauth/google/callback", params=params, follow_redirects=False)
    assert replay.status_code == 422
    mirror.sync()
    assert mirror.calendar("bob")["state"] == "on"
    assert mirror.calendar("ann")["state"] == "off"  # the state was bob's, and only bob's


def test_G1_expired_state_changes_nothing(mirror: Mirror):
    add_people(mirror, "bob")
    params = mirror.callback_params("bob")
    mirror.clock.advance(minutes=11)
    r = mirror.client.get("/oauth/google/callback", params=params, follow_redirects=False)
    assert r.status_code == 422
    assert mirror.calendar("bob")["state"] == "connecting"


def test_G2_backfill_open_and_recently_completed_tasks_only(mirror: Mirror):
    add_people(mirror, "ann", "bob")
    mirror.task("open", "ann", text="Open one", responsible_id="bob", due_at=DUE)
    mirror.task("recent", "ann", text="Done lately", responsible_id="bob", due_at=DUE)
    mirror.req("POST", "/v1/tasks/recent/complete", json={"by": "bob"})
    mirror.task("old", "ann", text="Done long ago", responsible_id="bob", due_at=DUE)
    mirror.req("POST", "/v1/tasks/old/complete", json={"by": "bob"})
    mirror.task("anns", "ann", text="Not bob's", responsible_id="ann", due_at=DUE)
    mirror.clock.advance(days=3)
    mirror.task("recent2", "ann", text="Done yesterday", responsible_id="bob", due_at=DUE)
    mirror.req("POST", "/v1/tasks/recent2/complete", json={"by": "bob"})
    mirror.clock.advance(days=5)  # "old" and "recent" are now 8 days done, past backfill_days=7
    mirror.connect("bob")
    titles = sorted(e["summary"] for e in mirror.events("bob"))
    assert titles == ["Task: Open one", "✓ Task: Done yesterday"]


def test_G3_timed_task_event_shape(mirror: Mirror):
    event = setup_pair(mirror, entity={"type": "lead", "id": "42",
                                       "url": "https://crm.example.com/leads/42"})
    assert event["summary"] == "Call: Call the client"
    assert event["start"]["dateTime"].startswith("2026-03-02T15:00:00")
    end_minus_start = (event["end"]["dateTime"], event["start"]["dateTime"])
    assert end_minus_start[0].startswith("2026-03-02T15:30:00")
    assert event["reminders"] == {"useDefault": False,
                                  "overrides": [{"method": "popup", "minutes": 5}]}
    assert event["transparency"] == "transparent"
    assert "attendees" not in event
    assert event["extendedProperties"]["private"]["syncd_task"] == "t1"
    assert "https://crm.example.com/leads/42" in event["description"]
    assert event["source"]["url"] == "https://crm.example.com/leads/42"


def test_G3_title_is_localised_and_duration_honoured(mirror: Mirror):
    add_people(mirror, "ann")
    add_people(mirror, "ivan")
    mirror.req("PATCH", "/v1/users/ivan/settings", json={"locale": "ru"})
    mirror.connect("ivan")
    mirror.task("t1", "ann", text="Позвонить", type="call", responsible_id="ivan", due_at=DUE,
                duration_minutes=45)
    mirror.sync()
    [event] = mirror.events("ivan")
    assert event["summary"] == "Звонок: Позвонить"
    assert event["end"]["dateTime"].startswith("2026-03-02T15:45:00")


def test_G4_whole_day_task_is_a_timed_event_at_nine_with_reminder_at_zero(mirror: Mirror):
    event = setup_pair(mirror, due_at=None, due_date="2026-03-05")
    assert event["start"]["dateTime"].startswith("2026-03-05T09:00:00")
    assert event["reminders"]["overrides"] == [{"method": "popup", "minutes": 0}]
    assert event["extendedProperties"]["private"]["syncd_whole_day"] == "1"


def test_G5_event_id_is_derived_and_a_repeated_insert_adopts(mirror: Mirror):
    event = setup_pair(mirror)
    assert set(event["id"]) <= set("0123456789abcdefghijklmnopqrstuv")
    decoded = base64.b32hexdecode(event["id"].upper() + "=" * (-len(event["id"]) % 8))
    assert decoded.startswith(b"t1")
    # A node died after Google created the event but before we recorded it: the next push
    # inserts again, meets 409 duplicate and adopts the event instead of making a second one.
    from syncd.store.tables import EventLink

    with mirror.node.db.transaction() as s:
        link = s.get(EventLink, ("bob", "t1"))
        link.etag, link.synced = None, {}
        s.add(link)
    mirror.task("t1", "ann", text="Call the client today")
    mirror.sync()
    events = mirror.events("bob")
    assert len(events) == 1 and events[0]["summary"] == "Call: Call the client today"


def test_G5_google_is_not_called_for_a_change_that_did_not_commit(mirror: Mirror):
    setup_pair(mirror)
    before = mirror.api_calls("bob")
    r = mirror.req("PUT", "/v1/tasks/t1", json={"actor_id": "ann", "responsible_id": "nobody"})
    assert r.status_code == 422
    mirror.sync()
    assert mirror.api_calls("bob") == before


def test_G6_one_request_per_change_patch_with_if_match_batched(mirror: Mirror):
    setup_pair(mirror)
    calls, trips = mirror.api_calls("bob"), mirror.round_trips()
    mirror.task("t1", "ann", text="Call the client at three")
    mirror.sync()
    by_method = mirror.emu.counters.snapshot()["by_method"]
    assert mirror.api_calls("bob") == calls + 1
    assert by_method.get("calendar.events.patch") == 1 and "calendar.events.get" not in by_method
    # 60 changes for one user go out as two batch round trips (50 + 10), not 60.
    for i in range(60):
        mirror.task(f"n{i}", "ann", text=f"Task {i}", responsible_id="bob", due_at=DUE)
    trips = mirror.round_trips()
    mirror.sync()
    assert mirror.round_trips() - trips == 2
    assert len(mirror.events("bob")) == 61


def test_G7_completed_in_crm_marks_the_event(mirror: Mirror):
    setup_pair(mirror)
    mirror.req("POST", "/v1/tasks/t1/complete", json={"by": "bob"})
    mirror.sync()
    [event] = mirror.events("bob")
    assert event["summary"] == "✓ Call: Call the client"
    assert event["colorId"] == "8"
    assert event["reminders"] == {"useDefault": False}  or event["reminders"]["overrides"] == []


def test_G7_completed_mode_delete(emulator: EmulatorServer, tmp_path: Path):
    m = other_mirror(emulator, tmp_path, completed="delete")
    setup_pair(m)
    m.req("POST", "/v1/tasks/t1/complete", json={"by": "bob"})
    m.sync()
    assert m.events("bob") == []


def test_G8_deleted_or_reassigned_task_leaves_the_old_calendar(mirror: Mirror):
    setup_pair(mirror)
    add_people(mirror, "cid")
    mirror.connect("cid")
    mirror.task("t1", "ann", responsible_id="cid")
    mirror.sync()
    assert mirror.events("bob") == []
    assert [e["summary"] for e in mirror.events("cid")] == ["Call: Call the client"]
    mirror.req("DELETE", "/v1/tasks/t1")
    mirror.sync()
    assert mirror.events("cid") == []


def test_G9_incremental_pull_pages_and_saves_token_after_last_page(
        emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("syncd.gcal.pull.PAGE", 3)
    m = other_mirror(emulator, tmp_path)
    add_people(m, "ann", "bob")
    m.connect("bob")
    for i in range(7):
        m.task(f"t{i}", "ann", text=f"Task {i}", responsible_id="bob", due_at=DUE)
    m.sync()
    g = m.google("bob")
    cal_id = m.calendar("bob")["calendar_id"]
    for i in range(7):  # the user moves every one of them in Google
        ev = m.link("bob", f"t{i}").event_id
        g.events().patch(calendarId=cal_id, eventId=ev, body={
            "start": {"dateTime": "2026-03-03T10:00:00+01:00"},
            "end": {"dateTime": "2026-03-03T10:30:00+01:00"}}).execute()
    lists = m.emu.counters.snapshot()["by_method"].get("calendar.events.list", 0)
    m.advance(seconds=61)
    m.sync()
    assert m.emu.counters.snapshot()["by_method"]["calendar.events.list"] - lists == 3
    for i in range(7):
        assert m.req("GET", f"/v1/tasks/t{i}").json()["due_at"] == "2026-03-03T09:00:00Z"


def test_G9_expired_sync_token_full_resync_reconciles_by_task(mirror: Mirror):
    event = setup_pair(mirror)
    mirror.advance(seconds=61)
    mirror.sync()
    g = mirror.google("bob")
    cal_id = mirror.calendar("bob")["calendar_id"]
    g.events().delete(calendarId=cal_id, eventId=event["id"]).execute()
    mirror.emu.control.expire_sync_tokens()
    mirror.advance(seconds=61)
    mirror.sync()
    task = mirror.req("GET", "/v1/tasks/t1").json()
    assert task["completed_at"] is not None  # G11 default: deleted in Google → complete


def test_G9_watch_channel_triggers_pull_checks_token_and_stops(
        emulator: EmulatorServer, tmp_path: Path):
    m = other_mirror(emulator, tmp_path, webhook_url="http://127.0.0.1:9/hooks/google")
    setup_pair(m)
    with m.node.db.read() as s:
        link = s.get(CalendarLink, "bob")
    assert link.channel_id and link.channel_expires_at
    headers = {"X-Goog-Channel-ID": link.channel_id, "X-Goog-Resource-State": "exists"}
    wrong = m.client.post("/hooks/google", headers={**headers, "X-Goog-Channel-Token": "x"})
    assert wrong.status_code == 403
    g = m.google("bob")
    g.events().patch(calendarId=link.calendar_id, eventId=m.link("bob", "t1").event_id,
                     body={"summary": "✓ Call the client"}).execute()
    ok = m.client.post("/hooks/google",
                       headers={**headers, "X-Goog-Channel-Token": link.channel_token})
    assert ok.status_code == 200
    m.sync()  # no clock advance: the notification, not the poll, brought the pull
    assert m.req("GET", "/v1/tasks/t1").json()["completed_at"] is not None
    # Renewal: the watch job comes back before the channel expires, with a new channel.
    m.clock.set(link.channel_expires_at)
    m.sync()
    with m.node.db.read() as s:
        renewed = s.get(CalendarLink, "bob")
    assert renewed.channel_id != link.channel_id
    m.req("POST", "/v1/users/bob/calendar/disconnect")
    assert not [c for c in emulator.control.channels() if c.get("id") == renewed.channel_id
                and not c.get("stopped")]


def test_G10_done_in_google_completes_the_task_and_tells_the_author(mirror: Mirror):
    event = setup_pair(mirror)
    g = mirror.google("bob")
    cal_id = mirror.calendar("bob")["calendar_id"]
    g.events().patch(calendarId=cal_id, eventId=event["id"], body={"colorId": "8"}).execute()
    mirror.advance(seconds=61)
    mirror.sync()
    task = mirror.req("GET", "/v1/tasks/t1").json()
    assert task["completed_by"] == "bob" and task["completed_at"]
    assert [e["kind"] for e in mirror.entries("ann")] == ["task_completed"]
    mirror.advance(seconds=61)
    mirror.sync()
    assert [e["kind"] for e in mirror.entries("ann")] == ["task_completed"]  # exactly once


@pytest.mark.parametrize("policy", ["complete", "unlink", "restore"])
def test_G11_event_deleted_in_google(emulator: EmulatorServer, tmp_path: Path, policy: str):
    m = other_mirror(emulator, tmp_path, on_event_deleted=policy)
    event = setup_pair(m)
    m.google("bob").events().delete(calendarId=m.calendar("bob")["calendar_id"],
                                    eventId=event["id"]).execute()
    m.advance(seconds=61)
    m.sync()
    task = m.req("GET", "/v1/tasks/t1").json()
    assert (task["completed_at"] is not None) == (policy == "complete")
    events = m.events("bob")
    assert len(events) == (1 if policy == "restore" else 0)
    if policy == "restore":
        assert events[0]["id"] != event["id"] and events[0]["summary"] == "Call: Call the client"


def test_G11_a_deleted_event_stays_deleted_until_the_task_is_handed_back(
        emulator: EmulatorServer, tmp_path: Path):
    m = other_mirror(emulator, tmp_path, on_event_deleted="unlink")
    event = setup_pair(m)
    add_people(m, "cid")
    m.connect("cid")
    m.google("bob").events().delete(calendarId=m.calendar("bob")["calendar_id"],
                                    eventId=event["id"]).execute()
    m.advance(seconds=61)
    m.sync()
    m.task("t1", "ann", text="Still not wanted")
    m.sync()
    assert m.events("bob") == []  # let go of: a later change doesn't bring it back
    m.task("t1", "ann", responsible_id="cid")
    m.sync()
    m.task("t1", "ann", responsible_id="bob")  # a new assignment: a new event
    m.sync()
    [back] = m.events("bob")
    assert back["id"] != event["id"] and back["summary"] == "Call: Still not wanted"
    assert m.events("cid") == []


def test_G12_moved_in_google_moves_the_deadline_text_edits_stay(mirror: Mirror):
    event = setup_pair(mirror)
    g = mirror.google("bob")
    cal_id = mirror.calendar("bob")["calendar_id"]
    g.events().patch(calendarId=cal_id, eventId=event["id"], body={
        "summary": "Call: renamed in Google",
        "start": {"dateTime": "2026-03-04T11:00:00+01:00"},
        "end": {"dateTime": "2026-03-04T11:30:00+01:00"}}).execute()
    mirror.advance(seconds=61)
    mirror.sync()
    task = mirror.req("GET", "/v1/tasks/t1").json()
    assert task["due_at"] == "2026-03-04T10:00:00Z" and task["text"] == "Call the client"
    mirror.task("t1", "ann", text="Call the client, again")  # the CRM's text wins next change
    mirror.sync()
    [now] = mirror.events("bob")
    assert now["summary"] == "Call: Call the client, again"
    assert now["start"]["dateTime"].startswith("2026-03-04T11:00:00")


def test_G12_whole_day_move_maps_to_the_new_local_date(mirror: Mirror):
    event = setup_pair(mirror, due_at=None, due_date="2026-03-05")
    g = mirror.google("bob")
    g.events().patch(calendarId=mirror.calendar("bob")["calendar_id"], eventId=event["id"],
                     body={"start": {"dateTime": "2026-03-07T09:00:00+01:00"},
                           "end": {"dateTime": "2026-03-07T09:30:00+01:00"}}).execute()
    mirror.advance(seconds=61)
    mirror.sync()
    assert mirror.req("GET", "/v1/tasks/t1").json()["due_date"] == "2026-03-07"


def test_G13_both_sides_moved_the_crm_wins_and_own_writes_never_bounce(mirror: Mirror):
    event = setup_pair(mirror)
    g = mirror.google("bob")
    cal_id = mirror.calendar("bob")["calendar_id"]
    g.events().patch(calendarId=cal_id, eventId=event["id"], body={
        "start": {"dateTime": "2026-03-04T11:00:00+01:00"},
        "end": {"dateTime": "2026-03-04T11:30:00+01:00"}}).execute()
    mirror.task("t1", "ann", due_at="2026-03-06T08:00:00+01:00")  # the push meets 412
    mirror.advance(seconds=61)
    mirror.sync()
    task = mirror.req("GET", "/v1/tasks/t1").json()
    assert task["due_at"] == "2026-03-06T07:00:00Z"
    [ev] = mirror.events("bob")
    assert ev["start"]["dateTime"].startswith("2026-03-06T08:00:00")
    # Quiet now: further polls write nothing and change nothing.
    before = mirror.emu.counters.snapshot()["by_method"]
    mirror.advance(seconds=61)
    mirror.sync()
    after = mirror.emu.counters.snapshot()["by_method"]
    assert {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)} == \
        {"calendar.events.list": 1}


def test_G13_a_crm_completion_not_yet_written_back_survives_google_edits(mirror: Mirror):
    """The state last synced is what both sides had: a CRM value still on its way to Google
    is the CRM's change, not the base, so a later Google edit does not undo it."""
    event = setup_pair(mirror)
    g = mirror.google("bob")
    cal_id = mirror.calendar("bob")["calendar_id"]
    mirror.emu.faults.configure(error_rates={503: 1.0}, methods=["events.patch"])
    mirror.req("POST", "/v1/tasks/t1/complete", json={"by": "bob"})
    for hour in (11, 12):  # two moves in Google, each pulled while the write-back fails
        event = g.events().get(calendarId=cal_id, eventId=event["id"]).execute()
        event.update(start={"dateTime": f"2026-03-04T{hour}:00:00+01:00"},
                     end={"dateTime": f"2026-03-04T{hour}:30:00+01:00"})  # as many apps do
        g.events().update(calendarId=cal_id, eventId=event["id"], body=event).execute()
        mirror.advance(seconds=61)
        mirror.sync()
        task = mirror.req("GET", "/v1/tasks/t1").json()
        assert task["completed_by"] == "bob" and task["completed_at"], task
        assert task["due_at"] == f"2026-03-04T{hour - 1:02d}:00:00Z"
    mirror.emu.faults.clear()
    mirror.advance(seconds=600)
    mirror.sync()
    [ev] = mirror.events("bob")
    assert ev["summary"].startswith("✓ ") and ev["start"]["dateTime"].startswith("2026-03-04T12")
    assert [e["kind"] for e in mirror.entries("ann")] == ["task_completed"]  # told once


def test_G14_transient_errors_back_off_and_converge_a_400_is_recorded(mirror: Mirror):
    setup_pair(mirror)
    mirror.emu.faults.script(count=4, method="events.patch", status=503)
    mirror.task("t1", "ann", text="After the outage")
    mirror.sync()
    for _ in range(12):
        if mirror.events("bob")[0]["summary"] == "Call: After the outage":
            break
        mirror.advance(seconds=30)
    assert mirror.events("bob")[0]["summary"] == "Call: After the outage"
    mirror.emu.faults.script(count=1, method="events.patch", status=400, reason="invalid")
    mirror.task("t1", "ann", text="Rejected")
    mirror.sync()
    assert mirror.link("bob", "t1").last_error
    mirror.advance(seconds=600)
    assert mirror.events("bob")[0]["summary"] == "Call: After the outage"  # not retried


def test_G14_quota_exceeded_pauses_that_user_only(mirror: Mirror):
    setup_pair(mirror)
    add_people(mirror, "cid")
    mirror.connect("cid")
    mirror.emu.faults.set_quota_exceeded(True, ["bob@example.com"])
    mirror.task("t1", "ann", text="Paused")
    mirror.task("t2", "ann", text="Flows", responsible_id="cid", due_at=DUE)
    mirror.sync()
    assert mirror.calendar("bob")["state"] == "paused"
    assert [e["summary"] for e in mirror.events("cid")] == ["Task: Flows"]
    mirror.emu.faults.set_quota_exceeded(False, ["bob@example.com"])
    mirror.advance(minutes=61)
    mirror.sync()
    assert mirror.calendar("bob")["state"] == "on"
    assert mirror.events("bob")[0]["summary"] == "Call: Paused"


def test_G15_revoked_grant_needs_reconnect_and_notifies_once(mirror: Mirror):
    setup_pair(mirror)
    add_people(mirror, "cid")
    mirror.connect("cid")
    mirror.task("t3", "ann", text="Handed over", responsible_id="bob", due_at=DUE)
    mirror.sync()
    mirror.emu.control.revoke("bob@example.com")
    mirror.emu.control.expire_access_tokens("bob@example.com")
    mirror.task("t1", "ann", text="After revoke")
    mirror.task("t2", "ann", text="Still syncing", responsible_id="cid", due_at=DUE)
    mirror.sync()
    assert mirror.calendar("bob")["state"] == "needs_reconnect"
    assert [e["kind"] for e in mirror.entries("bob")].count("calendar_disconnected") == 1
    mirror.advance(minutes=5)
    mirror.sync()
    assert [e["kind"] for e in mirror.entries("bob")].count("calendar_disconnected") == 1
    assert [e["summary"] for e in mirror.events("cid")] == ["Task: Still syncing"]
    mirror.task("t3", "ann", responsible_id="cid")  # handed away while bob is cut off
    mirror.connect("bob")  # reconnecting brings it back
    assert mirror.calendar("bob")["state"] == "on"
    mirror.sync()
    # Caught up: the change made while cut off is there, the event handed away is gone.
    assert [e["summary"] for e in mirror.events("bob")] == ["Call: After revoke"]
    assert sorted(e["summary"] for e in mirror.events("cid")) == \
        ["Task: Handed over", "Task: Still syncing"]


def test_G16_a_push_interrupted_after_googles_answer_is_redone_without_duplicates(
        mirror: Mirror, monkeypatch: pytest.MonkeyPatch):
    add_people(mirror, "ann", "bob")
    mirror.connect("bob")
    for i in range(5):
        mirror.task(f"t{i}", "ann", text=f"Task {i}", responsible_id="bob", due_at=DUE)
    from syncd.gcal.push import Pusher

    real = Pusher._settle
    monkeypatch.setattr(Pusher, "_settle", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("node died")))
    mirror.sync(rounds=1)
    monkeypatch.setattr(Pusher, "_settle", real)
    mirror.advance(seconds=120)  # lease and backoff pass
    mirror.sync()
    events = mirror.events("bob")
    assert sorted(e["summary"] for e in events) == [f"Task: Task {i}" for i in range(5)]


def test_calendar_status_endpoint_reports_state_and_last_sync(mirror: Mirror):
    setup_pair(mirror)
    status = mirror.calendar("bob")
    assert status["state"] == "on" and status["last_push_at"] and status["last_pull_at"]
