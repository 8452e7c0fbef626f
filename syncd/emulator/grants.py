"""OAuth 2.0 grant bookkeeping: clients, authorization codes (with PKCE), access and refresh
tokens, revocation. Error values mirror Google's token endpoint (RFC 6749 names plus Google's
error_description texts)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from .scopes import KNOWN_SCOPES
from .settings import EmulatorSettings
from .state import AccessToken, AuthCode, EmulatorState, OAuthClient, RefreshToken


class OAuthError(Exception):
    """An error of the token or revoke endpoint: {"error", "error_description"} and a status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_grant(description: str = "Bad Request") -> OAuthError:
    return OAuthError("invalid_grant", description)


@dataclass
class IssuedTokens:
    access_token: str
    expires_in: int
    scopes: list[str]
    refresh_token: str | None

    def response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "expires_in": self.expires_in,
            "scope": " ".join(self.scopes),
            "token_type": "Bearer",
        }
        if self.refresh_token:
            body["refresh_token"] = self.refresh_token
        return body


def _random(prefix: str, nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


class Grants:
    def __init__(self, state: EmulatorState, settings: EmulatorSettings) -> None:
        self.state = state
        self.settings = settings

    # -- clients ---------------------------------------------------------------------------

    def ensure_default_client(self) -> OAuthClient:
        with self.state.lock:
            client = self.state.clients.get(self.settings.default_client_id)
            if client is None:
                client = self.register_client(
                    client_id=self.settings.default_client_id,
                    client_secret=self.settings.default_client_secret,
                    redirect_uris=["http://localhost", "http://127.0.0.1"], kind="installed")
            return client

    def register_client(self, *, client_id: str | None = None, client_secret: str | None = None,
                        redirect_uris: list[str] | None = None, kind: str = "web",
                        name: str = "syncd") -> OAuthClient:
        if kind not in ("web", "installed"):
            raise ValueError("kind must be 'web' or 'installed'")
        client = OAuthClient(
            client_id=client_id or f"{secrets.token_hex(12)}.apps.googleusercontent.com",
            client_secret=client_secret or _random("GOCSPX-", 18),
            redirect_uris=list(redirect_uris or []), kind=kind, name=name)
        with self.state.lock:
            self.state.clients[client.client_id] = client
        return client

    def authenticate_client(self, client_id: str | None, client_secret: str | None) -> OAuthClient:
        client = self.state.clients.get(client_id or "")
        if client is None:
            raise OAuthError("invalid_client", "The OAuth client was not found.", 401)
        if not hmac.compare_digest(client.client_secret, client_secret or ""):
            raise OAuthError("invalid_client", "Unauthorized", 401)
        return client

    @staticmethod
    def redirect_allowed(client: OAuthClient, redirect_uri: str) -> bool:
        if redirect_uri in client.redirect_uris:
            return True
        # Desktop clients may use any port (and path) on the loopback interface.
        if client.kind == "installed":
            for prefix in ("http://127.0.0.1", "http://localhost", "http://[::1]"):
                rest = redirect_uri[len(prefix):]
                if redirect_uri.startswith(prefix) and (rest == "" or rest[0] in ":/"):
                    return True
        return False

    # -- authorization codes ---------------------------------------------------------------

    def has_grant(self, account: str, client_id: str) -> bool:
        return any(r.account == account and r.client_id == client_id
                   for r in self.state.refresh_tokens.values())

    def granted_scopes(self, account: str, client_id: str) -> set[str]:
        return {s for r in self.state.refresh_tokens.values()
                if r.account == account and r.client_id == client_id for s in r.scopes}

    def issue_code(self, *, account: str, client: OAuthClient, redirect_uri: str,
                   scopes: list[str], offline: bool, force_consent: bool,
                   include_granted: bool, challenge: str | None,
                   challenge_method: str | None) -> AuthCode:
        with self.state.lock:
            already = self.has_grant(account, client.client_id)
            if include_granted:
                scopes = sorted(set(scopes) | self.granted_scopes(account, client.client_id))
            code = AuthCode(
                code=_random("4/0A"), account=account, client_id=client.client_id,
                redirect_uri=redirect_uri, scopes=scopes,
                expires_at=self.state.now().timestamp() + self.settings.auth_code_ttl,
                offline=offline,
                # Google returns a refresh token only on first consent, or when prompt=consent
                # forces the consent screen again: a classic production surprise.
                new_refresh_token=offline and (force_consent or not already),
                challenge=challenge, challenge_method=challenge_method)
            self.state.auth_codes[code.code] = code
            return code

    def exchange_code(self, client: OAuthClient, code_value: str, redirect_uri: str | None,
                      verifier: str | None) -> IssuedTokens:
        with self.state.lock:
            code = self.state.auth_codes.pop(code_value, None)
            if code is None or code.expires_at < self.state.now().timestamp():
                raise invalid_grant("Malformed auth code." if code is None else "Bad Request")
            if code.client_id != client.client_id:
                raise OAuthError("unauthorized_client", "Unauthorized")
            if redirect_uri != code.redirect_uri:
                raise OAuthError("redirect_uri_mismatch", "Bad Request")
            if code.challenge is not None:
                if not verifier:
                    raise invalid_grant("Missing code verifier.")
                if not hmac.compare_digest(_challenge(verifier, code.challenge_method),
                                           code.challenge):
                    raise invalid_grant("Invalid code verifier.")
            refresh = None
            if code.new_refresh_token:
                refresh = self._new_refresh_token(code.account, client.client_id, code.scopes)
            elif code.offline:
                # The existing refresh token now covers the newly granted scopes too.
                for r in self.state.refresh_tokens.values():
                    if r.account == code.account and r.client_id == client.client_id:
                        r.scopes = sorted(set(r.scopes) | set(code.scopes))
            return self._new_access_token(code.account, client.client_id, code.scopes, refresh,
                                          refresh is not None)

    # -- tokens ----------------------------------------------------------------------------

    def mint(self, account: str, client_id: str, scopes: list[str]) -> IssuedTokens:
        """A grant made without the web flow (admin API): refresh and access token."""
        with self.state.lock:
            refresh = self._new_refresh_token(account, client_id, scopes)
            return self._new_access_token(account, client_id, scopes, refresh, True)

    def refresh(self, client: OAuthClient, refresh_value: str,
                requested: list[str] | None) -> IssuedTokens:
        with self.state.lock:
            refresh = self.state.refresh_tokens.get(refresh_value)
            if refresh is None:
                raise invalid_grant("Token has been expired or revoked.")
            if refresh.client_id != client.client_id:
                raise OAuthError("unauthorized_client", "Unauthorized")
            scopes = refresh.scopes
            if requested:
                if not set(requested) <= set(refresh.scopes):
                    raise OAuthError("invalid_scope",
                                     "Some requested scopes were invalid. {invalid="
                                     f"[{', '.join(sorted(set(requested) - set(scopes)))}]}}")
                scopes = sorted(set(requested))
            return self._new_access_token(refresh.account, client.client_id, scopes, refresh,
                                          False)

    def access_token(self, value: str) -> AccessToken | None:
        token = self.state.access_tokens.get(value)
        if token is None or token.expires_at <= self.state.now().timestamp():
            return None
        return token

    def revoke_token(self, value: str) -> None:
        """Google's revoke: any token of a grant removes the app's access for that account."""
        with self.state.lock:
            token = self.state.access_tokens.get(value) or self.state.refresh_tokens.get(value)
            if token is None:
                raise OAuthError("invalid_token", "Token expired or revoked")
            self.revoke_grant(token.account, token.client_id)

    def revoke_grant(self, account: str, client_id: str | None = None) -> int:
        """Drop every token of `account` (for one client, or all); returns how many died."""
        with self.state.lock:
            doomed = [t for t in (*self.state.refresh_tokens.values(),
                                  *self.state.access_tokens.values())
                      if t.account == account and client_id in (None, t.client_id)]
            for t in doomed:
                store = (self.state.refresh_tokens if isinstance(t, RefreshToken)
                         else self.state.access_tokens)
                store.pop(t.token, None)
            return len(doomed)

    def expire_access_tokens(self, account: str | None = None) -> int:
        with self.state.lock:
            doomed = [t for t in self.state.access_tokens.values()
                      if account in (None, t.account)]
            for t in doomed:
                t.expires_at = 0.0
            return len(doomed)

    def purge_expired(self) -> None:
        now = self.state.now().timestamp()
        with self.state.lock:
            for store in (self.state.access_tokens, self.state.auth_codes):
                for key in [k for k, v in store.items() if v.expires_at <= now]:
                    del store[key]

    def _new_refresh_token(self, account: str, client_id: str, scopes: list[str]) -> RefreshToken:
        refresh = RefreshToken(token=_random("1//0"), account=account, client_id=client_id,
                               scopes=sorted(set(scopes)))
        self.state.refresh_tokens[refresh.token] = refresh
        mine = [r for r in self.state.refresh_tokens.values()
                if r.account == account and r.client_id == client_id]
        for stale in mine[: max(0, len(mine) - self.settings.max_refresh_tokens)]:
            del self.state.refresh_tokens[stale.token]
        return refresh

    def _new_access_token(self, account: str, client_id: str, scopes: list[str],
                          refresh: RefreshToken | None, hand_out_refresh: bool) -> IssuedTokens:
        """A fresh access token; the refresh token goes into the response only when it is new
        (Google never repeats a refresh token in a refresh or re-consent response)."""
        ttl = self.settings.access_token_ttl
        token = AccessToken(token=_random("ya29.a0"), account=account, client_id=client_id,
                            scopes=frozenset(scopes),
                            expires_at=self.state.now().timestamp() + ttl,
                            refresh_token=refresh.token if refresh else None)
        self.state.access_tokens[token.token] = token
        return IssuedTokens(access_token=token.token, expires_in=ttl, scopes=sorted(scopes),
                            refresh_token=refresh.token if refresh and hand_out_refresh
                            else None)


def unknown_scopes(scopes: list[str]) -> list[str]:
    return [s for s in scopes if s not in KNOWN_SCOPES]


def _challenge(verifier: str, method: str | None) -> str:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return verifier
