"""The worker loop: claim due jobs, run their handlers, sleep until the next one is due.

It sleeps until the earliest pending job (capped by `jobs.max_sleep_seconds`, so work enqueued
by other nodes is seen), and `wake()` cuts the sleep short when this process enqueues
something sooner: a job runs within milliseconds of its due time, not at the next tick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from syncd.clock import Clock
from syncd.jobs import queue
from syncd.jobs.queue import ClaimedJob, GiveUp, RetryLater
from syncd.settings import JobSettings
from syncd.store.db import Database

log = logging.getLogger(__name__)

Handler = Callable[[ClaimedJob], None]


class Worker:
    def __init__(self, db: Database, clock: Clock, settings: JobSettings, node: str,
                 handlers: dict[str, Handler] | None = None) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.node = node
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self._wakeup = threading.Condition()
        self._woken = False
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.last_loop_at: datetime | None = None  # for health checks and the watchdog

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def wake(self) -> None:
        with self._wakeup:
            self._woken = True
            self._wakeup.notify_all()

    def run_due(self) -> int:
        """Run every job due now, until none is left. Returns how many ran."""
        total = 0
        while batch := queue.claim(self.db, self.clock.now(), self.settings.batch_size,
                                   self.node, self.settings.lease_seconds):
            self._run_batch(batch)
            total += len(batch)
        return total

    def _run_batch(self, batch: list[ClaimedJob]) -> None:
        done: list[int] = []
        for i, job in enumerate(batch):
            if self._stopping.is_set():
                queue.release(self.db, [j.id for j in batch[i:]], self.clock.now())
                break
            if self._run_one(job):
                done.append(job.id)
        queue.finish(self.db, done, self.clock.now())

    def _run_one(self, job: ClaimedJob) -> bool:
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise GiveUp(f"no handler for job kind {job.kind!r}")
            handler(job)
            return True
        except RetryLater as exc:
            queue.retry(self.db, job, str(exc), self.clock.now(), self.settings, exc.delay)
        except GiveUp as exc:
            log.warning("job failed for good", extra={"job": job.key, "error": str(exc)})
            queue.fail(self.db, job, str(exc), self.clock.now())
        except Exception as exc:  # a handler bug must not stop the worker or the other jobs
            log.exception("job raised", extra={"job": job.key})
            state = queue.retry(self.db, job, f"{type(exc).__name__}: {exc}", self.clock.now(),
                                self.settings)
            if state == "failed":
                log.error("job gave up after %d attempts", job.attempts, extra={"job": job.key})
        return False

    def _sleep_seconds(self) -> float:
        cap = self.settings.max_sleep_seconds
        due = queue.next_due(self.db)
        if due is None:
            return cap
        return max(0.0, min(cap, (due - self.clock.now()).total_seconds()))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.last_loop_at = self.clock.now()
            try:
                ran = self.run_due()
                timeout = 0.0 if ran else self._sleep_seconds()
            except Exception:  # the database may be briefly unreachable; keep the loop alive
                log.exception("worker loop error")
                timeout = self.settings.max_sleep_seconds
            with self._wakeup:
                if not self._woken and timeout > 0:
                    self._wakeup.wait(timeout)
                self._woken = False

    def start(self, threads: int = 1) -> None:
        self._stopping.clear()
        for n in range(threads):
            t = threading.Thread(target=self._loop, name=f"syncd-worker-{n}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; the job in hand finishes, the rest of a batch is released."""
        self._stopping.set()
        self.wake()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    @property
    def alive(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)
