"""Request counters for benchmarks and tests: HTTP round trips versus API requests.

A batch is one HTTP round trip (kind "batch") but each inner call is one API request, exactly
how Google bills quota, so both views are kept.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from typing import Any


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.http: Counter[str] = Counter()
            self.api_total = 0
            self.by_method: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.by_account: Counter[str] = Counter()
            self.by_method_status: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self.batch_items = 0
            self.push: Counter[str] = Counter()

    def http_request(self, kind: str) -> None:
        with self._lock:
            self.http[kind] += 1

    def api_request(self, method: str, status: int, account: str | None, in_batch: bool) -> None:
        code = str(status)
        with self._lock:
            self.api_total += 1
            self.by_method[method] += 1
            self.by_status[code] += 1
            self.by_method_status[method][code] += 1
            if account:
                self.by_account[account] += 1
            if in_batch:
                self.batch_items += 1

    def push_result(self, outcome: str) -> None:
        with self._lock:
            self.push[outcome] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "http_requests": sum(self.http.values()),
                "http_by_kind": dict(self.http),
                "api_requests": self.api_total,
                "batch_items": self.batch_items,
                "by_method": dict(self.by_method),
                "by_status": dict(self.by_status),
                "by_account": dict(self.by_account),
                "by_method_status": {m: dict(c) for m, c in self.by_method_status.items()},
                "push_notifications": dict(self.push),
            }
