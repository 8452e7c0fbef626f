"""Runs one node: the HTTP API and the workers in one process, with a clean drain on SIGTERM."""

from __future__ import annotations

import logging
import threading

import uvicorn

from syncd.api.app import create_app
from syncd.daemon import Node

log = logging.getLogger(__name__)


class NodeServer:
    """uvicorn plus the worker threads. `start()` returns once the port is serving."""

    def __init__(self, node: Node, host: str, port: int, workers: int = 2) -> None:
        self.node = node
        self.workers = workers
        config = uvicorn.Config(create_app(node), host=host, port=port, log_config=None,
                                access_log=False, lifespan="off", timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.server.config.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        self._thread = threading.Thread(target=self.server.run, name="syncd-http", daemon=True)
        self._thread.start()
        for _ in range(int(timeout * 100)):
            if self.server.started:
                break
            if not self._thread.is_alive():
                raise RuntimeError("HTTP server failed to start")
            threading.Event().wait(0.01)
        else:
            raise RuntimeError("HTTP server did not start in time")
        self.node.worker.start(self.workers)

    def stop(self, timeout: float = 10.0) -> None:
        self.node.worker.stop(timeout)
        self.server.should_exit = True
        if self._thread:
            self._thread.join(timeout)
        self.node.db.dispose()

    def run(self, stop: threading.Event) -> None:
        """Serve until `stop` is set (the CLI sets it on SIGTERM/SIGINT)."""
        self.start()
        log.info("serving", extra={"url": self.url, "node": self.node.name})
        stop.wait()
        log.info("stopping: draining workers")
        self.stop()
