"""The notification center (SPEC §2, N13) and its live stream of server-sent events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Query
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from syncd.api.auth import NodeDep, OwnUser
from syncd.api.schemas import Count, NotificationOut, NotificationPage
from syncd.service import entry_json

router = APIRouter(prefix="/v1/users/{id}", tags=["notifications"])


@router.get("/notifications", response_model=NotificationPage)
def list_notifications(id: OwnUser, n: NodeDep, unread: bool = False,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50,
                       cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
                       ) -> NotificationPage:
    rows, nxt = n.service.list_notifications(id, unread, limit, int(cursor) if cursor else None)
    return NotificationPage(items=[NotificationOut(**entry_json(e)) for e in rows],
                            next_cursor=str(nxt) if nxt is not None else None)


@router.get("/notifications/unread-count", response_model=Count)
def unread_count(id: OwnUser, n: NodeDep) -> Count:
    return Count(count=n.service.unread_count(id))


@router.post("/notifications/{nid}/read", response_model=NotificationOut)
def mark_read(id: OwnUser, nid: Annotated[int, Path(ge=1, le=2**62)], n: NodeDep
              ) -> NotificationOut:
    return NotificationOut(**entry_json(n.service.mark_read(id, nid)))


@router.post("/notifications/read-all", response_model=Count)
def read_all(id: OwnUser, n: NodeDep) -> Count:
    n.service.read_all(id)
    return Count(count=0)


@router.get("/stream", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "notification, unread_count and removed events"}})
async def stream(id: OwnUser, n: NodeDep) -> EventSourceResponse:
    """Live events. Every (re)connection starts with the current `unread_count`, so a tab that
    missed events while away (Last-Event-ID or not) shows the right number at once (N13)."""
    sub = n.hub.subscribe(id)  # before reading the count, so nothing falls in between

    async def events() -> AsyncIterator[dict]:
        try:
            count = await run_in_threadpool(n.service.unread_count, id)
            yield {"event": "unread_count", "id": str(n.hub.next_id()),
                   "data": json.dumps({"count": count})}
            while (item := await sub.queue.get()) is not None:
                event_id, event = item
                yield {"event": event.name, "id": str(event_id), "data": json.dumps(event.data)}
        finally:
            sub.close()

    # The grace lets a stream end itself when the node stops (Hub.close) before it is cut.
    return EventSourceResponse(events(), ping=15, shutdown_grace_period=2)
