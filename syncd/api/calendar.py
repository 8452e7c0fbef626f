"""The Google Calendar toggle (G1), its OAuth callback, and Google's push notifications (G9)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from syncd.api.auth import NodeDep, OwnUser
from syncd.api.schemas import CalendarStatus
from syncd.errors import InvalidInput

router = APIRouter(tags=["calendar"])


class ConnectOut(BaseModel):
    authorization_url: str


@router.post("/v1/users/{id}/calendar/connect", response_model=ConnectOut)
def connect(id: OwnUser, n: NodeDep) -> ConnectOut:
    return ConnectOut(authorization_url=n.mirror.connect_url(id))


@router.post("/v1/users/{id}/calendar/disconnect", response_model=CalendarStatus)
def disconnect(id: OwnUser, n: NodeDep) -> CalendarStatus:
    return CalendarStatus(**n.mirror.disconnect(id))


@router.get("/v1/users/{id}/calendar", response_model=CalendarStatus)
def status(id: OwnUser, n: NodeDep) -> CalendarStatus:
    return CalendarStatus(**n.mirror.status(id))


@router.get("/oauth/google/callback", response_class=RedirectResponse, status_code=303)
def callback(n: NodeDep, state: Annotated[str, Query(max_length=512)] = "",
             code: Annotated[str, Query(max_length=4096)] = "",
             error: Annotated[str, Query(max_length=256)] = "") -> RedirectResponse:
    """Google sends the browser here after consent; on success it goes on to the profile."""
    if error:
        raise InvalidInput(f"Google consent failed: {error}", field="error")
    if not state or not code:
        raise InvalidInput("state and code are required", field="state" if not state else "code")
    n.mirror.finish_connect(state, code)
    return RedirectResponse(n.settings.http.public_url.rstrip("/") + "/?calendar=connected#profile",
                            status_code=303)


@router.post("/hooks/google", status_code=200)
def google_push(request: Request, n: NodeDep,
                channel_id: Annotated[str, Header(alias="X-Goog-Channel-ID", max_length=256)],
                resource_state: Annotated[str, Header(alias="X-Goog-Resource-State",
                                                      max_length=32)],
                channel_token: Annotated[str, Header(alias="X-Goog-Channel-Token",
                                                     max_length=256)] = "") -> Response:
    n.watcher.notified(channel_id, channel_token, resource_state)
    return Response(status_code=200)
