"""N11 and N13 as properties: any interleaving of upserts (repeated verbatim too), deadline
moves, hand-overs, completions, reopenings, deletions, reads, time-zone changes and clock
advances (with due jobs run) keeps

- at most one notification per (user, task, kind, deadline/occurrence, channel): one entry per
  identity, one delivery per channel of it, one actual send (a recording sender counts them);
- the unread counter equal to the unread entries the center lists, after every step;
- nothing in a center that the rules took out (completed, handed over, deleted tasks);
- every task_due before its deadline and no earlier than 5 minutes ahead of it (N4, N12), and
  every task_overdue at or after the deadline (N8).

Each example runs on its own fresh SQLite database (a copy of one migrated template).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.api.app import create_app
from syncd.channels.base import Message
from syncd.clock import ManualClock
from syncd.daemon import build
from tests.conftest import START, Api, make_settings

USERS = ("u1", "u2", "u3")
TASKS = ("t1", "t2", "t3")
ZONES = ("UTC", "Europe/Berlin", "America/New_York")
CHANNELS = ("email", "browser", "mobile")
# Deadlines on a small grid around the start, so moves collide with earlier deadlines.
TIMED = [START + timedelta(minutes=m) for m in (-30, 2, 5, 6, 20, 60, 180, 600)]
DAYS = [date(2026, 3, 2), date(2026, 3, 3)]
DEADLINES = st.one_of(
    st.sampled_from([{"due_at": d.isoformat()} for d in TIMED]),
    st.sampled_from([{"due_at": d.astimezone(timezone(timedelta(hours=3))).isoformat()}
                     for d in TIMED]),  # the same instants spelled with another offset
    st.sampled_from([{"due_date": d.isoformat()} for d in DAYS]),
    st.just({"due_at": None, "due_date": None}),
)

user = st.sampled_from(USERS)
task = st.sampled_from(TASKS)
OPERATIONS = st.one_of(
    st.tuples(st.just("upsert"), task, user, user, DEADLINES),
    st.tuples(st.just("repeat")),
    st.tuples(st.just("move"), task, user, DEADLINES),
    st.tuples(st.just("reassign"), task, user, user),
    st.tuples(st.just("complete"), task, user),
    st.tuples(st.just("reopen"), task, user),
    st.tuples(st.just("delete"), task),
    st.tuples(st.just("read"), user, st.integers(0, 5)),
    st.tuples(st.just("read_all"), user),
    st.tuples(st.just("zone"), user, st.sampled_from(ZONES)),
    st.tuples(st.just("advance"), st.sampled_from([0, 1, 3, 4, 5, 30, 90, 600, 1440])),
)


class Recorder:
    def __init__(self, channel: str, log: list[Message], lock: threading.Lock) -> None:
        self.channel, self.log, self.lock = channel, log, lock

    def send(self, message: Message) -> None:
        with self.lock:
            self.log.append(message)


_template: dict[str, Path] = {}


def template() -> Path:
    """One migrated database per process; every example starts from a copy of it."""
    if "db" not in _template:
        root = Path(tempfile.mkdtemp(prefix="syncd-prop-template-"))
        node = build(make_settings(root), ManualClock(START))
        node.db.dispose()
        _template["db"] = root / "syncd.db"
    return _template["db"]


@contextmanager
def fresh_api() -> Iterator[tuple[Api, list[Message]]]:
    with tempfile.TemporaryDirectory(prefix="syncd-prop-") as tmp:
        root = Path(tmp)
        shutil.copy(template(), root / "syncd.db")
        clock = ManualClock(START)
        node = build(make_settings(root), clock, migrate=False)
        sent: list[Message] = []
        lock = threading.Lock()
        for ch in CHANNELS:
            node.deliverer.register(Recorder(ch, sent, lock))
        try:
            with TestClient(create_app(node)) as client:
                api = Api(client, node, clock)
                for u in USERS:
                    api.user(u, push=True)
                yield api, sent
        finally:
            node.db.dispose()


def put(api: Api, task_id: str, body: dict) -> None:
    r = api.req("PUT", f"/v1/tasks/{task_id}", json=body)
    # 409: the task was deleted; 422: a change to a task that doesn't exist yet
    assert r.status_code in (200, 409, 422), r.text


def apply(api: Api, op: tuple, last: list) -> None:
    kind = op[0]
    if kind == "upsert":
        _, t, actor, responsible, deadline = op
        body = {"actor_id": actor, "text": f"Task {t}", "responsible_id": responsible,
                **deadline}
        last[:] = [t, body]
        put(api, t, body)
    elif kind == "repeat":
        if last:
            put(api, last[0], last[1])
    elif kind == "move":
        _, t, actor, deadline = op
        put(api, t, {"actor_id": actor, **deadline})
    elif kind == "reassign":
        _, t, actor, responsible = op
        put(api, t, {"actor_id": actor, "responsible_id": responsible})
    elif kind == "complete":
        r = api.req("POST", f"/v1/tasks/{op[1]}/complete", json={"by": op[2]})
        assert r.status_code in (200, 404), r.text
    elif kind == "reopen":
        put(api, op[1], {"actor_id": op[2], "completed_at": None})
    elif kind == "delete":
        assert api.req("DELETE", f"/v1/tasks/{op[1]}").status_code in (204, 404)
    elif kind == "read":
        entries = api.entries(op[1])
        if entries:
            entry = entries[op[2] % len(entries)]
            r = api.req("POST", f"/v1/users/{op[1]}/notifications/{entry['id']}/read")
            assert r.status_code == 200, r.text
    elif kind == "read_all":
        assert api.req("POST", f"/v1/users/{op[1]}/notifications/read-all").status_code == 200
    elif kind == "zone":
        r = api.req("PATCH", f"/v1/users/{op[1]}/settings", json={"timezone": op[2]})
        assert r.status_code == 200, r.text
    elif kind == "advance":
        api.advance(minutes=op[1])


def deadline_bounds(occurrence: str) -> tuple[datetime, datetime]:
    """(earliest task_due, the deadline) for an occurrence key, in any of ZONES at 09:00."""
    if "T" in occurrence:
        due = datetime.fromisoformat(occurrence)
        return due - timedelta(minutes=5), due
    day = date.fromisoformat(occurrence)
    earliest = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=8)  # Berlin
    latest_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) \
        + timedelta(hours=5)  # New York's midnight
    return earliest, latest_end


def check(api: Api, sent: list[Message], step: int, final: bool = False) -> None:
    # N13: the counter is the number of unread entries the center lists.
    for u in USERS:
        count = api.unread(u)
        listed = api.entries(u)
        assert count == sum(1 for e in listed if e["read_at"] is None), (step, u)
        if final:
            assert count == len(api.entries(u, unread="true")), (step, u)

    # N11: one entry per identity, one delivery per channel of it, one send per delivery.
    entries = api.entry_rows()
    identity = Counter((e["user_id"], e["task_id"], e["kind"], e["occurrence"]) for e in entries)
    assert not [k for k, n in identity.items() if n > 1], step
    rows = api.delivery_rows()
    per_channel = Counter((d["user_id"], d["task_id"], d["kind"], d["occurrence"], d["channel"])
                          for d in rows)
    assert not [k for k, n in per_channel.items() if n > 1], step
    by_id = {d["id"]: d for d in rows}
    sends = Counter((by_id[m.delivery_id]["user_id"], by_id[m.delivery_id]["task_id"],
                     by_id[m.delivery_id]["kind"], by_id[m.delivery_id]["occurrence"],
                     m.channel) for m in sent)
    assert not [k for k, n in sends.items() if n > 1], (step, sends)
    assert all(by_id[m.delivery_id]["state"] == "sent" for m in sent), step

    # What the rules took out stays out; timers fire only in their window.
    tasks = {t["id"]: t for t in api.req("GET", "/v1/tasks", params={"limit": 500})
             .json()["items"]}
    for e in entries:
        if e["removed_at"] is not None:
            continue
        t = tasks.get(e["task_id"])
        assert t is not None, ("entry of a deleted task left in a center", step, e)
        if e["kind"] in ("task_assigned", "task_due", "task_overdue"):
            assert e["user_id"] == t["responsible_id"], ("entry of a handed-over task", step, e)
            assert t["completed_at"] is None, ("entry of a completed task", step, e)
        earliest, deadline = deadline_bounds(e["occurrence"]) \
            if e["kind"] in ("task_due", "task_overdue") else (None, None)
        if e["kind"] == "task_due":
            assert earliest <= e["created_at"] < deadline, ("task_due out of window", step, e)
        if e["kind"] == "task_overdue" and "T" in e["occurrence"]:
            assert e["created_at"] >= deadline, ("early task_overdue", step, e)


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ops=st.lists(OPERATIONS, min_size=1, max_size=16))
def test_N11_N13_any_interleaving_notifies_once_and_counts_right(ops: list[tuple]) -> None:
    with fresh_api() as (api, sent):
        last: list = []
        for step, op in enumerate(ops):
            apply(api, op, last)
            check(api, sent, step)
        api.advance(days=3)  # everything still pending comes due
        check(api, sent, len(ops), final=True)
