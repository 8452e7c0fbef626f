"""G1 consent: google-auth-oauthlib's Flow with PKCE and offline access. The `state` is
stored hashed, single-use, expiring and bound to the user who started the flow."""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlparse

from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from sqlalchemy import update

from syncd.errors import InvalidInput
from syncd.gcal.client import SCOPE, OAuthClient
from syncd.store.db import Database
from syncd.store.tables import OAuthState

STATE_TTL = timedelta(minutes=10)


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _allow_loopback_http(client: OAuthClient) -> None:
    # oauthlib insists on HTTPS; the only plain-HTTP token endpoint we accept is a loopback
    # one (the local emulator, or a test).
    host = urlparse(client.token_uri).hostname or ""
    if client.token_uri.startswith("http://") and host in ("127.0.0.1", "localhost", "::1"):
        os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")


def _flow(client: OAuthClient, redirect_uri: str, **kw: object) -> Flow:
    _allow_loopback_http(client)
    return Flow.from_client_config(client.config(), scopes=[SCOPE], redirect_uri=redirect_uri,
                                   **kw)


def start(db: Database, client: OAuthClient, user_id: str, email: str, redirect_uri: str,
          now: datetime) -> str:
    """The consent URL for this user; remembers the state and the PKCE verifier."""
    state = secrets.token_urlsafe(32)
    flow = _flow(client, redirect_uri, autogenerate_code_verifier=True)
    hints = {"login_hint": email} if email else {}
    url, _ = flow.authorization_url(access_type="offline", prompt="consent", state=state,
                                    **hints)
    with db.transaction() as s:
        s.add(OAuthState(state_hash=_hash(state), user_id=user_id,
                         code_verifier=flow.code_verifier, redirect_uri=redirect_uri,
                         created_at=now, expires_at=now + STATE_TTL))
    return url


def claim_state(db: Database, state: str, now: datetime) -> OAuthState:
    """Use up a state, once. A wrong, replayed or expired state changes nothing."""
    with db.transaction() as s:
        row = s.execute(
            update(OAuthState)
            .where(OAuthState.state_hash == _hash(state), OAuthState.used_at.is_(None),
                   OAuthState.expires_at > now)
            .values(used_at=now)
            .returning(OAuthState.user_id, OAuthState.code_verifier, OAuthState.redirect_uri)
        ).first()
    if row is None:
        raise InvalidInput("unknown, used or expired OAuth state", field="state")
    return OAuthState(state_hash="", user_id=row[0], code_verifier=row[1], redirect_uri=row[2],
                      created_at=now, expires_at=now)


def exchange(client: OAuthClient, claimed: OAuthState, state: str, code: str) -> Credentials:
    """Trade the authorization code (with the PKCE verifier) for tokens."""
    flow = _flow(client, claimed.redirect_uri, state=state, code_verifier=claimed.code_verifier)
    os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")  # Google may echo extra scopes
    flow.fetch_token(code=code)
    return flow.credentials


def tokens_of(creds: Credentials) -> dict:
    return {"token": creds.token, "refresh_token": creds.refresh_token,
            "expiry": creds.expiry.isoformat() if creds.expiry else None,
            "scopes": list(creds.scopes or [SCOPE])}
