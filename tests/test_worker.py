"""The worker thread on the real clock: it sleeps long, yet wakes for work enqueued sooner."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from syncd.clock import SystemClock
from syncd.daemon import Node, build
from syncd.jobs import queue
from syncd.jobs.queue import ClaimedJob
from syncd.store.tables import Entry, Job
from tests.conftest import make_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def sleepy(tmp_path: Path) -> Iterator[Node]:
    """A node on the real clock whose worker, left alone, sleeps 30 s between looks."""
    n = build(make_settings(tmp_path, jobs={"max_sleep_seconds": 30}), SystemClock())
    yield n
    n.worker.stop()
    n.db.dispose()


def wait_for(predicate, timeout: float, step: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(step)
    return predicate()


def task_due_entry(n: Node, task_id: str) -> Entry | None:
    with n.db.read() as s:
        return s.execute(select(Entry).where(Entry.task_id == task_id,
                                             Entry.kind == "task_due")).scalar()


def test_a_job_enqueued_through_the_service_wakes_the_sleeping_worker(sleepy: Node) -> None:
    svc = sleepy.service
    svc.put_user("ann", {"name": "Ann"})
    svc.put_user("bob", {"name": "Bob"})
    sleepy.worker.start(2)
    time.sleep(0.3)  # both threads are now in their 30 s sleep
    fire_at = datetime.now(UTC) + timedelta(seconds=1)
    svc.upsert_task("t1", {"text": "Call", "responsible_id": "bob",
                           "due_at": fire_at + timedelta(minutes=5)}, actor_id="ann")
    entry = wait_for(lambda: task_due_entry(sleepy, "t1"), timeout=5)
    assert entry is not None, "task_due never fired: the worker slept through it"
    lag = (entry.created_at - fire_at).total_seconds()
    assert 0 <= lag < 1.0, lag
    assert sleepy.worker.alive


def test_a_job_enqueued_sooner_than_the_one_slept_for_runs_on_time(sleepy: Node) -> None:
    ran: dict[str, datetime] = {}

    def probe(j: ClaimedJob) -> None:
        ran.setdefault(j.key, datetime.now(UTC))

    sleepy.worker.register("probe", probe)
    now = datetime.now(UTC)
    with sleepy.db.transaction() as s:
        queue.enqueue(sleepy.db, s, kind="probe", key="far", due_at=now + timedelta(seconds=20),
                      payload={}, group="", now=now)
    sleepy.worker.start(1)
    time.sleep(0.3)  # sleeping until "far", 20 s away
    soon = datetime.now(UTC) + timedelta(seconds=0.5)
    with sleepy.db.transaction() as s:
        queue.enqueue(sleepy.db, s, kind="probe", key="soon", due_at=soon, payload={}, group="",
                      now=soon)
    sleepy.worker.wake()  # what the service does after every commit that added a job
    assert wait_for(lambda: "soon" in ran, timeout=3)
    assert 0 <= (ran["soon"] - soon).total_seconds() < 0.5


def test_stop_drains(sleepy: Node) -> None:
    started = threading.Event()
    release = threading.Event()
    ran: list[str] = []

    def slow(j: ClaimedJob) -> None:
        started.set()
        release.wait(5)
        ran.append(j.key)

    sleepy.worker.register("slow", slow)
    now = datetime.now(UTC)
    with sleepy.db.transaction() as s:
        for i in range(5):
            queue.enqueue(sleepy.db, s, kind="slow", key=f"k{i}", due_at=now, payload={},
                          group="", now=now)
    sleepy.worker.start(1)
    assert started.wait(5)
    stopper = threading.Thread(target=sleepy.worker.stop)
    stopper.start()
    assert wait_for(lambda: sleepy.worker.stopping, timeout=2)
    release.set()  # the job in hand finishes ...
    stopper.join(5)
    assert not stopper.is_alive() and not sleepy.worker.alive
    assert ran == ["k0"]
    with sleepy.db.read() as s:
        states = dict(s.execute(select(Job.key, Job.state)).all())
    # ... and the rest of its batch is handed back, due at once for the next node or start
    assert states == {"k0": "done", "k1": "pending", "k2": "pending", "k3": "pending",
                      "k4": "pending"}


def test_stop_is_prompt_while_sleeping(sleepy: Node) -> None:
    sleepy.worker.start(2)
    time.sleep(0.2)
    t0 = time.monotonic()
    sleepy.worker.stop()
    assert time.monotonic() - t0 < 1.0
    assert not sleepy.worker.alive


def test_stop_reaches_a_thread_between_its_claim_and_its_sleep(sleepy: Node) -> None:
    """Two threads share one wake-up: the one that was busy when stop() came must not then
    sleep its full 30 s because the other thread had already taken the wake-up."""
    w = sleepy.worker
    gate = threading.Event()
    computing = threading.Event()
    plain = w._tick

    def held_tick() -> float:
        timeout = plain()
        if threading.current_thread().name == "syncd-worker-1":
            computing.set()
            gate.wait(5)  # thread 1 sits between its claim and its sleep ...
        return timeout

    w._tick = held_tick  # type: ignore[method-assign]
    w.start(2)
    assert computing.wait(5)
    time.sleep(0.2)  # ... while thread 0 sleeps
    stopper = threading.Thread(target=w.stop)
    t0 = time.monotonic()
    stopper.start()
    time.sleep(0.2)  # thread 0 takes the wake-up and leaves
    gate.set()
    stopper.join(15)
    assert time.monotonic() - t0 < 2
    assert not w.alive
