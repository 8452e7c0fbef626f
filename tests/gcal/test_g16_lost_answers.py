"""G16 at the instants the crash test hits only now and then: a node killed after Google has
applied one of its writes but before it stored the answer. On the manual clock, with the
push's steps run by hand so the kill falls exactly there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from syncd.gcal.mirror import Turn
from syncd.gcal.pull import Puller
from syncd.gcal.push import Pusher
from syncd.jobs.queue import ClaimedJob
from syncd.store.tables import CalendarLink, EventLink
from tests.gcal.conftest import Mirror, add_people

DUE = "2026-03-02T15:00:00+01:00"


def job(kind: str, user_id: str) -> ClaimedJob:
    return ClaimedJob(id=0, kind=kind, key=f"{kind}:{user_id}", payload={"user_id": user_id},
                      attempts=1)


def push_then_die(m: Mirror, user_id: str) -> None:
    """One push round whose requests reach Google, by a node killed before it could store
    a single answer: its leases are left behind, its outbox rows stay."""
    pusher = Pusher(m.node.mirror)
    until = m.clock.now() + pusher.lease
    with m.node.db.transaction() as s:  # its turn at the user, as Pusher.__call__ takes it
        link = s.get(CalendarLink, user_id)
        link.push_lease_until = until
        s.add(link)
    ops = pusher._plan(user_id, Turn(m.node.db, user_id, CalendarLink.push_lease_until, until))
    assert ops
    pusher._send(ops, m.node.mirror.credentials(link), link.calendar_id)


def pull_now(m: Mirror, user_id: str) -> None:
    """The pull gets the user first once the dead node's leases have run out."""
    m.clock.advance(seconds=m.node.settings.jobs.lease_seconds + 1)
    Puller(m.node.mirror)(job("gcal_pull", user_id))


def links(m: Mirror, user_id: str) -> dict[str, EventLink]:
    with m.node.db.read() as s:
        return {lk.task_id: lk for lk in s.execute(
            select(EventLink).where(EventLink.user_id == user_id)).scalars()}


def settled(m: Mirror) -> None:
    for _ in range(5):
        m.advance(seconds=121)
        m.sync()


@pytest.fixture
def pair(mirror: Mirror) -> Mirror:
    add_people(mirror, "ann", "bob", "cid")
    mirror.connect("bob")
    mirror.connect("cid")
    mirror.task("t1", "ann", text="Call the client", type="call", responsible_id="bob",
                due_at=DUE)
    mirror.sync()
    mirror.advance(seconds=61)
    mirror.sync()  # pulled once: bob's calendar has a sync token
    assert len(mirror.events("bob")) == 1
    assert links(mirror, "bob")["t1"].etag
    return mirror


@pytest.mark.parametrize("change", ["reassign", "delete"])
@pytest.mark.parametrize("listing", ["full", "incremental"])
def test_G16_a_delete_whose_answer_was_lost_is_not_taken_for_the_users(
        pair: Mirror, change: str, listing: str):
    """The CRM hands t1 to cid (or deletes it); bob's event is deleted in Google and the node
    dies before storing that. Whatever pull comes first, that is not bob deleting it (G11)."""
    m = pair
    if change == "reassign":
        m.task("t1", "ann", responsible_id="cid")
    else:
        assert m.req("DELETE", "/v1/tasks/t1").status_code == 204
    push_then_die(m, "bob")
    assert m.events("bob") == []
    if listing == "full":
        m.emu.control.expire_sync_tokens()
    pull_now(m, "bob")
    settled(m)
    assert m.events("bob") == []
    assert [lk for lk in links(m, "bob").values() if lk.unlinked] == []
    assert links(m, "bob") == {}
    if change == "reassign":
        assert [e["summary"] for e in m.events("cid")] == ["Call: Call the client"]
        assert m.req("GET", "/v1/tasks/t1").json()["completed_at"] is None


@pytest.mark.parametrize("listing", ["push", "full", "incremental"])
def test_G16_a_task_handed_back_after_a_lost_delete_answer_gets_a_new_event(
        pair: Mirror, listing: str):
    """t1 goes to cid, the delete of bob's event lands, the node dies; t1 comes back to bob
    before anything else ran. Bob did nothing: the task stays open and bob gets its event."""
    m = pair
    m.task("t1", "ann", responsible_id="cid")
    push_then_die(m, "bob")
    m.task("t1", "ann", responsible_id="bob", text="Back to bob")
    if listing != "push":
        if listing == "full":
            m.emu.control.expire_sync_tokens()
        pull_now(m, "bob")
    settled(m)
    task = m.req("GET", "/v1/tasks/t1").json()
    assert task["completed_at"] is None, task
    assert [e["summary"] for e in m.events("bob")] == ["Call: Back to bob"]
    assert m.events("cid") == []
    assert not [lk for lk in links(m, "bob").values() if lk.unlinked]
    assert [e["kind"] for e in m.entries("ann")] == []


def test_G16_a_turn_that_ran_out_is_not_cleared_from_under_its_next_holder(mirror: Mirror) -> None:
    """A slow node's push turn ran out and another worker took the user: the slow one's
    renewal fails and its release leaves the new holder's turn in place (a pull must not
    start beside that push)."""
    add_people(mirror, "bob")
    mirror.connect("bob")
    now = mirror.clock.now()
    column = CalendarLink.push_lease_until
    slow = Turn(mirror.node.db, "bob", column, now + timedelta(seconds=10))
    with mirror.node.db.transaction() as s:
        s.execute(update(CalendarLink).where(CalendarLink.user_id == "bob")
                  .values(push_lease_until=slow.until))
    later = now + timedelta(seconds=25)  # the next holder's turn, taken once slow's ran out
    with mirror.node.db.transaction() as s:
        s.execute(update(CalendarLink).where(CalendarLink.user_id == "bob")
                  .values(push_lease_until=later))

    with mirror.node.db.transaction() as s:
        assert slow.renew(s, now + timedelta(seconds=40)) is False
    slow.release()
    with mirror.node.db.read() as s:
        assert s.get(CalendarLink, "bob").push_lease_until == later

    mine = Turn(mirror.node.db, "bob", column, later)
    mine.release()
    with mirror.node.db.read() as s:
        assert s.get(CalendarLink, "bob").push_lease_until is None
