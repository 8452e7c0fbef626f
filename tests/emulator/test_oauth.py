"""OAuth 2.0: the web flow through google-auth-oauthlib (PKCE), token refresh through
google-auth, revocation, and the token endpoint's error shapes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError

from .support import APP_CREATED, connect, new_email, service_for

REDIRECT = "http://127.0.0.1:9/oauth/google/callback"


@pytest.fixture
def web_client(emulator):
    return emulator.control.register_client(redirect_uris=[REDIRECT], kind="web")


@pytest.fixture(autouse=True)
def _plain_http_on_loopback(monkeypatch):
    # oauthlib refuses http:// token endpoints unless told the transport is trusted.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def start_flow(emulator, client, **params):
    flow = Flow.from_client_config(emulator.client_config(client["client_id"]),
                                   scopes=[APP_CREATED], redirect_uri=REDIRECT)
    url, state = flow.authorization_url(**params)
    return flow, url, state


def follow(url: str) -> dict[str, str]:
    """Load the authorization URL like a browser would, stopping at the app's redirect."""
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()} | {"_url": location}


def test_web_flow_with_pkce_yields_working_credentials(emulator, web_client):
    email = new_email()
    flow, url, state = start_flow(emulator, web_client, access_type="offline",
                                  prompt="consent", login_hint=email)
    assert "code_challenge_method=S256" in url
    reply = follow(url)
    assert reply["state"] == state and reply["scope"] == APP_CREATED
    flow.fetch_token(authorization_response=reply["_url"])
    creds = flow.credentials
    assert creds.refresh_token and creds.token
    created = service_for(emulator, creds).calendars().insert(
        body={"summary": "CRM tasks"}).execute()
    assert created["id"].endswith("@group.calendar.google.com")
    assert emulator.control.calendars(email)[1]["createdBy"] == web_client["client_id"]


def test_wrong_code_verifier_is_an_invalid_grant(emulator, web_client):
    flow, url, _ = start_flow(emulator, web_client, access_type="offline",
                              login_hint=new_email())
    reply = follow(url)
    flow.code_verifier = "x" * 64
    with pytest.raises(InvalidGrantError):
        flow.fetch_token(code=reply["code"])


def test_code_is_single_use(emulator, web_client):
    flow, url, _ = start_flow(emulator, web_client, access_type="offline",
                              login_hint=new_email())
    reply = follow(url)
    flow.fetch_token(code=reply["code"])
    with pytest.raises(InvalidGrantError):
        flow.fetch_token(code=reply["code"])


def test_account_chooser_and_denial(emulator, web_client):
    known = connect(emulator).email
    _, url, state = start_flow(emulator, web_client, access_type="offline")
    page = httpx.get(url)
    assert page.status_code == 200 and f"Continue as {known}" in page.text
    link = next(part.split('"')[0] for part in page.text.split('href="')[1:]
                if "account=" in part and known.replace("@", "%40") in part.split('"')[0])
    reply = follow(emulator.base_url + link.replace("&amp;", "&"))
    assert reply["state"] == state and "code" in reply
    cancel = page.text.split('href="')[-1].split('"')[0].replace("&amp;", "&")
    denied = httpx.get(emulator.base_url + cancel, follow_redirects=False)
    assert parse_qs(urlsplit(denied.headers["location"]).query)["error"] == ["access_denied"]


def test_refresh_token_only_on_first_consent_unless_prompted(emulator, web_client):
    email = new_email()

    def tokens(**params):
        flow, url, _ = start_flow(emulator, web_client, login_hint=email, **params)
        flow.fetch_token(code=follow(url)["code"])
        return flow.credentials

    assert tokens(access_type="offline").refresh_token
    assert tokens(access_type="offline").refresh_token is None
    assert tokens(access_type="offline", prompt="consent").refresh_token
    assert tokens().refresh_token is None  # online access never gets one


def test_authorization_errors_are_shown_not_redirected(emulator, web_client):
    _, url, _ = start_flow(emulator, web_client)
    bad_redirect = url.replace("oauth%2Fgoogle%2Fcallback", "elsewhere")
    page = httpx.get(bad_redirect)
    assert page.status_code == 400 and "redirect_uri_mismatch" in page.text
    unknown = url.replace(web_client["client_id"], "nobody.apps.googleusercontent.com")
    assert httpx.get(unknown).status_code == 401


def test_expired_access_token_is_refreshed_automatically(emulator):
    account = connect(emulator)
    calendars = account.service.calendars()
    calendars.insert(body={"summary": "first"}).execute()
    first_token = account.creds.token
    emulator.advance_clock(3600)  # the emulator expires the token; the client does not know
    calendars.insert(body={"summary": "second"}).execute()
    assert account.creds.token != first_token


def test_short_lived_tokens_refresh_before_each_call(emulator):
    emulator.control.config(access_token_ttl=30)
    account = connect(emulator)
    seen = set()
    for _ in range(3):
        account.service.colors().get().execute()
        seen.add(account.creds.token)
    # google-auth treats a token within 3m45s of expiry as expired and refreshes first.
    assert len(seen) == 3


def test_revoked_grant_fails_refresh_with_invalid_grant(emulator):
    account = connect(emulator)
    account.service.colors().get().execute()
    response = httpx.post(emulator.revoke_uri, data={"token": account.creds.token})
    assert response.status_code == 200
    with pytest.raises(RefreshError) as excinfo:
        account.service.colors().get().execute()
    assert "invalid_grant" in str(excinfo.value)
    again = httpx.post(emulator.revoke_uri, data={"token": account.creds.refresh_token})
    assert again.status_code == 400 and again.json()["error"] == "invalid_token"


def test_admin_revocation_of_a_grant(emulator):
    account = connect(emulator)
    account.service.colors().get().execute()
    assert httpx.post(f"{emulator.base_url}/emulator/accounts/{account.email}/revoke").json()[
        "revoked"] >= 2
    with pytest.raises(RefreshError, match="invalid_grant"):
        account.service.colors().get().execute()


def test_token_endpoint_error_shapes(emulator):
    account = connect(emulator)
    form = {"grant_type": "refresh_token", "client_id": account.tokens["client_id"],
            "client_secret": account.tokens["client_secret"], "refresh_token": "1//0unknown"}
    response = httpx.post(emulator.token_uri, data=form)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant",
                               "error_description": "Token has been expired or revoked."}
    wrong_secret = httpx.post(emulator.token_uri, data={**form, "client_secret": "nope"})
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    bad_grant = httpx.post(emulator.token_uri, data={**form, "grant_type": "password"})
    assert bad_grant.json()["error"] == "unsupported_grant_type"
    narrowed = httpx.post(emulator.token_uri, data={
        **form, "refresh_token": account.tokens["refresh_token"],
        "scope": "https://www.googleapis.com/auth/calendar"})
    assert narrowed.status_code == 400 and narrowed.json()["error"] == "invalid_scope"


def test_tokeninfo_reports_scopes(emulator):
    account = connect(emulator)
    info = httpx.get(f"{emulator.base_url}/tokeninfo",
                     params={"access_token": account.tokens["access_token"]}).json()
    assert info["scope"] == APP_CREATED and info["email"] == account.email


def test_credentials_without_refresh_token_cannot_recover(emulator):
    account = connect(emulator)
    creds = Credentials(account.tokens["access_token"])
    service = service_for(emulator, creds)
    service.colors().get().execute()
    emulator.advance_clock(3600)
    with pytest.raises(RefreshError):
        service.colors().get().execute()
