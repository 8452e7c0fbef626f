"""Rules N1–N13 (SPEC §3), each driven through the REST API with the injected clock.

Every test looks where a user would: the notification center (`GET …/notifications`), the
unread counter, and what the channels were asked to send (delivery rows, or a recording
Sender standing in for a channel). Times are checked to the second.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from syncd.api.app import create_app
from syncd.channels.base import Message
from syncd.clock import ManualClock
from syncd.daemon import Node, build
from syncd.jobs import queue
from syncd.jobs.queue import ClaimedJob
from syncd.server import NodeServer
from tests.conftest import API_KEY, START, Api, make_settings

T0 = START  # 2026-03-02 09:00 UTC, a Monday
CHANNELS = ("browser", "email", "mobile")
NO_SENDER = "no sender configured"


# -- helpers ---------------------------------------------------------------------------------


class Recorder:
    """A channel that records what it was asked to send (a test double for a real sender)."""

    def __init__(self, channel: str, log: list[Message] | None = None) -> None:
        self.channel = channel
        self.sent: list[Message] = [] if log is None else log
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        with self._lock:
            self.sent.append(message)


def recorders(node: Node, log: list[Message] | None = None) -> dict[str, Recorder]:
    recs = {ch: Recorder(ch, log) for ch in CHANNELS}
    for rec in recs.values():
        node.deliverer.register(rec)
    return recs


def iso(dt: datetime) -> str:
    return dt.isoformat()


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def utc(value: str) -> datetime:
    return ts(value).astimezone(UTC)


def run(api: Api) -> int:
    """Run the jobs due now, without moving the clock."""
    return api.node.worker.run_due()


def at(api: Api, when: datetime) -> int:
    """Set the clock to `when` and run every job then due."""
    api.clock.set(when)
    return api.node.worker.run_due()


def kinds(api: Api, user: str, task: str | None = None) -> list[str]:
    return sorted(e["kind"] for e in api.entries(user) if task is None or e["task_id"] == task)


def the_entry(api: Api, user: str, task: str, kind: str) -> dict:
    found = [e for e in api.entries(user) if e["task_id"] == task and e["kind"] == kind]
    assert len(found) == 1, (user, task, kind, found)
    return found[0]


def dels(api: Api, user: str | None = None, kind: str | None = None,
         task: str | None = None) -> list[dict]:
    return [d for d in api.delivery_rows(user)
            if (kind is None or d["kind"] == kind) and (task is None or d["task_id"] == task)]


def channel_states(api: Api, user: str, kind: str, task: str | None = None) -> dict[str, str]:
    rows = dels(api, user, kind, task)
    assert len({d["channel"] for d in rows}) == len(rows), rows  # one per channel
    return {d["channel"]: d["state"] for d in rows}


def unread_matches(api: Api, user: str) -> int:
    """N13: the counter equals the unread entries the center lists; returns it."""
    count = api.unread(user)
    assert count == len(api.entries(user, unread="true")), user
    assert count == sum(1 for e in api.entries(user) if e["read_at"] is None), user
    return count


def read(api: Api, user: str, entry_id: int, token: str | None = None) -> None:
    r = api.req("POST", f"/v1/users/{user}/notifications/{entry_id}/read", token=token)
    assert r.status_code == 200, r.text


def complete(api: Api, task: str, by: str, **body: object) -> dict:
    r = api.req("POST", f"/v1/tasks/{task}/complete", json={"by": by, **body})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def people(api: Api) -> Api:
    """ann sets tasks, bob does them, carl is a third colleague; all in UTC at 09:00."""
    for name in ("ann", "bob", "carl"):
        api.user(name, push=True)
    return api


# -- N1 ----------------------------------------------------------------------------------------


def test_N1_new_task_by_another_user_notifies_responsible_on_every_channel(people: Api) -> None:
    api = people
    api.task("t1", "ann", text="Call the client", type="call", responsible_id="bob",
             due_at=iso(T0 + timedelta(hours=2)))

    [entry] = api.entries("bob")
    assert entry["kind"] == "task_assigned" and entry["task_id"] == "t1"
    assert entry["read_at"] is None and ts(entry["created_at"]) == T0
    assert entry["title"] == "New task"
    assert "Call the client" in entry["body"] and "Set by: Ann" in entry["body"]
    assert unread_matches(api, "bob") == 1
    assert api.entries("ann") == [] and api.unread("ann") == 0  # the setter hears nothing

    rows = dels(api, "bob")
    assert sorted((d["channel"], d["kind"], d["state"]) for d in rows) == [
        ("browser", "task_assigned", "pending"), ("email", "task_assigned", "pending"),
        ("mobile", "task_assigned", "pending")]
    assert all(d["send_after"] == T0 for d in rows)  # no grace for a new task
    assert api.deliveries("ann") == []


def test_N1_a_channel_with_nowhere_to_go_records_why(api: Api) -> None:
    api.user("ann")
    api.user("bob")  # no browser subscribed to push, no phone with the app
    api.task("t1", "ann", text="Call the client", responsible_id="bob",
             due_at=iso(T0 + timedelta(hours=2)))
    states = {d["channel"]: (d["state"], d["reason"]) for d in dels(api, "bob")}
    assert states == {"email": ("pending", None),
                      "browser": ("skipped", "no browser subscribed to push"),
                      "mobile": ("skipped", "no enabled device")}
    assert len(api.job_rows()) == 3  # the email and two timers: no job for the skipped ones

    run(api)  # no SMTP server configured: the email records why nothing left
    state, reason = {d["channel"]: (d["state"], d["reason"]) for d in dels(api, "bob")}["email"]
    assert state == "skipped" and reason.startswith(NO_SENDER)


def test_N1_each_enabled_channel_sends_exactly_once(people: Api) -> None:
    api = people
    recs = recorders(api.node)
    r = api.req("PATCH", "/v1/users/bob/settings",
                json={"channels": {"mobile": {"task_assigned": False}}})
    assert r.status_code == 200, r.text

    api.task("t1", "ann", text="Send the offer", responsible_id="bob")
    run(api)
    run(api)  # running again sends nothing twice

    assert [m.recipient for m in recs["email"].sent] == ["bob@example.com"]
    assert [m.user_id for m in recs["browser"].sent] == ["bob"]
    assert recs["mobile"].sent == []  # the toggle silences only its channel
    assert recs["email"].sent[0].payload["kind"] == "task_assigned"
    assert channel_states(api, "bob", "task_assigned") == {"browser": "sent", "email": "sent"}
    assert kinds(api, "bob") == ["task_assigned"]  # the center always records


# -- N2 ----------------------------------------------------------------------------------------


def test_N2_self_assigned_task_is_a_center_entry_only(people: Api) -> None:
    api = people
    recs = recorders(api.node)
    due = T0 + timedelta(hours=2)
    api.task("t1", "ann", text="Note to self", responsible_id="ann", due_at=iso(due))

    assert kinds(api, "ann") == ["task_assigned"]
    assert unread_matches(api, "ann") == 1
    run(api)
    assert api.deliveries() == []  # no email, no pop-up, no push
    assert all(not r.sent for r in recs.values())

    # Same when the author is named explicitly and the CRM sends it on their behalf.
    api.task("t2", "bob", text="Mine too", author_id="bob", responsible_id="bob")
    assert kinds(api, "bob") == ["task_assigned"]
    assert api.deliveries("bob") == []

    # N2 is about the new-task notice only: the reminder still goes everywhere (SPEC §2).
    at(api, due - timedelta(minutes=5))
    assert channel_states(api, "ann", "task_due") == {
        "browser": "sent", "mobile": "sent", "email": "pending"}


# -- N3 ----------------------------------------------------------------------------------------


def test_N3_reassignment_moves_everything_to_the_new_responsible(people: Api) -> None:
    api = people
    due = T0 + timedelta(hours=2)
    api.task("t1", "ann", text="Visit", responsible_id="bob", due_at=iso(due))
    assert kinds(api, "bob") == ["task_assigned"]

    api.task("t1", "ann", responsible_id="carl")  # before bob's deliveries went out

    assert api.entries("bob") == [] and unread_matches(api, "bob") == 0
    assert set(channel_states(api, "bob", "task_assigned").values()) == {"cancelled"}
    assert kinds(api, "carl") == ["task_assigned"] and unread_matches(api, "carl") == 1
    assert the_entry(api, "carl", "t1", "task_assigned")["body"].endswith("Set by: Ann")
    assert set(channel_states(api, "carl", "task_assigned")) == set(CHANNELS)
    bob_timers = [j for j in api.job_rows()
                  if j["kind"] == "timer" and j["payload"]["user_id"] == "bob"]
    assert bob_timers and {j["state"] for j in bob_timers} == {"cancelled"}

    at(api, due - timedelta(minutes=5))
    at(api, due)
    assert api.entries("bob") == []  # bob's pending task_due was cancelled
    assert kinds(api, "carl") == ["task_assigned", "task_due", "task_overdue"]
    assert unread_matches(api, "carl") == 3


def test_N3_old_responsibles_read_entries_leave_too_and_a_hand_back_is_new(people: Api) -> None:
    api = people
    due = T0 + timedelta(hours=1)
    api.task("t1", "ann", text="Visit", responsible_id="bob", due_at=iso(due))
    at(api, due - timedelta(minutes=5))
    entry = the_entry(api, "bob", "t1", "task_due")
    read(api, "bob", entry["id"])
    assert unread_matches(api, "bob") == 1

    api.task("t1", "ann", responsible_id="carl")
    assert api.entries("bob") == [] and unread_matches(api, "bob") == 0

    api.task("t1", "carl", responsible_id="bob")  # handed back: a new assignment for bob
    assert kinds(api, "bob") == ["task_assigned"]
    assert the_entry(api, "bob", "t1", "task_assigned")["body"].endswith("Set by: Carl")
    assert api.entries("carl") == []


def test_N3_hand_over_to_oneself_follows_N2(people: Api) -> None:
    api = people
    api.task("t1", "ann", text="Visit", responsible_id="bob")
    run(api)
    api.task("t1", "carl", responsible_id="carl")  # carl takes the task himself

    assert kinds(api, "carl") == ["task_assigned"] and unread_matches(api, "carl") == 1
    assert api.deliveries("carl") == []  # the changer is the author: center only
    assert api.entries("bob") == []


# -- N4 ----------------------------------------------------------------------------------------


def test_N4_due_fires_five_minutes_before_to_the_second(people: Api) -> None:
    api = people
    due = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at="2026-03-02T13:00:00+03:00")
    run(api)

    at(api, due - timedelta(minutes=5, seconds=1))
    assert kinds(api, "bob") == ["task_assigned"]  # not a second early
    at(api, due - timedelta(minutes=5))
    entry = the_entry(api, "bob", "t1", "task_due")
    assert ts(entry["created_at"]) == due - timedelta(minutes=5)
    assert entry["title"] == "Time to do the task"
    assert "2026-03-02 10:00 UTC" in entry["body"]
    assert unread_matches(api, "bob") == 2
    rows = {d["channel"]: d for d in dels(api, "bob", "task_due")}
    assert set(rows) == set(CHANNELS)
    assert rows["browser"]["send_after"] == rows["mobile"]["send_after"] == due - timedelta(minutes=5)

    at(api, due - timedelta(seconds=1))
    assert kinds(api, "bob") == ["task_assigned", "task_due"]  # once, and no overdue yet


@pytest.mark.parametrize("ahead", [timedelta(minutes=3), timedelta(minutes=5),
                                   timedelta(seconds=1)])
def test_N4_created_five_or_fewer_minutes_ahead_fires_at_once(people: Api,
                                                             ahead: timedelta) -> None:
    api = people
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(T0 + ahead))
    run(api)
    assert kinds(api, "bob") == ["task_assigned", "task_due"]
    assert ts(the_entry(api, "bob", "t1", "task_due")["created_at"]) == T0
    assert set(channel_states(api, "bob", "task_due")) == set(CHANNELS)


def test_N4_moved_to_less_than_five_minutes_ahead_fires_at_once(people: Api) -> None:
    api = people
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(T0 + timedelta(hours=3)))
    run(api)
    api.clock.advance(minutes=10)
    api.task("t1", "ann", due_at=iso(T0 + timedelta(minutes=12)))
    run(api)
    entry = the_entry(api, "bob", "t1", "task_due")
    assert ts(entry["created_at"]) == T0 + timedelta(minutes=10)


def test_N4_deadline_already_past_fires_only_overdue(people: Api) -> None:
    api = people
    due = T0 - timedelta(hours=1)
    api.task("t1", "ann", text="Late", responsible_id="bob", due_at=iso(due))
    run(api)
    assert kinds(api, "bob") == ["task_assigned", "task_overdue"]
    assert ts(the_entry(api, "bob", "t1", "task_overdue")["created_at"]) == T0
    api.advance(days=2)
    assert kinds(api, "bob") == ["task_assigned", "task_overdue"]
    assert dels(api, "bob", "task_due") == []


# -- N5 ----------------------------------------------------------------------------------------


def test_N5_due_email_waits_the_grace_and_is_skipped_if_read_in_the_app(people: Api) -> None:
    api = people
    recs = recorders(api.node)
    token = api.token("bob")
    due = T0 + timedelta(hours=1)
    fired = due - timedelta(minutes=5)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(due))
    run(api)

    at(api, fired)
    entry = the_entry(api, "bob", "t1", "task_due")
    email = dels(api, "bob", "task_due")
    email = next(d for d in email if d["channel"] == "email")
    assert email["send_after"] == ts(entry["created_at"]) + timedelta(seconds=60)
    assert channel_states(api, "bob", "task_due") == {
        "browser": "sent", "mobile": "sent", "email": "pending"}  # pushes don't wait

    at(api, fired + timedelta(seconds=59))
    assert channel_states(api, "bob", "task_due")["email"] == "pending"
    read(api, "bob", entry["id"], token=token)  # the user saw it in the app
    at(api, fired + timedelta(seconds=60))

    [email] = [d for d in dels(api, "bob", "task_due") if d["channel"] == "email"]
    assert (email["state"], email["reason"]) == ("skipped", "read in the app first (N5)")
    assert [m.payload["kind"] for m in recs["email"].sent] == ["task_assigned"]


def test_N5_unread_due_email_leaves_after_exactly_the_grace(people: Api) -> None:
    api = people
    recs = recorders(api.node)
    due = T0 + timedelta(hours=1)
    fired = due - timedelta(minutes=5)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(due))
    at(api, fired)
    at(api, fired + timedelta(seconds=59))
    assert [m.payload["kind"] for m in recs["email"].sent] == ["task_assigned"]
    at(api, fired + timedelta(seconds=60))
    assert [m.payload["kind"] for m in recs["email"].sent] == ["task_assigned", "task_due"]
    assert channel_states(api, "bob", "task_due")["email"] == "sent"


def test_N5_due_email_still_leaves_before_the_deadline(people: Api) -> None:
    api = people
    recs = recorders(api.node)
    due = T0 + timedelta(seconds=30)  # N4: fires at once; 60 s grace would pass the deadline
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(due))
    run(api)
    [email] = [d for d in dels(api, "bob", "task_due") if d["channel"] == "email"]
    assert T0 < email["send_after"] < due
    at(api, due - timedelta(seconds=1))
    assert [m.payload["kind"] for m in recs["email"].sent] == ["task_assigned", "task_due"]


def test_N5_whole_day_due_email_waits_the_grace_too(people: Api) -> None:
    api = people
    recs = recorders(api.node)
    api.task("t1", "ann", text="Report", responsible_id="bob", due_date="2026-03-03")
    fired = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    at(api, fired)
    entry = the_entry(api, "bob", "t1", "task_due")
    [email] = [d for d in dels(api, "bob", "task_due") if d["channel"] == "email"]
    assert email["send_after"] == fired + timedelta(seconds=60)
    read(api, "bob", entry["id"])
    at(api, fired + timedelta(seconds=60))
    [email] = [d for d in dels(api, "bob", "task_due") if d["channel"] == "email"]
    assert (email["state"], email["reason"]) == ("skipped", "read in the app first (N5)")
    assert [m.payload["kind"] for m in recs["email"].sent] == ["task_assigned"]


# -- N6 ----------------------------------------------------------------------------------------

# (zone, [dates], {notify_at: [expected task_due UTC per date]}, [expected task_overdue UTC])
# Worked out by hand from the zones' offsets, not by the code under test.
DST_CASES = {
    "berlin-spring": ("Europe/Berlin", ["2026-03-28", "2026-03-29", "2026-03-30"], {
        "09:00": ["2026-03-28T08:00Z", "2026-03-29T07:00Z", "2026-03-30T07:00Z"],
        # 02:30 does not exist on 03-29 (02:00 CET → 03:00 CEST): it resolves forward, 03:30.
        "02:30": ["2026-03-28T01:30Z", "2026-03-29T01:30Z", "2026-03-30T00:30Z"],
    }, ["2026-03-28T23:00Z", "2026-03-29T22:00Z", "2026-03-30T22:00Z"]),
    "berlin-autumn": ("Europe/Berlin", ["2026-10-24", "2026-10-25", "2026-10-26"], {
        "09:00": ["2026-10-24T07:00Z", "2026-10-25T08:00Z", "2026-10-26T08:00Z"],
        # 02:30 happens twice on 10-25: it fires once, at the first (CEST) one.
        "02:30": ["2026-10-24T00:30Z", "2026-10-25T00:30Z", "2026-10-26T01:30Z"],
    }, ["2026-10-24T22:00Z", "2026-10-25T23:00Z", "2026-10-26T23:00Z"]),
    "new-york-spring": ("America/New_York", ["2026-03-07", "2026-03-08", "2026-03-09"], {
        "09:00": ["2026-03-07T14:00Z", "2026-03-08T13:00Z", "2026-03-09T13:00Z"],
        "02:30": ["2026-03-07T07:30Z", "2026-03-08T07:30Z", "2026-03-09T06:30Z"],
    }, ["2026-03-08T05:00Z", "2026-03-09T04:00Z", "2026-03-10T04:00Z"]),
    "new-york-autumn": ("America/New_York", ["2026-10-31", "2026-11-01", "2026-11-02"], {
        "09:00": ["2026-10-31T13:00Z", "2026-11-01T14:00Z", "2026-11-02T14:00Z"],
        "02:30": ["2026-10-31T06:30Z", "2026-11-01T07:30Z", "2026-11-02T07:30Z"],
    }, ["2026-11-01T04:00Z", "2026-11-02T05:00Z", "2026-11-03T05:00Z"]),
}


@pytest.mark.parametrize("case", list(DST_CASES))
def test_N6_whole_day_due_fires_at_local_notify_time_across_dst(api: Api, case: str) -> None:
    zone, dates, fire_times, overdue_times = DST_CASES[case]
    first = datetime.fromisoformat(dates[0]).replace(tzinfo=UTC)
    api.clock.set(first - timedelta(days=2))
    api.user("ann", push=True)
    users = {"09:00": "nine", "02:30": "early"}
    for notify_at, user in users.items():
        api.user(user, push=True, timezone=zone, all_day_notify_at=notify_at)

    expected: dict[datetime, list[tuple[str, str, str]]] = {}
    for notify_at, user in users.items():
        for i, day in enumerate(dates):
            task = f"{user}-{i}"
            api.task(task, "ann", text=f"Whole day {day}", responsible_id=user, due_date=day)
            expected.setdefault(utc(fire_times[notify_at][i]), []).append((user, task, "task_due"))
            expected.setdefault(utc(overdue_times[i]), []).append((user, task, "task_overdue"))
    run(api)

    def present(user: str, task: str, kind: str) -> list[dict]:
        return [e for e in api.entries(user) if e["task_id"] == task and e["kind"] == kind]

    for when in sorted(expected):
        at(api, when - timedelta(seconds=1))
        for user, task, kind in expected[when]:
            assert present(user, task, kind) == [], (case, when, user, task, kind)
        at(api, when)
        for user, task, kind in expected[when]:
            [entry] = present(user, task, kind)
            assert ts(entry["created_at"]) == when, (case, user, task, kind)

    api.advance(days=3)
    for user in users.values():  # each fired exactly once, the ambiguous hour included
        assert Counter(e["kind"] for e in api.entries(user)) == {
            "task_assigned": 3, "task_due": 3, "task_overdue": 3}


def test_N6_default_notify_time_is_nine_local(api: Api) -> None:
    api.user("ann", push=True)
    api.user("bob", push=True, timezone="Asia/Tokyo")  # no all_day_notify_at given: the default
    assert api.req("GET", "/v1/users/bob").json()["all_day_notify_at"] == "09:00"
    api.task("t1", "ann", text="Report", responsible_id="bob", due_date="2026-03-04")
    fire = datetime(2026, 3, 4, 0, 0, tzinfo=UTC)  # 09:00 JST
    at(api, fire - timedelta(seconds=1))
    assert kinds(api, "bob") == ["task_assigned"]
    at(api, fire)
    assert kinds(api, "bob") == ["task_assigned", "task_due"]


def test_N6_changing_zone_or_notify_time_moves_whole_day_timers(api: Api) -> None:
    api.user("ann", push=True)
    api.user("bob", push=True, timezone="Europe/Berlin")
    api.task("t1", "ann", text="Report", responsible_id="bob", due_date="2026-03-04")
    run(api)
    r = api.req("PATCH", "/v1/users/bob/settings",
                json={"timezone": "America/New_York", "all_day_notify_at": "10:30"})
    assert r.status_code == 200, r.text

    at(api, datetime(2026, 3, 4, 8, 0, tzinfo=UTC))  # 09:00 Berlin: the old time
    assert kinds(api, "bob") == ["task_assigned"]
    at(api, datetime(2026, 3, 4, 15, 29, 59, tzinfo=UTC))
    assert kinds(api, "bob") == ["task_assigned"]
    at(api, datetime(2026, 3, 4, 15, 30, tzinfo=UTC))  # 10:30 EST
    assert kinds(api, "bob") == ["task_assigned", "task_due"]
    at(api, datetime(2026, 3, 4, 23, 0, tzinfo=UTC))  # midnight Berlin: not bob's any more
    assert kinds(api, "bob") == ["task_assigned", "task_due"]
    at(api, datetime(2026, 3, 5, 5, 0, tzinfo=UTC))  # midnight New York
    assert kinds(api, "bob") == ["task_assigned", "task_due", "task_overdue"]


# -- N7 ----------------------------------------------------------------------------------------


def test_N7_moving_the_deadline_reschedules_the_pending_due(people: Api) -> None:
    api = people
    due1, due2 = T0 + timedelta(hours=2), T0 + timedelta(hours=4)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(due1))
    run(api)
    api.task("t1", "ann", due_at=iso(due2))

    at(api, due1 - timedelta(minutes=5))
    at(api, due1)
    assert kinds(api, "bob") == ["task_assigned"]  # neither due nor overdue for the old time
    at(api, due2 - timedelta(minutes=5, seconds=1))
    assert kinds(api, "bob") == ["task_assigned"]
    at(api, due2 - timedelta(minutes=5))
    entry = the_entry(api, "bob", "t1", "task_due")
    assert ts(entry["created_at"]) == due2 - timedelta(minutes=5)
    assert "2026-03-02 13:00 UTC" in entry["body"]


def test_N7_a_fired_due_gets_a_second_one_for_the_new_deadline(people: Api) -> None:
    api = people
    due1, due2 = T0 + timedelta(hours=1), T0 + timedelta(hours=3)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(due1))
    at(api, due1 - timedelta(minutes=5))
    first = the_entry(api, "bob", "t1", "task_due")

    api.clock.advance(minutes=2)
    api.task("t1", "ann", due_at=iso(due2))  # moved after its reminder went out
    at(api, due1)
    assert kinds(api, "bob") == ["task_assigned", "task_due"]  # no overdue for the old time
    at(api, due2 - timedelta(minutes=5))
    dues = [e for e in api.entries("bob") if e["kind"] == "task_due"]
    assert len(dues) == 2 and first["id"] in {e["id"] for e in dues}
    assert {ts(e["created_at"]) for e in dues} == {due1 - timedelta(minutes=5),
                                                     due2 - timedelta(minutes=5)}
    assert unread_matches(api, "bob") == 3
    assert Counter(d["channel"] for d in dels(api, "bob", "task_due")) == {
        "browser": 2, "email": 2, "mobile": 2}

    # Moving back to a deadline that already had its reminder does not repeat it (N11).
    api.task("t1", "ann", due_at=iso(due1 + timedelta(hours=5)))
    api.task("t1", "ann", due_at=iso(due2))
    at(api, due2)
    assert Counter(e["kind"] for e in api.entries("bob")) == {
        "task_assigned": 1, "task_due": 2, "task_overdue": 1}


def test_N7_moving_a_whole_day_task_to_another_date(api: Api) -> None:
    api.user("ann", push=True)
    api.user("bob", push=True, timezone="Europe/Berlin")
    api.task("t1", "ann", text="Report", responsible_id="bob", due_date="2026-03-03")
    run(api)
    api.task("t1", "ann", due_date="2026-03-05")
    at(api, datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    at(api, datetime(2026, 3, 3, 23, 0, tzinfo=UTC))
    assert kinds(api, "bob") == ["task_assigned"]
    at(api, datetime(2026, 3, 5, 8, 0, tzinfo=UTC))
    assert kinds(api, "bob") == ["task_assigned", "task_due"]

    # Whole-day → timed counts as a move too.
    api.task("t1", "ann", due_at="2026-03-05T16:00:00+01:00")
    at(api, datetime(2026, 3, 5, 14, 55, tzinfo=UTC))
    assert Counter(e["kind"] for e in api.entries("bob")) == {"task_assigned": 1, "task_due": 2}
    task = api.req("GET", "/v1/tasks/t1").json()
    assert task["due_date"] is None and utc(task["due_at"]) == datetime(2026, 3, 5, 15, 0,
                                                                      tzinfo=UTC)


# -- N8 ----------------------------------------------------------------------------------------


def test_N8_timed_task_gets_one_overdue_at_due_at(people: Api) -> None:
    api = people
    due = T0 + timedelta(hours=1)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(due))
    at(api, due - timedelta(seconds=1))
    assert "task_overdue" not in kinds(api, "bob")
    at(api, due)
    entry = the_entry(api, "bob", "t1", "task_overdue")
    assert ts(entry["created_at"]) == due and entry["title"] == "Task overdue"
    api.advance(days=3)
    assert Counter(kinds(api, "bob"))["task_overdue"] == 1
    # SPEC §2: pop-up / browser push only; no mobile push, no email.
    assert set(channel_states(api, "bob", "task_overdue")) == {"browser"}


def test_N8_whole_day_overdue_at_local_midnight_ending_the_date(api: Api) -> None:
    api.user("ann", push=True)
    api.user("bob", push=True, timezone="Asia/Kolkata")  # +05:30
    api.task("t1", "ann", text="Report", responsible_id="bob", due_date="2026-03-03")
    midnight = datetime(2026, 3, 3, 18, 30, tzinfo=UTC)  # 2026-03-04 00:00 IST
    at(api, midnight - timedelta(seconds=1))
    assert kinds(api, "bob") == ["task_assigned", "task_due"]
    at(api, midnight)
    assert ts(the_entry(api, "bob", "t1", "task_overdue")["created_at"]) == midnight


def test_N8_no_overdue_for_a_task_completed_in_time(people: Api) -> None:
    api = people
    due = T0 + timedelta(hours=1)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(due))
    api.task("t2", "ann", text="No deadline", responsible_id="bob")
    at(api, due - timedelta(minutes=1))
    complete(api, "t1", "bob")
    api.advance(days=2)
    assert api.entries("bob") and all(e["task_id"] == "t2" for e in api.entries("bob"))
    assert [e["kind"] for e in api.entries("bob")] == ["task_assigned"]  # nothing for t2 either


# -- N9 ----------------------------------------------------------------------------------------


def test_N9_completion_clears_the_responsibles_entries_and_tells_the_author(people: Api) -> None:
    api = people
    due = T0 + timedelta(hours=1)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(due))
    api.task("t2", "ann", text="Other", responsible_id="bob")
    at(api, due - timedelta(minutes=5))
    at(api, due)
    assert kinds(api, "bob", "t1") == ["task_assigned", "task_due", "task_overdue"]
    read(api, "bob", the_entry(api, "bob", "t1", "task_due")["id"])
    assert unread_matches(api, "bob") == 3

    api.clock.advance(minutes=7)
    done = complete(api, "t1", "bob", result="Client agreed")
    assert done["completed_by"] == "bob" and done["result"] == "Client agreed"
    assert utc(done["completed_at"]) == due + timedelta(minutes=7)

    assert kinds(api, "bob") == ["task_assigned"]  # only t2's; read or not, t1's are gone
    assert unread_matches(api, "bob") == 1
    [entry] = api.entries("ann")
    assert entry["kind"] == "task_completed" and entry["task_id"] == "t1"
    assert entry["title"] == "Your task was completed" and "Completed by: Bob" in entry["body"]
    assert unread_matches(api, "ann") == 1
    assert set(channel_states(api, "ann", "task_completed")) == {"browser", "mobile"}  # no email


def test_N9_completion_cancels_pending_timers_and_deliveries(people: Api) -> None:
    api = people
    recs = recorders(api.node)
    due = T0 + timedelta(hours=1)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(due))
    at(api, due - timedelta(minutes=5))  # task_due email now waits its grace (N5)
    complete(api, "t1", "bob")
    assert channel_states(api, "bob", "task_due")["email"] == "cancelled"
    api.advance(days=1)
    assert api.entries("bob") == []
    assert [m.payload["kind"] for m in recs["email"].sent] == ["task_assigned"]
    assert not [j for j in api.job_rows() if j["kind"] == "timer" and j["state"] == "pending"]


def test_N9_author_completing_their_own_task_is_not_told(people: Api) -> None:
    api = people
    api.task("t1", "ann", text="Call", responsible_id="bob")
    complete(api, "t1", "ann")
    assert api.entries("ann") == [] and api.entries("bob") == []
    assert unread_matches(api, "ann") == 0 and unread_matches(api, "bob") == 0

    api.task("t2", "bob", text="Self", responsible_id="bob")  # author = responsible = bob
    complete(api, "t2", "bob")
    assert api.entries("bob") == []
    assert dels(api, kind="task_completed") == []


def test_N9_completion_through_an_upsert_by_a_third_user(people: Api) -> None:
    api = people
    api.task("t1", "ann", text="Call", responsible_id="bob")
    api.task("t1", "carl", completed_at=iso(T0), completed_by="carl")
    assert api.entries("bob") == []
    assert kinds(api, "ann") == ["task_completed"]
    assert the_entry(api, "ann", "t1", "task_completed")["body"].endswith("Completed by: Carl")
    assert api.entries("carl") == []


# -- N10 ---------------------------------------------------------------------------------------


def test_N10_delete_removes_entries_from_every_center_and_cancels_everything(
        people: Api) -> None:
    api = people
    recorders(api.node)
    due = T0 + timedelta(hours=1)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(due))
    api.task("t2", "ann", text="Keep", responsible_id="bob")
    run(api)
    complete(api, "t1", "carl")  # ann: task_completed
    api.task("t1", "ann", completed_at=None)  # reopened: bob's timers are back
    at(api, due - timedelta(minutes=5))  # bob: task_due, its email waiting (N5)
    assert kinds(api, "ann") == ["task_completed"]
    assert kinds(api, "bob", "t1") == ["task_due"]

    r = api.req("DELETE", "/v1/tasks/t1")
    assert r.status_code == 204

    assert api.entries("ann") == [] and unread_matches(api, "ann") == 0
    assert kinds(api, "bob") == ["task_assigned"] and unread_matches(api, "bob") == 1  # t2's
    assert channel_states(api, "bob", "task_due", "t1")["email"] == "cancelled"
    assert api.req("GET", "/v1/tasks/t1").status_code == 404
    assert "t1" not in [t["id"] for t in api.req("GET", "/v1/tasks").json()["items"]]
    api.advance(days=1)
    assert kinds(api, "bob") == ["task_assigned"] and api.entries("ann") == []
    assert not [j for j in api.job_rows() if j["state"] == "pending"]

    # Deleted stays deleted: a late upsert is refused and notifies nobody.
    r = api.req("PUT", "/v1/tasks/t1", json={"actor_id": "ann", "text": "again",
                                            "responsible_id": "bob"})
    assert r.status_code == 409 and r.json()["error"]["field"] == "id"
    assert kinds(api, "bob") == ["task_assigned"]
    assert api.req("DELETE", "/v1/tasks/t1").status_code == 204  # deleting again is a no-op
    assert api.req("DELETE", "/v1/tasks/nope").status_code == 404


# -- N11 ---------------------------------------------------------------------------------------


def snapshot(api: Api) -> tuple:
    return (api.entry_rows(), api.delivery_rows(), api.job_rows(),
            api.req("GET", "/v1/tasks/t1").json())


def test_N11_resending_the_same_upsert_changes_nothing(people: Api) -> None:
    api = people
    body = {"text": "Call the client", "type": "call", "responsible_id": "bob",
                "due_at": "2026-03-02T12:00:00+02:00", "duration_minutes": 30,
                "entity": {"type": "deal", "id": "d-7", "url": "https://crm.example/deals/7"}}
    first = api.task("t1", "ann", **body)
    before = snapshot(api)

    api.clock.advance(minutes=1)
    assert api.task("t1", "ann", **body) == first
    assert api.task("t1", "ann", **{**body, "due_at": "2026-03-02T10:00:00Z"}) == first
    assert api.task("t1", "ann", text="Call the client") == first
    assert snapshot(api) == before

    at(api, datetime(2026, 3, 2, 9, 55, tzinfo=UTC))  # task_due fires
    fired = snapshot(api)
    api.task("t1", "ann", **body)
    assert snapshot(api) == fired
    assert Counter(kinds(api, "bob")) == {"task_assigned": 1, "task_due": 1}


def test_N11_completing_twice_tells_the_author_once(people: Api) -> None:
    api = people
    api.task("t1", "ann", text="Call", responsible_id="bob")
    done = complete(api, "t1", "bob")
    api.clock.advance(minutes=3)
    assert complete(api, "t1", "bob") == done
    assert complete(api, "t1", "carl")["completed_by"] == "bob"
    api.task("t1", "bob", completed_at=done["completed_at"], completed_by="bob")
    run(api)
    assert kinds(api, "ann") == ["task_completed"]
    assert Counter(d["channel"] for d in dels(api, "ann")) == {"browser": 1, "mobile": 1}


def _two_nodes(tmp_path: Path, db_url: str, clock: ManualClock) -> tuple[Node, Node]:
    n1 = build(make_settings(tmp_path / "n1", db_url), clock)
    n2 = build(make_settings(tmp_path / "n2", db_url), clock)
    n1.name, n2.name = "node-1", "node-2"
    n1.worker.node, n2.worker.node = "node-1", "node-2"
    return n1, n2


def _together(*calls) -> list:
    """Run the calls at the same instant, each on its own thread; re-raise any failure."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def go(i: int, call) -> None:
        try:
            barrier.wait(10)
            results[i] = call()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def _identities(api: Api) -> None:
    """N11: one entry per (user, task, kind, occurrence), one delivery per channel of it."""
    entries = api.entry_rows()
    keys = Counter((e["user_id"], e["task_id"], e["kind"], e["occurrence"]) for e in entries)
    assert max(keys.values()) == 1, keys
    per_channel = Counter((d["user_id"], d["task_id"], d["kind"], d["occurrence"], d["channel"])
                          for d in api.delivery_rows())
    assert max(per_channel.values()) == 1, per_channel


def test_N11_two_nodes_firing_the_same_timers_notify_once(tmp_path: Path, db_url: str) -> None:
    clock = ManualClock(T0)
    n1, n2 = _two_nodes(tmp_path, db_url, clock)
    sent: list[Message] = []
    recorders(n1, sent)
    recorders(n2, sent)
    try:
        with TestClient(create_app(n1)) as client:
            api = Api(client, n1, clock)
            api.user("ann", push=True)
            api.user("bob", push=True)
            api.user("carl", push=True, timezone="Europe/Berlin")
            due = T0 + timedelta(hours=1)
            tasks = [f"t{i}" for i in range(12)]
            for i, t in enumerate(tasks):
                api.task(t, "ann", text=f"Task {i}", responsible_id="bob" if i % 2 else "carl",
                         due_at=iso(due + timedelta(seconds=i)))
            api.task("w1", "ann", text="Whole day", responsible_id="carl",
                     due_date="2026-03-02")
            _together(n1.worker.run_due, n2.worker.run_due)

            # Both nodes claim and fire everything due at the same instant.
            clock.set(due - timedelta(minutes=4))  # every task_due is due
            _together(n1.worker.run_due, n2.worker.run_due)
            clock.set(due - timedelta(minutes=2))  # their emails, past the N5 grace
            _together(n1.worker.run_due, n2.worker.run_due)
            clock.set(T0 + timedelta(hours=15))  # every overdue is due
            _together(n1.worker.run_due, n2.worker.run_due)

            _identities(api)
            for t in tasks:
                owner = "bob" if int(t[1:]) % 2 else "carl"
                assert kinds(api, owner, t) == ["task_assigned", "task_due", "task_overdue"]
            # 09:00 Berlin had passed when w1 came in, the day had not: due at once (N4/N6).
            assert kinds(api, "carl", "w1") == ["task_assigned", "task_due", "task_overdue"]
            by_delivery = Counter(m.delivery_id for m in sent)
            assert by_delivery and max(by_delivery.values()) == 1
            assert len(sent) == len(api.delivery_rows())
            assert {d["state"] for d in api.delivery_rows()} == {"sent"}
    finally:
        n1.db.dispose()
        n2.db.dispose()


def test_N11_the_same_timer_run_twice_at_once_or_after_a_crash_notifies_once(
        tmp_path: Path, db_url: str) -> None:
    clock = ManualClock(T0)
    n1, n2 = _two_nodes(tmp_path, db_url, clock)
    sent: list[Message] = []
    recorders(n1, sent)
    recorders(n2, sent)
    try:
        with TestClient(create_app(n1)) as client:
            api = Api(client, n1, clock)
            api.user("ann", push=True)
            api.user("bob", push=True)
            due = T0 + timedelta(hours=1)
            for i in range(8):
                api.task(f"t{i}", "ann", text=f"Task {i}", responsible_id="bob",
                         due_at=iso(due))
            n1.worker.run_due()

            # A lease ran out (node 1 stalled) and both nodes hold the same timers at once.
            clock.set(due - timedelta(minutes=5))
            timers = [ClaimedJob(j["id"], j["kind"], j["key"], j["payload"], 1)
                      for j in api.job_rows()
                      if j["kind"] == "timer" and j["payload"]["kind"] == "task_due"]
            assert len(timers) == 8
            for job in timers:
                _together(lambda job=job: n1.service.fire_timer(job),
                          lambda job=job: n2.service.fire_timer(job))

            # Node 1 claims the deliveries and dies; node 2 takes them over after the lease.
            claimed = queue.claim(n1.db, clock.now(), 100, "node-1", 60)
            assert claimed
            clock.advance(seconds=61)
            n2.worker.run_due()
            for job in claimed:  # node 1 comes back and runs what it had in hand
                n1.worker._run_one(job)
            clock.advance(minutes=2)
            _together(n1.worker.run_due, n2.worker.run_due)

            _identities(api)
            assert Counter(e["kind"] for e in api.entries("bob")) == {
                "task_assigned": 8, "task_due": 8}
            by_delivery = Counter(m.delivery_id for m in sent)
            assert max(by_delivery.values()) == 1
            assert len(sent) == len(api.delivery_rows())
    finally:
        n1.db.dispose()
        n2.db.dispose()


# -- N12 ---------------------------------------------------------------------------------------


def test_N12_due_missed_while_down_fires_at_once_if_the_deadline_is_ahead(
        people: Api, tmp_path: Path) -> None:
    api = people
    due = T0 + timedelta(hours=1)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(due))
    run(api)
    api.clock.advance(minutes=58)  # down from 09:00 to 09:58, past the 09:55 fire time

    restarted = build(make_settings(tmp_path), api.clock)  # same database, a new process
    try:
        restarted.worker.run_due()
    finally:
        restarted.db.dispose()
    entry = the_entry(api, "bob", "t1", "task_due")
    assert ts(entry["created_at"]) == T0 + timedelta(minutes=58)
    [email] = [d for d in dels(api, "bob", "task_due") if d["channel"] == "email"]
    assert email["send_after"] < due  # N5 still holds: it leaves before the deadline
    at(api, due)
    assert Counter(kinds(api, "bob")) == {"task_assigned": 1, "task_due": 1, "task_overdue": 1}


def test_N12_due_missed_past_the_deadline_is_dropped_for_overdue(people: Api) -> None:
    api = people
    due = T0 + timedelta(hours=1)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(due))
    api.task("w1", "ann", text="Whole day", responsible_id="bob", due_date="2026-03-03")
    run(api)
    api.clock.advance(days=2)  # down for two days
    run(api)
    assert kinds(api, "bob", "t1") == ["task_assigned", "task_overdue"]
    assert kinds(api, "bob", "w1") == ["task_assigned", "task_overdue"]
    assert dels(api, "bob", "task_due") == []
    assert unread_matches(api, "bob") == 4


def test_N12_whole_day_due_missed_while_down_fires_at_once_that_day(people: Api) -> None:
    api = people
    api.task("w1", "ann", text="Whole day", responsible_id="bob", due_date="2026-03-03")
    run(api)
    api.clock.set(datetime(2026, 3, 3, 15, 0, tzinfo=UTC))  # down past 09:00, day not over
    run(api)
    assert ts(the_entry(api, "bob", "w1", "task_due")["created_at"]) == api.clock.now()
    assert "task_overdue" not in kinds(api, "bob")


def test_N12_reminders_pending_when_the_daemon_died_are_not_sent_after_the_deadline(
        people: Api) -> None:
    api = people
    recs = recorders(api.node)
    due = T0 + timedelta(hours=1)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=iso(due))
    run(api)
    api.clock.set(due - timedelta(minutes=5))
    fired = [j for j in api.job_rows() if j["kind"] == "timer"
             and j["payload"]["kind"] == "task_due"]
    api.node.service.fire_timer(ClaimedJob(fired[0]["id"], "timer", fired[0]["key"],
                                           fired[0]["payload"], 1))
    # The node died right after recording the entry: its pushes and email are still pending.
    api.clock.set(due + timedelta(hours=3))
    run(api)
    assert [m.payload["kind"] for ch in CHANNELS for m in recs[ch].sent
            if m.payload["kind"] == "task_due"] == []


# -- N13 ---------------------------------------------------------------------------------------


def test_N13_counter_equals_unread_entries_after_every_change(people: Api) -> None:
    api = people
    token = api.token("bob")
    due = T0 + timedelta(hours=1)
    steps: list[tuple[str, int]] = []

    def check(label: str, expected: int) -> None:
        count = unread_matches(api, "bob")
        r = api.req("GET", "/v1/users/bob/notifications/unread-count", token=token)
        assert r.json() == {"count": count}  # the user's own view agrees
        steps.append((label, count))
        assert count == expected, steps

    check("start", 0)
    for i in range(3):
        api.task(f"t{i}", "ann", text=f"Task {i}", responsible_id="bob", due_at=iso(due))
    check("three new tasks", 3)
    at(api, due - timedelta(minutes=5))
    check("three reminders", 6)
    read(api, "bob", the_entry(api, "bob", "t0", "task_due")["id"], token=token)
    check("one read", 5)
    read(api, "bob", the_entry(api, "bob", "t0", "task_due")["id"], token=token)
    check("read again", 5)
    r = api.req("POST", "/v1/users/bob/notifications/read-all", token=token)
    assert r.status_code == 200
    check("read all", 0)
    at(api, due)
    check("three overdue", 3)
    complete(api, "t0", "bob")
    check("t0 completed", 2)
    api.task("t1", "ann", responsible_id="carl")
    check("t1 handed to carl", 1)
    assert unread_matches(api, "carl") == 1
    api.req("DELETE", "/v1/tasks/t2")
    check("t2 deleted", 0)
    api.task("t0", "ann", completed_at=None)  # reopened; its overdue was already sent (N11)
    run(api)
    check("t0 reopened", 0)
    api.task("t0", "ann", due_at=iso(due + timedelta(hours=2)))
    at(api, due + timedelta(hours=2, minutes=-5))
    check("t0 moved: a reminder for the new deadline", 1)
    at(api, due + timedelta(hours=2))
    check("t0 overdue again", 2)
    unread_matches(api, "ann")


def _events(lines) -> object:
    """Yield (event, data) pairs from an SSE line iterator."""
    name, data = None, []
    for line in lines:
        if line.startswith(":"):
            continue
        if line == "":
            if name is not None:
                yield name, json.loads("\n".join(data)) if data else None
            name, data = None, []
        elif line.startswith("event:"):
            name = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data.append(line.partition(":")[2].strip())


@pytest.fixture
def server(node: Node) -> object:
    srv = NodeServer(node, "127.0.0.1", 0, workers=1)
    srv.start()
    yield srv
    srv.stop()


def test_N13_counter_is_live_in_every_open_tab_and_right_after_a_reconnect(
        server: NodeServer, node: Node, clock: ManualClock) -> None:
    crm = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"},
                       timeout=10)
    for name in ("ann", "bob"):
        assert crm.put(f"/v1/users/{name}", json={"name": name.title()}).status_code == 200
    token = crm.post("/v1/users/bob/tokens").json()["token"]
    user = {"Authorization": f"Bearer {token}"}
    due = T0 + timedelta(hours=1)
    stream_url = f"{server.url}/v1/users/bob/stream"

    def until(events, name: str) -> dict:
        for got, data in events:
            if got == name:
                return data
        raise AssertionError(f"stream ended before {name}")

    with httpx.Client(timeout=httpx.Timeout(10.0)) as tabs, \
            tabs.stream("GET", stream_url, headers=user) as one, \
            tabs.stream("GET", stream_url, params={"access_token": token}) as two:
        assert one.status_code == two.status_code == 200
        tab1, tab2 = _events(one.iter_lines()), _events(two.iter_lines())
        assert next(tab1) == ("unread_count", {"count": 0})
        assert next(tab2) == ("unread_count", {"count": 0})

        crm.put("/v1/tasks/t1", json={"actor_id": "ann", "text": "Call", "responsible_id": "bob",
                                      "due_at": iso(due)})
        for tab in (tab1, tab2):
            note = until(tab, "notification")
            assert note["kind"] == "task_assigned" and note["popup"] is True
            assert until(tab, "unread_count") == {"count": 1}

        crm.put("/v1/tasks/t2", json={"actor_id": "bob", "text": "Mine",
                                      "responsible_id": "bob"})
        note = until(tab1, "notification")
        assert note["task_id"] == "t2" and note["popup"] is False  # N2: no pop-up
        assert until(tab1, "unread_count") == {"count": 2}

        clock.set(due - timedelta(minutes=5))  # the server's worker fires the reminder
        node.worker.wake()
        note = until(tab1, "notification")
        assert note["kind"] == "task_due"
        assert until(tab1, "unread_count") == {"count": 3}

        r = httpx.post(f"{server.url}/v1/users/bob/notifications/{note['id']}/read",
                       headers=user)
        assert r.status_code == 200
        assert until(tab1, "unread_count") == {"count": 2}
        # Tab 2 was not read meanwhile: it has every event queued, in order.
        assert until(tab2, "notification")["task_id"] == "t2"
        assert until(tab2, "unread_count") == {"count": 2}
        assert until(tab2, "notification")["kind"] == "task_due"
        assert until(tab2, "unread_count") == {"count": 3}
        assert until(tab2, "unread_count") == {"count": 2}

        crm.post("/v1/tasks/t1/complete", json={"by": "bob"})
        removed = until(tab1, "removed")
        assert len(removed["ids"]) == 2
        assert until(tab1, "unread_count") == {"count": 1}

    # While no tab is open things change; a reconnect starts with the right number.
    crm.put("/v1/tasks/t3", json={"actor_id": "ann", "text": "New", "responsible_id": "bob"})
    crm.put("/v1/tasks/t4", json={"actor_id": "ann", "text": "New", "responsible_id": "bob"})
    crm.delete("/v1/tasks/t2")
    with httpx.Client(timeout=httpx.Timeout(10.0)) as tabs, \
            tabs.stream("GET", stream_url, headers={**user, "Last-Event-ID": "3"}) as again:
        assert next(_events(again.iter_lines())) == ("unread_count", {"count": 2})
    assert crm.get("/v1/users/bob/notifications/unread-count").json() == {"count": 2}
    crm.close()
