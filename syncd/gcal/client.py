"""Calling Google: the real google-api-python-client, one discovery build per process,
per-user credentials that refresh themselves, error classes (G14) and client-side limits."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import google_auth_httplib2
import httplib2
import httpx
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest, HttpRequest
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from syncd.errors import NotConfigured
from syncd.gcal.limits import RateLimits
from syncd.gcal.tokens import credential_path
from syncd.settings import GoogleSettings

SCOPE = "https://www.googleapis.com/auth/calendar.app.created"  # G1: least scope that works
BATCH_SIZE = 50  # Google's advice for Calendar batches


class Fault(Enum):
    RETRY = "retry"        # 5xx, 429, rate limits, transport: back off and try again
    QUOTA = "quota"        # 403 quotaExceeded: pause the user
    CONFLICT = "conflict"  # 412: the event changed in Google since we last saw it
    DUPLICATE = "duplicate"  # 409: the id exists already (our own earlier insert)
    GONE = "gone"          # 404/410: the event or calendar is not there
    GRANT = "grant"        # invalid_grant: the user must reconnect (G15)
    BAD = "bad"            # other 4xx: record it, don't retry forever


def reason_of(exc: HttpError) -> str:
    try:
        body = json.loads(exc.content or b"{}")
        return body["error"]["errors"][0].get("reason", "")
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


def status_of(exc: BaseException | None) -> int | str:
    """An API call's outcome as metrics label it: the HTTP status, or "error" if none came."""
    if exc is None:
        return 200
    return exc.resp.status if isinstance(exc, HttpError) else "error"


def classify(exc: BaseException) -> Fault:
    if isinstance(exc, RefreshError):
        return Fault.GRANT if "invalid_grant" in str(exc) else Fault.RETRY
    if isinstance(exc, (TransportError, OSError, httplib2.HttpLib2Error)):
        return Fault.RETRY
    if not isinstance(exc, HttpError):
        return Fault.BAD
    status, reason = exc.resp.status, reason_of(exc)
    if status == 429 or status >= 500 or reason in ("rateLimitExceeded", "userRateLimitExceeded"):
        return Fault.RETRY
    if reason == "quotaExceeded":
        return Fault.QUOTA
    return {412: Fault.CONFLICT, 409: Fault.DUPLICATE, 404: Fault.GONE, 410: Fault.GONE,
            401: Fault.GRANT}.get(status, Fault.BAD)


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str
    auth_uri: str
    token_uri: str
    redirect_uris: tuple[str, ...]
    kind: str  # "web" or "installed"

    @classmethod
    def load(cls, settings: GoogleSettings) -> OAuthClient:
        path = credential_path(settings.client_file)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise NotConfigured("Google Calendar is not set up on this server: no OAuth client "
                                f"file at {path} (setting google.client_file; see "
                                "credentials/README.md)") from None
        kind = "web" if "web" in data else "installed"
        c = data[kind]
        return cls(c["client_id"], c.get("client_secret", ""),
                   settings.auth_uri or c["auth_uri"], settings.token_uri or c["token_uri"],
                   tuple(c.get("redirect_uris", ())), kind)

    def config(self) -> dict:
        """The client_secrets shape google-auth-oauthlib's Flow expects."""
        return {self.kind: {"client_id": self.client_id, "client_secret": self.client_secret,
                            "auth_uri": self.auth_uri, "token_uri": self.token_uri,
                            "redirect_uris": list(self.redirect_uris)}}


def _quick_retries() -> Retrying:
    """Two more tries within a few seconds, jittered, for transient faults only (G14)."""
    return Retrying(stop=stop_after_attempt(3), reraise=True,
                    wait=wait_random_exponential(multiplier=0.2, max=2),
                    retry=retry_if_exception(lambda e: classify(e) is Fault.RETRY))


class Google:
    """One per node. The discovery document is parsed once; each call runs on an http object
    authorised with that user's credentials."""

    def __init__(self, settings: GoogleSettings, limits: RateLimits,
                 on_call: Callable[[str, int | str], None] | None = None) -> None:
        self.settings = settings
        self.root = settings.api_endpoint.rstrip("/")
        self.calendar = build("calendar", "v3", http=httplib2.Http(), static_discovery=True,
                              cache_discovery=False,
                              client_options={"api_endpoint": self.root + "/calendar/v3/"})
        # Each `calendar.events()` call builds a fresh resource, method docstrings and all
        # (~1 ms of CPU): more than the request it makes. Built once; requests made from it
        # are independent, so it is shared by every thread.
        self.events = self.calendar.events()
        self.limits = limits
        self.on_call = on_call or (lambda method, status: None)
        self._client: OAuthClient | None = None

    @property
    def client(self) -> OAuthClient:
        if self._client is None:
            self._client = OAuthClient.load(self.settings)
        return self._client

    def credentials(self, tokens: dict) -> Credentials:
        c = self.client
        expiry = tokens.get("expiry")
        return Credentials(token=tokens.get("token"), refresh_token=tokens.get("refresh_token"),
                           token_uri=c.token_uri, client_id=c.client_id,
                           client_secret=c.client_secret, scopes=tokens.get("scopes") or [SCOPE],
                           # google-auth compares naive UTC datetimes
                           expiry=datetime.fromisoformat(expiry) if expiry else None)

    @staticmethod
    def authorized(creds: Credentials) -> google_auth_httplib2.AuthorizedHttp:
        return google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=30))

    def execute(self, request: HttpRequest, creds: Credentials, method: str, user_id: str
                ) -> Any:
        """One call, with a few quick jittered retries for transient faults (tenacity); a
        longer outage surfaces to the job, which persists its own backoff. Each attempt
        counts against the user's and the project's limits (`RateLimited` if none is left)."""
        http = self.authorized(creds)

        def once() -> Any:
            self.limits.take_one(user_id)
            try:
                result = request.execute(http=http)
            except Exception as exc:
                self.on_call(method, status_of(exc))
                raise
            self.on_call(method, 200)
            return result

        return _quick_retries()(once)

    def revoke(self, creds: Credentials) -> None:
        """Revoke the grant at Google (G1). Revoking the refresh token revokes the whole grant."""
        token = creds.refresh_token or creds.token
        resp = httpx.post(self.settings.revoke_uri, data={"token": token}, timeout=15)
        self.on_call("oauth.revoke", resp.status_code)
        if resp.status_code >= 500:
            resp.raise_for_status()

    def batch(self) -> BatchHttpRequest:
        # new_batch_http_request() would ignore api_endpoint; the batch path is Calendar's own.
        return BatchHttpRequest(batch_uri=self.root + "/batch/calendar/v3")

    def execute_batch(self, batch: BatchHttpRequest, creds: Credentials) -> None:
        """The caller has taken the batch's requests from the limits (`limits.take`); the
        quick retries of a failed round trip are not counted again."""
        http = self.authorized(creds)
        _quick_retries()(lambda: batch.execute(http=http))
