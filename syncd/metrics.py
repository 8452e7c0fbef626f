"""Prometheus metrics for one node (`GET /metrics`).

Each node has its own `CollectorRegistry` (never prometheus-client's global one), so tests that
run several nodes in one process don't collide. Reach it as `node.metrics`.

What other parts call:
- the Google client, after every API call:      `node.metrics.google_api_call("events.insert", 200)`
  (`method` is the discovery method name, `status` the HTTP status, or "error" when no
  response came back: a timeout, a refused connection);
- the sync, once a change is mirrored:           `node.metrics.observe_sync_lag(seconds)`
  (seconds from the change in the CRM, or in Google, to it being applied on the other side);
- the timer handler (wired in `syncd.daemon.build`): `notification lag`, see `timer_fired`.

Job figures and worker liveness are read at scrape time, not kept up to date as they change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sqlalchemy import select

from syncd.store.tables import Job

if TYPE_CHECKING:
    from syncd.daemon import Node
    from syncd.jobs.queue import ClaimedJob

log = logging.getLogger(__name__)

JOB_STATES = ("pending", "running", "done", "failed", "cancelled")
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
SYNC_LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self.notification_lag = Histogram(
            "syncd_notification_lag_seconds",
            "A timer's notification-center entry: created time minus the intended fire time.",
            buckets=LAG_BUCKETS, registry=self.registry)
        self.google_calls = Counter(
            "syncd_google_api_calls", "Google API calls, by API method and HTTP status.",
            ["method", "status"], registry=self.registry)
        self.sync_lag = Histogram(
            "syncd_google_sync_lag_seconds",
            "From a change (in the CRM or in Google) to it being applied on the other side.",
            buckets=SYNC_LAG_BUCKETS, registry=self.registry)
        self._node: Node | None = None

    # -- called by other parts -----------------------------------------------------------

    def google_api_call(self, method: str, status: int | str) -> None:
        self.google_calls.labels(method=method, status=str(status)).inc()

    def observe_sync_lag(self, seconds: float) -> None:
        self.sync_lag.observe(max(0.0, seconds))

    def observe_notification_lag(self, seconds: float) -> None:
        self.notification_lag.observe(max(0.0, seconds))

    def timer_fired(self, job: ClaimedJob, entries: list[Any]) -> None:
        """`Service.on_timer_fired`: the entries a timer just created. Never raises (a metric
        must not fail the job). The intended fire time is the job's due time."""
        try:
            intended = getattr(job, "due_at", None) or self._due_at(job.id)
            if intended is None:
                return
            for entry in entries:
                self.observe_notification_lag((entry.created_at - intended).total_seconds())
        except Exception:
            log.exception("notification lag metric")

    def _due_at(self, job_id: int) -> datetime | None:
        if self._node is None:
            return None
        with self._node.db.read() as s:
            return s.execute(select(Job.due_at).where(Job.id == job_id)).scalar()

    # -- wiring and output ---------------------------------------------------------------

    def watch(self, node: Node) -> None:
        """Collect the node's job figures and worker liveness at each scrape."""
        self._node = node
        self.registry.register(_NodeCollector(node))

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition and its content type, as the scraper's Accept header asks: the
        classic text format (version 0.0.4) unless it asks for OpenMetrics or text 1.0.0."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


class _NodeCollector(Collector):
    def __init__(self, node: Node) -> None:
        self.node = node

    def describe(self) -> list:
        return []  # collected at scrape time; nothing to check for name clashes up front

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from syncd import health
        from syncd.jobs import queue

        node = self.node
        now = node.clock.now()
        up = GaugeMetricFamily("syncd_database_up", "1 if the database answered this scrape.")
        try:
            counts = queue.counts(node.db, now)
            oldest = health.oldest_overdue_seconds(node, now)
        except Exception as exc:  # noqa: BLE001 (reported as syncd_database_up 0)
            log.warning("metrics: database unreachable", extra={"error": str(exc)})
            up.add_metric([], 0)
            yield up
        else:
            up.add_metric([], 1)
            yield up
            by_state = GaugeMetricFamily("syncd_jobs", "Jobs in the queue, by state.",
                                         labels=["state"])
            for state in sorted(set(JOB_STATES) | {k for k in counts if k != "late"}):
                by_state.add_metric([state], counts.get(state, 0))
            yield by_state
            yield GaugeMetricFamily("syncd_jobs_due", "Pending jobs whose due time has come "
                                    "(waiting for a worker).", value=counts.get("late", 0))
            yield GaugeMetricFamily("syncd_jobs_failed", "Jobs that failed for good.",
                                    value=counts.get("failed", 0))
            yield GaugeMetricFamily("syncd_jobs_late_seconds", "How late the most overdue "
                                    "pending job is (0 when none is due).", value=oldest)
        check = health.check_workers(node, now)
        yield GaugeMetricFamily("syncd_workers_alive", "1 if every worker thread is running.",
                                value=1 if check.detail["alive"] else 0)
        yield GaugeMetricFamily("syncd_workers_healthy", "1 if the workers are alive and made "
                                "progress recently (what the systemd watchdog goes by).",
                                value=1 if check.ok else 0)
