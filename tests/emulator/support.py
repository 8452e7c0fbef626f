"""Helpers for driving the emulator through the real Google client libraries."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from syncd.emulator import EmulatorServer

APP_CREATED = "https://www.googleapis.com/auth/calendar.app.created"
CALENDAR = "https://www.googleapis.com/auth/calendar"


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


@dataclass
class Account:
    email: str
    tokens: dict[str, Any]
    creds: Credentials
    service: Any


def connect(emulator: EmulatorServer, email: str | None = None, scopes: list[str] | None = None,
            client_id: str | None = None) -> Account:
    """A fresh account whose Credentials hold only a refresh token: the first call refreshes
    against the emulator's token endpoint, exactly as the daemon's stored grants do."""
    email = email or new_email()
    tokens = emulator.create_account(email, scopes=scopes or [APP_CREATED], client_id=client_id)
    creds = Credentials(None, refresh_token=tokens["refresh_token"], token_uri=emulator.token_uri,
                        client_id=tokens["client_id"], client_secret=tokens["client_secret"])
    return Account(email, tokens, creds, service_for(emulator, creds))


def service_for(emulator: EmulatorServer, creds: Credentials) -> Any:
    return build("calendar", "v3", credentials=creds, static_discovery=True,
                 client_options={"api_endpoint": emulator.api_endpoint})


def error_of(excinfo: pytest.ExceptionInfo[HttpError]) -> tuple[int, str, dict[str, Any]]:
    """(status, first reason, error object) of a Google API error."""
    exc = excinfo.value
    body = json.loads(exc.content)["error"]
    return exc.status_code, body["errors"][0]["reason"], body


def timed(start: str, end: str, tz: str | None = None, **extra: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"dateTime": start}
    e: dict[str, Any] = {"dateTime": end}
    if tz:
        s["timeZone"] = e["timeZone"] = tz
    return {"summary": "call: Ann", "start": s, "end": e, **extra}


def seed_events(emulator: EmulatorServer, access_token: str, calendar_id: str, count: int) -> None:
    """Insert many events quickly: hand-built batch requests in the CRLF multipart dialect
    other Google clients send (googleapiclient's own builder costs ~5 ms per call)."""
    path = f"/calendar/v3/calendars/{calendar_id.replace('@', '%40')}/events"
    with httpx.Client(headers={"Authorization": f"Bearer {access_token}"}) as client:
        for first in range(0, count, 50):
            parts = []
            for n in range(first, min(first + 50, count)):
                body = json.dumps(timed("2030-03-01T09:00:00Z", "2030-03-01T10:00:00Z",
                                        summary=f"seed {n}"))
                parts.append(f"--seed\r\nContent-Type: application/http\r\nContent-ID: <{n}>\r\n\r\n"
                             f"POST {path}\r\nContent-Type: application/json\r\n\r\n{body}\r\n")
            response = client.post(emulator.batch_uri, content="".join(parts) + "--seed--\r\n",
                                   headers={"Content-Type": "multipart/mixed; boundary=seed"})
            assert response.status_code == 200 and response.text.count("HTTP/1.1 200") == len(parts)
