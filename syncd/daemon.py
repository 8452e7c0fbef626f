"""Wires one node together: database, clock, service, worker, senders and the HTTP app."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

from syncd.clock import Clock, SystemClock
from syncd.jobs.worker import Worker
from syncd.notify.center import DELIVER_JOB, TIMER_JOB
from syncd.notify.deliver import Deliverer
from syncd.notify.hub import Hub
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
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


def build(settings: Settings, clock: Clock | None = None, *, migrate: bool = True) -> Node:
    clock = clock or SystemClock()
    db = Database(settings.database_url)
    if migrate:
        db.upgrade()
    name = f"{socket.gethostname()}:{os.getpid()}"
    hub = Hub()
    worker = Worker(db, clock, settings.jobs, node=name)
    service = Service(db, clock, settings, hub=hub, wake=worker.wake)
    deliverer = Deliverer(db, clock)
    worker.register(TIMER_JOB, service.fire_timer)
    worker.register(DELIVER_JOB, deliverer)
    return Node(settings, clock, db, hub, worker, service, deliverer, name)
