"""Runs one node: the HTTP API and the workers in one process, with a clean drain on SIGTERM.

Start: HTTP first (the port is serving), then the workers, then `READY=1` to systemd and the
watchdog. Stop (SIGTERM/SIGINT → `run()`'s event): `STOPPING=1`, then at once and side by side
the HTTP server stops accepting and lets requests in progress finish, and the workers stop
claiming: the job in hand finishes, the rest of a claimed batch is handed back (pending, due at
once, not counted as an attempt). All of it inside `http.stop_timeout_seconds`; a job still
running past that keeps its lease and is taken over once the lease ends, by this node after a
restart or by another one, so nothing is lost (handlers are idempotent).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time

import uvicorn
from sqlalchemy.engine import make_url

from syncd import health
from syncd.api.app import create_app
from syncd.daemon import Node
from syncd.errors import SyncdError
from syncd.settings import Settings
from syncd.systemd import Notifier, Watchdog

log = logging.getLogger(__name__)

# Of the stop budget: how long open HTTP connections (slow clients, SSE streams) may take to
# finish, and the margin kept for closing the database and the interpreter's own exit.
HTTP_DRAIN_SHARE = 0.4
EXIT_MARGIN_SECONDS = 1.0


class NodeServer:
    """uvicorn plus the worker threads. `start()` returns once the port is serving."""

    def __init__(self, node: Node, host: str, port: int, workers: int = 2, *,
                 stop_timeout: float | None = None, notifier: Notifier | None = None) -> None:
        self.node = node
        self.workers = workers
        self.stop_timeout = (stop_timeout if stop_timeout is not None
                             else node.settings.http.stop_timeout_seconds)
        config = uvicorn.Config(create_app(node), host=host, port=port, log_config=None,
                                access_log=False, lifespan="off", server_header=False,
                                timeout_graceful_shutdown=max(1, int(self.stop_timeout
                                                                     * HTTP_DRAIN_SHARE)))
        self.server = uvicorn.Server(config)
        self.notifier = notifier or Notifier()
        self.watchdog = Watchdog(self.notifier, lambda: health.workers_healthy(node))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        host = self.server.config.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        self._thread = threading.Thread(target=self.server.run, name="syncd-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                cfg = self.server.config
                raise SyncdError(f"the HTTP server could not start on {cfg.host}:{cfg.port} "
                                 "(see the log above; is the port in use?)")
            if time.monotonic() > deadline:
                raise SyncdError("the HTTP server did not start in time")
            time.sleep(0.01)
        self.node.worker.start(self.workers)
        if self.node.service.relay is not None:
            self.node.service.relay.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop accepting requests and work, drain both within `timeout` (default: the stop
        budget less a margin). True if everything finished in time."""
        budget = timeout if timeout is not None else max(
            1.0, self.stop_timeout - EXIT_MARGIN_SECONDS)
        deadline = time.monotonic() + budget
        self.server.should_exit = True  # stop accepting; requests in progress finish
        if self.node.service.relay is not None:
            self.node.service.relay.stop()
        # Worker.stop joins its threads one by one, each with the timeout it is given: run it
        # beside us and wait for it against our own deadline instead.
        stopper = threading.Thread(target=self.node.worker.stop, args=(budget,),
                                   name="syncd-worker-stop", daemon=True)
        stopper.start()
        stopper.join(max(0.0, deadline - time.monotonic()))
        workers_done = not stopper.is_alive()
        if self._thread:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        http_done = not (self._thread and self._thread.is_alive())
        if workers_done:
            self.node.db.dispose()
        else:
            log.error("stop: a job was still running when the stop timeout ran out; its lease "
                      "will let another worker take it over", extra={"node": self.node.name})
        if not http_done:
            log.warning("stop: HTTP connections still open at the stop timeout")
        return workers_done and http_done

    def run(self, stop: threading.Event) -> bool:
        """Serve until `stop` is set (the CLI sets it on SIGTERM/SIGINT). True if the drain
        finished within the stop timeout."""
        self.notifier.status("starting: HTTP server and workers")
        self.start()
        log.info("serving", extra={"url": self.url, "node": self.node.name,
                                   "workers": self.workers})
        self.notifier.ready(f"serving on {self.url} with {self.workers} workers")
        self.watchdog.start()
        stop.wait()
        started = time.monotonic()
        log.info("stopping: draining HTTP and workers",
                 extra={"stop_timeout_seconds": self.stop_timeout})
        self.notifier.stopping("stopping: draining HTTP and workers")
        self.watchdog.stop()
        self.node.hub.close()
        _end_event_streams()
        clean = self.stop()
        log.info("stopped", extra={"clean": clean,
                                   "seconds": round(time.monotonic() - started, 3)})
        self.notifier.status("stopped" if clean else "stopped (stop timeout reached)")
        self.notifier.close()
        return clean


def _end_event_streams() -> None:
    """SSE streams (`/v1/users/{id}/stream`) end when sse-starlette sees the server exiting; it
    looks for uvicorn's signal handler, which a server in a thread does not install. This flag
    is process-wide, so only `run()` (one node per process) sets it, never `stop()`."""
    try:
        from sse_starlette.sse import AppStatus
    except ImportError:  # pragma: no cover
        return
    AppStatus.should_exit = True


def log_uncaught_thread_errors() -> None:
    """A crash in any thread goes through logging (JSON, redacted) rather than raw stderr."""

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        log.critical("uncaught exception in thread %s",
                     args.thread.name if args.thread else "?",
                     exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    threading.excepthook = hook

    def main_hook(exc_type, exc, tb) -> None:
        log.critical("uncaught exception", exc_info=(exc_type, exc, tb))

    sys.excepthook = main_hook


class _MaskLiterals(logging.Formatter):
    """Wraps the configured formatter: the secret values from settings never reach the log,
    whatever line they turn up in (the pattern-based redaction in `syncd.logs` catches
    `Bearer …`, `token=…` and the like; this catches the known values anywhere)."""

    def __init__(self, inner: logging.Formatter, secrets: list[str]) -> None:
        super().__init__()
        self.inner = inner
        forms = set()
        for s in secrets:
            # As written, inside a repr() (a dict logged as an extra), and each of those as
            # json.dumps escapes it inside a JSON log line.
            for form in (s, repr(s)[1:-1]):
                forms.update({form, json.dumps(form, ensure_ascii=False)[1:-1]})
        self.secrets = sorted(forms, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        out = self.inner.format(record)
        for s in self.secrets:
            if s in out:
                out = out.replace(s, "***")
        return out


def known_secrets(settings: Settings) -> list[str]:
    values = [*settings.api.keys, settings.email.password, settings.webpush.vapid_private_key]
    url = make_url(settings.database_url) if "://" in settings.database_url else None
    if url is not None and url.password:
        values.append(str(url.password))
    # Short values would mask ordinary words; real secrets are long (API keys: 16+).
    return [v for v in values if v and len(v) >= 6]


def mask_secrets(settings: Settings) -> None:
    """Call after `syncd.logs.setup`: wraps the root handlers' formatters."""
    secrets = known_secrets(settings)
    if not secrets:
        return
    for handler in logging.getLogger().handlers:
        inner = handler.formatter or logging.Formatter()
        if not isinstance(inner, _MaskLiterals):
            handler.setFormatter(_MaskLiterals(inner, secrets))
