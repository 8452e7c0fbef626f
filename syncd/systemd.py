"""The systemd notify protocol, by hand (sd_notify(3)): no libsystemd, no extra package.

systemd passes a unix datagram socket in `$NOTIFY_SOCKET` (a path, or `@name` for the abstract
namespace) to a `Type=notify` service; the service sends newline-separated `KEY=value` lines:
`READY=1` once it serves, `STATUS=…` for `systemctl status`, `WATCHDOG=1` more often than
`WatchdogSec=` (systemd passes it as `$WATCHDOG_USEC`), `STOPPING=1` when it starts to shut down.
Without `$NOTIFY_SOCKET` (a terminal, a test, another supervisor) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def _address(raw: str) -> str | bytes:
    # "@name" is Linux's abstract namespace: the socket name starts with a NUL byte.
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    return raw


class Notifier:
    """Sends sd_notify messages to `$NOTIFY_SOCKET` (or `address`); silent if there is none."""

    def __init__(self, address: str | None = None, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = address if address is not None else env.get("NOTIFY_SOCKET") or None
        self._watchdog_usec = env.get("WATCHDOG_USEC")
        self._watchdog_pid = env.get("WATCHDOG_PID")
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, *lines: str) -> bool:
        """Send one datagram of `KEY=value` lines. False if not sent (no socket, or an error:
        a failed notification must never take the daemon down)."""
        if not self.address:
            return False
        data = "\n".join(line.replace("\n", " ") for line in lines).encode()
        try:
            with self._lock:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(data, _address(self.address))
            return True
        except OSError as exc:
            log.warning("systemd notify failed", extra={"error": str(exc)})
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def stopping(self, status: str = "") -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time to start or stop (EXTEND_TIMEOUT_USEC)."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")

    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half of `$WATCHDOG_USEC`, as sd_watchdog_enabled(3) advises);
        None when systemd wants no pings (unset, zero, or meant for another process)."""
        if not self.address or not self._watchdog_usec:
            return None
        if self._watchdog_pid and self._watchdog_pid != str(os.getpid()):
            return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        return usec / 2_000_000 if usec > 0 else None

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


class Watchdog:
    """Pings `WATCHDOG=1` every `interval` seconds, but only while `healthy()` says so: a node
    whose workers died or hang stops pinging, and systemd restarts it (`Restart=on-failure`)."""

    def __init__(self, notifier: Notifier, healthy: Callable[[], bool],
                 interval: float | None = None) -> None:
        self.notifier = notifier
        self.healthy = healthy
        self.interval = interval if interval is not None else notifier.watchdog_interval()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._was_healthy = True

    def start(self) -> None:
        if not self.interval:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="syncd-watchdog", daemon=True)
        self._thread.start()

    def tick(self) -> bool:
        """One check: ping if healthy. Returns whether it pinged."""
        try:
            ok = bool(self.healthy())
        except Exception:  # a failing check is an unhealthy node, not a dead watchdog thread
            log.exception("health check raised")
            ok = False
        if ok != self._was_healthy:
            (log.info if ok else log.error)(
                "watchdog: workers healthy again" if ok else "watchdog: workers unhealthy, "
                "not pinging (systemd will restart the node if this lasts)")
            self.notifier.status("serving" if ok else "unhealthy: workers stalled or dead")
            self._was_healthy = ok
        return ok and self.notifier.watchdog()

    def _loop(self) -> None:
        assert self.interval
        while True:
            self.tick()
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
