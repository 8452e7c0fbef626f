"""Wires one node together: database, clock, service, worker, senders and the HTTP app."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass, field

from syncd.channels.setup import register_senders
from syncd.clock import Clock, SystemClock
from syncd.gcal.mirror import PULL_JOB, PUSH_JOB, SETUP_JOB, WATCH_JOB, Mirror
from syncd.gcal.pull import Puller
from syncd.gcal.push import Pusher
from syncd.gcal.watch import Watcher
from syncd.jobs.worker import Worker
from syncd.metrics import Metrics
from syncd.notify.center import DELIVER_JOB, TIMER_JOB
from syncd.notify.deliver import Deliverer
from syncd.notify.hub import Hub
from syncd.notify.relay import Relay
from syncd.service import Service
from syncd.settings import Settings
from syncd.store.db import Database

log = logging.getLogger(__name__)


@dataclass
class Node:
    settings: Settings
    clock: Clock
    db: Database
    hub: Hub
    worker: Worker
    service: Service
    deliverer: Deliverer
    name: str = ""
    metrics: Metrics = field(default_factory=Metrics)  # this node's own Prometheus registry
    mirror: Mirror | None = None  # the Google Calendar mirror (SPEC §5)
    watcher: Watcher | None = None


def build(settings: Settings, clock: Clock | None = None, *, migrate: bool = True) -> Node:
    """migrate=False: the caller vouches that the database is at head already (tests and
    benchmarks that copy a migrated template); wiring reads it (the shared VAPID key)."""
    clock = clock or SystemClock()
    db = Database(settings.database_url)
    if migrate:
        db.upgrade()
    # Unique per node even when several share a process (tests) or a pid (containers).
    name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    hub = Hub()
    worker = Worker(db, clock, settings.jobs, node=name)
    service = Service(db, clock, settings, hub=hub, wake=worker.wake)
    deliverer = Deliverer(db, clock)
    worker.register(TIMER_JOB, service.fire_timer)
    worker.register(DELIVER_JOB, deliverer)
    register_senders(deliverer, settings, db, clock)  # issue 5
    node = Node(settings, clock, db, hub, worker, service, deliverer, name)
    node.metrics.watch(node)
    if db.is_postgres:
        service.relay = Relay(db, name, service.show_live)
    node.mirror = mirror = Mirror(service, settings, metrics=node.metrics)
    node.watcher = Watcher(mirror)
    worker.register(SETUP_JOB, mirror.setup)
    worker.register(PUSH_JOB, Pusher(mirror))
    worker.register(PULL_JOB, Puller(mirror))
    worker.register(WATCH_JOB, node.watcher)
    service.on_timer_fired = node.metrics.timer_fired
    return node
