"""Quotas and injected faults.

HTTP-level faults (added latency, dropped connections) act on a whole round trip; API-level
faults (scripted errors, the quotaExceeded switch, per-minute rate limits, random error rates)
act on each API call, including each call inside a batch.
"""

from __future__ import annotations

import random
import re
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from . import errors
from .clock import Clock
from .errors import ApiError
from .settings import EmulatorSettings

WINDOW_SECONDS = 60.0


def method_id(name: str) -> str:
    """"events.insert" and "calendar.events.insert" name the same method."""
    return name if name.startswith("calendar.") or name == "batch" else f"calendar.{name}"


@dataclass
class ScriptedFault:
    id: int
    remaining: int
    method: str | None = None
    path: str | None = None
    http_method: str | None = None
    status: int | None = None
    reason: str | None = None
    drop: bool = False
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)

    def matches(self, method: str | None, http_method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.http_method is not None and self.http_method != http_method:
            return False
        return self._pattern is None or self._pattern.search(path) is not None

    def set_quota_exceeded(self, exceeded: bool, accounts: list[str] | None = None) -> None:
        """The quotaExceeded switch: for everyone, or on/off for some accounts."""
        with self._lock:
            if accounts is None:
                self.quota_exceeded = exceeded
            elif exceeded:
                self.quota_exceeded_accounts.update(accounts)
            else:
                self.quota_exceeded_accounts.difference_update(accounts)

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


class Faults:
    def __init__(self, settings: EmulatorSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self.rng = random.Random(settings.random_seed)
        self._windows: dict[str, deque[float]] = {}
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.error_rates: dict[int, float] = {}
            self.error_reasons: dict[int, str] = {}
            self.rate_methods: set[str] | None = None
            self.latency_ms = 0.0
            self.jitter_ms = 0.0
            self.drop_rate = 0.0
            self.scripted: list[ScriptedFault] = []
            self.quota_exceeded = False
            self.quota_exceeded_accounts: set[str] = set()
            self._next_id = 1
            self._windows.clear()

    # -- configuration ---------------------------------------------------------------------

    def configure(self, *, error_rates: dict[int, float] | None = None,
                  error_reasons: dict[int, str] | None = None,
                  methods: list[str] | None = None, latency_ms: float = 0.0,
                  jitter_ms: float = 0.0, drop_rate: float = 0.0) -> None:
        rates = {int(k): float(v) for k, v in (error_rates or {}).items()}
        if any(not 0 <= r <= 1 for r in rates.values()) or sum(rates.values()) > 1:
            raise ValueError("error rates must be within [0, 1] and sum to at most 1")
        if not 0 <= drop_rate <= 1 or latency_ms < 0 or jitter_ms < 0:
            raise ValueError("drop_rate must be within [0, 1]; latencies must be >= 0")
        with self._lock:
            self.error_rates = rates
            self.error_reasons = {int(k): v for k, v in (error_reasons or {}).items()}
            self.rate_methods = {method_id(m) for m in methods} if methods else None
            self.latency_ms, self.jitter_ms, self.drop_rate = latency_ms, jitter_ms, drop_rate

    def script(self, *, count: int, method: str | None = None, path: str | None = None,
               http_method: str | None = None, status: int | None = None,
               reason: str | None = None, drop: bool = False) -> ScriptedFault:
        if count < 1 or (status is None) == (not drop):
            raise ValueError("a scripted fault needs count >= 1 and exactly one of status/drop")
        with self._lock:
            fault = ScriptedFault(
                id=self._next_id, remaining=count, method=method_id(method) if method else None,
                path=path, http_method=http_method.upper() if http_method else None,
                status=status, reason=reason, drop=drop,
                _pattern=re.compile(path) if path else None)
            self._next_id += 1
            self.scripted.append(fault)
            return fault

    def set_quota_exceeded(self, exceeded: bool, accounts: list[str] | None = None) -> None:
        """The quotaExceeded switch: for everyone, or on/off for some accounts."""
        with self._lock:
            if accounts is None:
                self.quota_exceeded = exceeded
            elif exceeded:
                self.quota_exceeded_accounts.update(accounts)
            else:
                self.quota_exceeded_accounts.difference_update(accounts)

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "error_rates": {str(k): v for k, v in self.error_rates.items()},
                "error_reasons": {str(k): v for k, v in self.error_reasons.items()},
                "methods": sorted(self.rate_methods) if self.rate_methods else None,
                "latency_ms": self.latency_ms, "jitter_ms": self.jitter_ms,
                "drop_rate": self.drop_rate,
                "scripted": [f.describe() for f in self.scripted],
                "quota_exceeded": self.quota_exceeded,
                "quota_exceeded_accounts": sorted(self.quota_exceeded_accounts),
            }

    # -- decisions -------------------------------------------------------------------------

    def _take_script(self, method: str | None, http_method: str, path: str,
                     want_drop: bool) -> ScriptedFault | None:
        for fault in self.scripted:
            if fault.drop == want_drop and fault.matches(method, http_method, path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.scripted.remove(fault)
                return fault
        return None

    def http_level(self, method: str | None, http_method: str, path: str) -> tuple[float, bool]:
        """-> (seconds of added latency, drop the connection)."""
        with self._lock:
            drop = self._take_script(method, http_method, path, want_drop=True) is not None
            if not drop and self.drop_rate and self._applies(method):
                drop = self.rng.random() < self.drop_rate
            delay = self.latency_ms
            if self.jitter_ms:
                delay += self.rng.uniform(0, self.jitter_ms)
        return delay / 1000.0, drop

    def _applies(self, method: str | None) -> bool:
        return self.rate_methods is None or method in self.rate_methods

    def api_level(self, method: str, http_method: str, path: str, account: str,
                  project: str, quota_user: str) -> ApiError | None:
        with self._lock:
            fault = self._take_script(method, http_method, path, want_drop=False)
            if fault is not None and fault.status is not None:
                return errors.injected(fault.status, fault.reason)
            if self.quota_exceeded or account in self.quota_exceeded_accounts:
                return errors.quota_exceeded()
            limited = self._rate_limited(project, quota_user)
            if limited is not None:
                return limited
            if self.error_rates and self._applies(method):
                draw = self.rng.random()
                for code, rate in self.error_rates.items():
                    if draw < rate:
                        return errors.injected(code, self.error_reasons.get(code))
                    draw -= rate
        return None

    def _rate_limited(self, project: str, quota_user: str) -> ApiError | None:
        now = self.clock().timestamp()
        checks = ((f"user:{project}:{quota_user}", self.settings.user_rate_limit,
                   errors.user_rate_limit),
                  (f"project:{project}", self.settings.project_rate_limit, errors.rate_limit))
        windows = []
        for key, limit, error in checks:
            if limit is None:
                continue
            window = self._windows.setdefault(key, deque())
            while window and window[0] <= now - WINDOW_SECONDS:
                window.popleft()
            if len(window) >= limit:
                return error()
            windows.append(window)
        for window in windows:
            window.append(now)
        return None
