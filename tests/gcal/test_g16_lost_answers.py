"""G16 at the instants the crash test hits only now and then: a node killed after Google has
applied one of its writes but before it stored the answer. On the manual clock, with the
push's steps run by hand so the kill falls exactly there."""

from __future__ import annotations

import pytest
from sqlalchemy import select

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
    with m.node.db.read() as s:
        link = s.get(CalendarLink, user_id)
    ops = pusher._plan(user_id)
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
