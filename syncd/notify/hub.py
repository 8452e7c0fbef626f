"""In-process fan-out of live events to open SSE streams, callable from any thread."""

from __future__ import annotations

import asyncio
import itertools
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    user_id: str
    name: str  # notification | unread_count | removed
    data: dict


class Subscription:
    def __init__(self, hub: Hub, user_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.hub = hub
        self.user_id = user_id
        self.loop = loop
        # None: the node is stopping, the stream ends (a clean end of the HTTP response).
        self.queue: asyncio.Queue[tuple[int, Event] | None] = asyncio.Queue(maxsize=1000)

    def _put(self, item: tuple[int, Event] | None) -> None:
        if self.queue.full():  # a stalled reader loses old events, and re-syncs on reconnect
            self.queue.get_nowait()
        self.queue.put_nowait(item)

    def close(self) -> None:
        self.hub._remove(self)


class Hub:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def subscribe(self, user_id: str) -> Subscription:
        sub = Subscription(self, user_id, asyncio.get_running_loop())
        with self._lock:
            self._subs.setdefault(user_id, set()).add(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.user_id)
            if subs:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.user_id]

    def watched(self, user_id: str) -> bool:
        with self._lock:
            return user_id in self._subs

    def next_id(self) -> int:
        return next(self._ids)

    def close(self) -> None:
        """End every open stream (the node is stopping)."""
        with self._lock:
            subs = [sub for group in self._subs.values() for sub in group]
        for sub in subs:
            sub.loop.call_soon_threadsafe(sub._put, None)

    def publish(self, event: Event) -> None:
        with self._lock:
            subs = list(self._subs.get(event.user_id, ()))
        item = (self.next_id(), event)
        for sub in subs:
            sub.loop.call_soon_threadsafe(sub._put, item)
