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

RECHECK_SECONDS = 0.02  # see _tick

# A handler returns None when the job is done, or when the same job should run again.
Handler = Callable[[ClaimedJob], "datetime | None"]


class Worker:
    def __init__(self, db: Database, clock: Clock, settings: JobSettings, node: str,
                 handlers: dict[str, Handler] | None = None) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.node = node
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self._wakeup = threading.Condition()
        # Counts wake() calls. Each thread remembers the count it last acted on and sleeps only
        # if it is unchanged: with one shared flag, a thread could reset it while another was
        # between its claim and its sleep, and that one would then sleep through the wake-up
        # (and through stop()).
        self._wakes = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        # Stamped at the top of each loop and after each job: a long batch is progress too.
        # Health checks and the watchdog read it.
        self.last_progress_at: datetime | None = None

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def wake(self) -> None:
        with self._wakeup:
            self._wakes += 1
            self._wakeup.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run_due(self) -> int:
        """Run every job due now, until none is left (or stop() is called). Returns how many
        were claimed."""
        total = 0
        # Checked before each claim: once stopping, a released batch is not claimed straight back.
        while not self._stopping.is_set() and (batch := queue.claim(
                self.db, self.clock.now(), self.settings.batch_size, self.node,
                self.settings.lease_seconds)):
            self._run_batch(batch)
            total += len(batch)
        return total

    def _run_batch(self, batch: list[ClaimedJob]) -> None:
        # The whole batch shares one lease. Past half of it, the rest goes back rather than
        # run late: a job whose lease ran out may already be running on another node.
        claimed_at = self.clock.now()
        done: list[ClaimedJob] = []
        for i, job in enumerate(batch):
            held = (self.clock.now() - claimed_at).total_seconds()
            if self._stopping.is_set() or held > self.settings.lease_seconds / 2:
                queue.finish(self.db, done, self.clock.now())
                queue.release(self.db, batch[i:], self.clock.now())
                return
            if self._run_one(job):
                done.append(job)
            self.last_progress_at = self.clock.now()
        queue.finish(self.db, done, self.clock.now())

    def _run_one(self, job: ClaimedJob) -> bool:
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise GiveUp(f"no handler for job kind {job.kind!r}")
            again_at = handler(job)
            if not isinstance(again_at, datetime):
                return True  # done (whatever else a careless handler may have returned)
            # A recurring job (a user's pull, a channel renewal) says when it is next due.
            queue.reschedule(self.db, job, again_at, self.clock.now())
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

    def _tick(self) -> float:
        """One look at the queue: claim what is due and run it. Returns how long to sleep."""
        batch, look_again = queue.claim_next(self.db, self.clock.now(), self.settings.batch_size,
                                             self.node, self.settings.lease_seconds)
        if batch:
            self._run_batch(batch)
            # Its handlers may have added work due now (a timer's deliveries), or put a job
            # back for later (a retry): the next look, at once, sees both.
            return 0.0
        cap = self.settings.max_sleep_seconds
        if look_again is None:
            return cap
        wait = (look_again - self.clock.now()).total_seconds()
        if wait <= 0:
            # Due, yet not claimed: on PostgreSQL another transaction holds the row (SKIP
            # LOCKED skipped it). Look again shortly rather than spin on it.
            return RECHECK_SECONDS
        return min(cap, wait)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.last_progress_at = self.clock.now()
            with self._wakeup:
                seen = self._wakes  # a wake() from here on means: look again, don't sleep
            try:
                timeout = self._tick()
            except Exception:  # the database may be briefly unreachable; keep the loop alive
                log.exception("worker loop error")
                timeout = self.settings.max_sleep_seconds
            with self._wakeup:
                self._wakeup.wait_for(
                    lambda seen=seen: self._wakes != seen or self._stopping.is_set(), timeout)

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
