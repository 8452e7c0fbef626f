"""Google's OAuth 2.0 endpoints: authorization (with a one-click account chooser), token,
revoke and tokeninfo, at the paths Google serves them on."""

from __future__ import annotations

import base64
import html
import json
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .grants import Grants, OAuthError, unknown_scopes
from .settings import EmulatorSettings
from .state import EmulatorState, OAuthClient

AUTH_PATHS = ("/o/oauth2/v2/auth", "/o/oauth2/auth")
CHOOSE_PATH = "/o/oauth2/v2/auth/choose"
TOKEN_PATHS = ("/token", "/o/oauth2/token")
REVOKE_PATHS = ("/revoke", "/o/oauth2/revoke")
_NO_STORE = {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate", "Pragma": "no-cache"}


class _Page(Exception):
    """An error Google shows on its own page because the client cannot be trusted with it."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail

    def response(self) -> HTMLResponse:
        return HTMLResponse(
            f"<!doctype html><title>Error {self.status}: {html.escape(self.error)}</title>"
            f"<h1>Access blocked: authorization error</h1><p>Error {self.status}: "
            f"{html.escape(self.error)}</p><p>{html.escape(self.detail)}</p>", self.status)


def _redirect(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(params), status_code=302)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise OAuthError("invalid_request", "Invalid JSON payload received.") from None
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    pairs = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in pairs.items()}


class OAuthEndpoints:
    def __init__(self, state: EmulatorState, grants: Grants, settings: EmulatorSettings) -> None:
        self.state = state
        self.grants = grants
        self.settings = settings

    def routes(self) -> list[Route]:
        return [
            *(Route(p, self.authorize, methods=["GET"]) for p in AUTH_PATHS),
            Route(CHOOSE_PATH, self.choose, methods=["GET"]),
            *(Route(p, self.token, methods=["POST"]) for p in TOKEN_PATHS),
            *(Route(p, self.revoke, methods=["GET", "POST"]) for p in REVOKE_PATHS),
            Route("/tokeninfo", self.tokeninfo, methods=["GET", "POST"]),
            Route("/oauth2/v3/tokeninfo", self.tokeninfo, methods=["GET", "POST"]),
        ]

    # -- authorization ---------------------------------------------------------------------

    def _validate(self, params: dict[str, str]) -> tuple[OAuthClient, str, list[str]]:
        client = self.state.clients.get(params.get("client_id", ""))
        if client is None:
            raise _Page(401, "invalid_client", "The OAuth client was not found.")
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri or not self.grants.redirect_allowed(client, redirect_uri):
            raise _Page(400, "redirect_uri_mismatch",
                        f"You can't sign in to this app because it doesn't comply with Google's "
                        f"OAuth 2.0 policy. redirect_uri={redirect_uri}")
        scopes = params.get("scope", "").split()
        if not scopes:
            raise _Page(400, "invalid_request", "Missing required parameter: scope")
        bad = unknown_scopes(scopes)
        if bad:
            raise _Page(400, "invalid_scope", f"Some requested scopes were invalid. {{invalid={bad}}}")
        method = params.get("code_challenge_method")
        if method not in (None, "S256", "plain") or (method and not params.get("code_challenge")):
            raise _Page(400, "invalid_request", "Invalid code_challenge_method or missing "
                                                "code_challenge.")
        return client, redirect_uri, scopes

    def _consent(self, params: dict[str, str], client: OAuthClient, redirect_uri: str,
                 scopes: list[str], account: str) -> Response:
        prompt = params.get("prompt", "").split()
        code = self.grants.issue_code(
            account=account, client=client, redirect_uri=redirect_uri, scopes=scopes,
            offline=params.get("access_type") == "offline", force_consent="consent" in prompt,
            include_granted=params.get("include_granted_scopes") == "true",
            challenge=params.get("code_challenge"),
            challenge_method=(params.get("code_challenge_method") or "plain")
            if params.get("code_challenge") else None)
        reply = {"code": code.code, "scope": " ".join(code.scopes), "authuser": "0",
                 "prompt": "consent"}
        if "state" in params:
            reply = {"state": params["state"], **reply}
        return _redirect(redirect_uri, reply)

    def _deny(self, params: dict[str, str], redirect_uri: str, error: str) -> Response:
        reply = {"error": error}
        if "state" in params:
            reply["state"] = params["state"]
        return _redirect(redirect_uri, reply)

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        try:
            client, redirect_uri, scopes = self._validate(params)
        except _Page as page:
            return page.response()
        if params.get("response_type") != "code":
            return self._deny(params, redirect_uri, "unsupported_response_type")
        prompt = params.get("prompt", "").split()
        hint = params.get("login_hint", "").strip()
        if hint and hint not in self.state.accounts and self.settings.auto_create_accounts:
            self.state.add_account(hint, self.settings.default_time_zone)
        if hint in self.state.accounts and "select_account" not in prompt:
            if "none" in prompt and not set(scopes) <= self.grants.granted_scopes(
                    hint, client.client_id):
                return self._deny(params, redirect_uri, "consent_required")
            return self._consent(params, client, redirect_uri, scopes, hint)
        if "none" in prompt:
            return self._deny(params, redirect_uri, "login_required")
        return self._chooser(params, client, hint)

    async def choose(self, request: Request) -> Response:
        params = dict(request.query_params)
        try:
            client, redirect_uri, scopes = self._validate(params)
        except _Page as page:
            return page.response()
        if params.pop("deny", None):
            return self._deny(params, redirect_uri, "access_denied")
        account = params.pop("account", "").strip()
        if not account or "@" not in account:
            return self._chooser(params, client, account)
        self.state.add_account(account, self.settings.default_time_zone)
        return self._consent(params, client, redirect_uri, scopes, account)

    def _chooser(self, params: dict[str, str], client: OAuthClient, hint: str) -> HTMLResponse:
        base = {k: v for k, v in params.items() if k not in ("account", "deny")}
        links = "".join(
            f'<li><a href="{CHOOSE_PATH}?{html.escape(urlencode({**base, "account": email}))}">'
            f"Continue as {html.escape(email)}</a></li>" for email in sorted(self.state.accounts))
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in base.items())
        cancel = html.escape(urlencode({**base, "deny": "1"}))
        return HTMLResponse(
            f"<!doctype html><title>Choose an account</title><h1>Choose an account</h1>"
            f"<p>to continue to {html.escape(client.name)}</p><ul>{links}</ul>"
            f'<form action="{CHOOSE_PATH}" method="get">{hidden}'
            f'<input name="account" type="email" value="{html.escape(hint)}" '
            f'placeholder="Use another account"><button>Allow</button></form>'
            f'<p><a href="{CHOOSE_PATH}?{cancel}">Cancel</a></p>')

    # -- token, revoke, tokeninfo ----------------------------------------------------------

    @staticmethod
    def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:]).decode()
            except ValueError:
                raise OAuthError("invalid_client", "Unauthorized", 401) from None
            client_id, _, secret = decoded.partition(":")
            return client_id, secret
        return form.get("client_id"), form.get("client_secret")

    async def token(self, request: Request) -> Response:
        try:
            form = await _form(request)
            client = self.grants.authenticate_client(*self._client_credentials(request, form))
            grant_type = form.get("grant_type", "")
            if grant_type == "authorization_code":
                if not form.get("code"):
                    raise OAuthError("invalid_request", "Missing required parameter: code")
                issued = self.grants.exchange_code(client, form["code"],
                                                   form.get("redirect_uri"),
                                                   form.get("code_verifier"))
            elif grant_type == "refresh_token":
                if not form.get("refresh_token"):
                    raise OAuthError("invalid_request", "Missing required parameter: "
                                                        "refresh_token")
                issued = self.grants.refresh(client, form["refresh_token"],
                                             form.get("scope", "").split() or None)
            else:
                raise OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        except OAuthError as exc:
            return JSONResponse(exc.body(), exc.status, headers=_NO_STORE)
        return JSONResponse(issued.response(), headers=_NO_STORE)

    async def revoke(self, request: Request) -> Response:
        try:
            form = await _form(request) if request.method == "POST" else {}
            token = request.query_params.get("token") or form.get("token")
            if not token:
                raise OAuthError("invalid_request", "Missing required parameter: token")
            self.grants.revoke_token(token)
        except OAuthError as exc:
            return JSONResponse(exc.body(), exc.status)
        return JSONResponse({})

    async def tokeninfo(self, request: Request) -> Response:
        form = await _form(request) if request.method == "POST" else {}
        value = request.query_params.get("access_token") or form.get("access_token", "")
        token = self.grants.access_token(value)
        if token is None:
            return JSONResponse({"error": "invalid_token", "error_description":
                                 "Invalid Value"}, 400)
        expires_in = int(token.expires_at - self.state.now().timestamp())
        body: dict[str, Any] = {
            "azp": token.client_id, "aud": token.client_id, "sub": token.account,
            "scope": " ".join(sorted(token.scopes)), "exp": str(int(token.expires_at)),
            "expires_in": str(expires_in), "email": token.account, "email_verified": "true",
            "access_type": "offline" if token.refresh_token else "online"}
        return JSONResponse(body)
