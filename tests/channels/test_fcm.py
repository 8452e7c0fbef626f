"""Mobile push through FCM HTTP v1 against a local stand-in for FCM and its OAuth token endpoint;
and the devices API (register, re-register, enable/disable, remove)."""

from __future__ import annotations

import base64
import functools
import json
import logging
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from syncd.channels.fcm import SCOPE
from syncd.channels.registry import Registry
from syncd.settings import SettingsError
from tests.channels.conftest import MakeApi, deliveries
from tests.channels.servers import HttpServer, Request, json_reply
from tests.conftest import Api

PROJECT = "demo-proj"
SA_EMAIL = "syncd@demo-proj.iam.gserviceaccount.com"


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unregistered() -> tuple:
    return json_reply(404, {"error": {
        "code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
        "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                     "errorCode": "UNREGISTERED"}]}})


@functools.cache
def service_account_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Fcm:
    """FCM and Google's token endpoint on one loopback server."""

    def __init__(self, http_server, tmp_path: Path) -> None:
        self.key = service_account_key()
        self.tokens_issued: list[str] = []
        self.scripted: dict[str, list[tuple]] = {}  # device token → replies, one per request
        self.server: HttpServer = http_server(self.respond)
        self.sa_file = tmp_path / "fcm-service-account.json"
        pem = self.key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        self.sa_file.write_text(json.dumps({
            "type": "service_account", "project_id": PROJECT, "private_key_id": "k1",
            "private_key": pem, "client_email": SA_EMAIL, "client_id": "1",
            "token_uri": f"{self.server.url}/token"}))

    def respond(self, req: Request):
        if req.path == "/token":
            return self.issue_token(req)
        if req.path == f"/v1/projects/{PROJECT}/messages:send":
            auth = req.headers.get("authorization", "")
            if auth.removeprefix("Bearer ") not in self.tokens_issued[-1:]:
                return json_reply(401, {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                                  "message": "bad token"}})
            token = req.json()["message"]["token"]
            if self.scripted.get(token):
                return self.scripted[token].pop(0)
            return json_reply(200, {"name": f"projects/{PROJECT}/messages/0:{len(self.sent)}"})
        return json_reply(404, {"error": {"code": 404, "message": "no such path"}})

    def issue_token(self, req: Request):
        form = parse_qs(req.body.decode())
        assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        header, claims, sig = form["assertion"][0].split(".")
        self.key.public_key().verify(b64d(sig), f"{header}.{claims}".encode(),
                                     padding.PKCS1v15(), hashes.SHA256())
        claims = json.loads(b64d(claims))
        assert claims["iss"] == SA_EMAIL
        # google-auth always addresses the assertion to Google's token URL; only where it is
        # posted follows the service account's token_uri.
        assert claims["aud"] == "https://oauth2.googleapis.com/token"
        assert SCOPE in claims["scope"].split()
        token = f"ya29.local-{len(self.tokens_issued) + 1}"
        self.tokens_issued.append(token)
        return json_reply(200, {"access_token": token, "expires_in": 3600,
                                "token_type": "Bearer"})

    @property
    def sent(self) -> list[Request]:
        return [r for r in self.server.requests if r.path.endswith("messages:send")]

    def ok_sends(self) -> list[dict]:
        return [r.json()["message"] for r in self.sent
                if r.headers["authorization"] == f"Bearer {self.tokens_issued[-1]}"]


@pytest.fixture
def fcm(http_server, tmp_path: Path) -> Fcm:
    return Fcm(http_server, tmp_path)


def fcm_api(make_api: MakeApi, fcm: Fcm, **settings: object) -> Api:
    api = make_api(fcm={"service_account_file": str(fcm.sa_file), "base_url": fcm.server.url,
                        **settings}, http={"public_url": "https://notify.example.com"})
    api.user("ann", name="Ann Smith")
    api.user("bob", name="Bob Petrov")
    return api


def register(api: Api, user: str, token: str, enabled: bool = True, provider: str = "fcm",
             auth: str | None = None) -> dict:
    r = api.req("POST", f"/v1/users/{user}/devices", token=auth,
                json={"provider": provider, "token": token, "enabled": enabled})
    assert r.status_code in (200, 201), r.text
    return r.json()


# -- devices API ------------------------------------------------------------------------


def test_devices_api(make_api: MakeApi) -> None:
    api = make_api()
    api.user("ann")
    api.user("bob")
    token = api.token("bob")
    r = api.req("POST", "/v1/users/bob/devices", token=token,
                json={"provider": "fcm", "token": "tok-A"})
    assert r.status_code == 201
    dev = r.json()
    assert {k: dev[k] for k in ("provider", "token", "enabled")} == \
        {"provider": "fcm", "token": "tok-A", "enabled": True}

    again = register(api, "bob", "tok-A", enabled=False, auth=token)  # the app re-registers
    assert again["id"] == dev["id"] and again["enabled"] is False
    r = api.req("PATCH", f"/v1/users/bob/devices/{dev['id']}", token=token,
                json={"enabled": True})
    assert r.status_code == 200 and r.json()["enabled"] is True
    register(api, "bob", "apns-tok", provider="apns", auth=token)
    r = api.req("GET", "/v1/users/bob/devices", token=token)
    assert [(d["provider"], d["token"]) for d in r.json()["items"]] == \
        [("fcm", "tok-A"), ("apns", "apns-tok")]

    # someone else's device looks absent
    ann = api.token("ann")
    assert api.req("PATCH", f"/v1/users/ann/devices/{dev['id']}", token=ann,
                   json={"enabled": False}).status_code == 404
    assert api.req("GET", "/v1/users/bob/devices", token=ann).status_code == 404
    assert api.req("DELETE", f"/v1/users/bob/devices/{dev['id']}", token=ann).status_code == 404

    # a phone that changes hands moves to its new user
    moved = register(api, "ann", "tok-A", auth=ann)
    assert moved["id"] == dev["id"]
    assert [d["token"] for d in api.req("GET", "/v1/users/bob/devices").json()["items"]] == \
        ["apns-tok"]

    r = api.req("DELETE", f"/v1/users/ann/devices/{dev['id']}", token=ann)
    assert r.status_code == 204
    r = api.req("DELETE", f"/v1/users/ann/devices/{dev['id']}", token=ann)
    assert r.status_code == 404 and r.json()["error"]["field"] == "did"


@pytest.mark.parametrize(("body", "field"), [
    ({"provider": "gcm", "token": "x"}, "provider"),
    ({"provider": "fcm"}, "token"),
    ({"provider": "fcm", "token": ""}, "token"),
    ({"provider": "fcm", "token": "has space"}, "token"),
    ({"provider": "fcm", "token": "x", "enabled": "maybe"}, "enabled"),
    ({"provider": "fcm", "token": "x", "colour": "red"}, "colour"),
])
def test_device_validation_names_the_field(make_api: MakeApi, body: dict, field: str) -> None:
    api = make_api()
    api.user("bob")
    r = api.req("POST", "/v1/users/bob/devices", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert api.req("GET", "/v1/users/bob/devices").json()["items"] == []


def test_patch_needs_enabled(make_api: MakeApi) -> None:
    api = make_api()
    api.user("bob")
    dev = register(api, "bob", "tok")
    r = api.req("PATCH", f"/v1/users/bob/devices/{dev['id']}", json={})
    assert r.status_code == 422 and r.json()["error"]["field"] == "enabled"
    r = api.req("PATCH", "/v1/users/bob/devices/0", json={"enabled": True})
    assert r.status_code == 422 and r.json()["error"]["field"] == "did"
    r = api.req("POST", "/v1/users/nobody/devices", json={"provider": "fcm", "token": "t"})
    assert r.status_code == 404


# -- sending ----------------------------------------------------------------------------


def test_push_to_enabled_devices_only(make_api: MakeApi, fcm: Fcm, caplog) -> None:
    api = fcm_api(make_api, fcm)
    register(api, "bob", "phone-on")
    register(api, "bob", "tablet-off", enabled=False)  # the app's "Enable notifications" off
    register(api, "bob", "apns-token", provider="apns")
    with caplog.at_level(logging.DEBUG):
        api.task("t1", "ann", text="Call the client", type="call", responsible_id="bob",
                 due_at="2026-03-02T12:00:00+00:00",
                 entity={"type": "lead", "id": "42", "url": "https://crm.example.com/leads/42"})
        api.advance(seconds=0)

    [row] = deliveries(api, "mobile")
    assert (row["kind"], row["state"]) == ("task_assigned", "sent")
    [req] = fcm.sent
    assert req.method == "POST"
    assert req.headers["authorization"] == "Bearer ya29.local-1"
    assert req.headers["content-type"].startswith("application/json")
    msg = req.json()["message"]
    assert msg["token"] == "phone-on"
    assert msg["notification"]["title"] == "New task"
    assert "Call the client" in msg["notification"]["body"]
    assert "Ann Smith" in msg["notification"]["body"]
    data = msg["data"]
    assert all(isinstance(v, str) for v in data.values())  # FCM data is string → string
    assert data["task_id"] == "t1" and data["kind"] == "task_assigned"
    assert data["url"] == "https://crm.example.com/leads/42"
    assert data["delivery_id"] == str(row["id"])
    assert msg["android"]["notification"]["tag"] == data["tag"]
    assert msg["apns"]["headers"]["apns-collapse-id"] == data["tag"]
    assert "ya29.local-1" not in caplog.text  # the access token is never logged

    # the next notifications reuse the access token; task_due is urgent
    api.advance(hours=2, minutes=55)
    assert len(fcm.tokens_issued) == 1
    due = fcm.sent[-1].json()["message"]
    assert due["notification"]["title"] == "Time to do the task"
    assert due["android"]["priority"] == "high"
    assert {r.json()["message"]["token"] for r in fcm.sent} == {"phone-on"}


def test_disabled_device_gets_nothing(make_api: MakeApi, fcm: Fcm) -> None:
    api = fcm_api(make_api, fcm)
    dev = register(api, "bob", "phone")
    api.req("PATCH", f"/v1/users/bob/devices/{dev['id']}", json={"enabled": False})
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    assert fcm.sent == []
    api.req("PATCH", f"/v1/users/bob/devices/{dev['id']}", json={"enabled": True})
    api.task("t2", "ann", text="Call again", responsible_id="bob",
             due_at="2026-03-02T16:00:00+00:00")
    api.advance(seconds=0)
    assert [r.json()["message"]["token"] for r in fcm.sent] == ["phone"]


def test_unregistered_token_removes_the_device(make_api: MakeApi, fcm: Fcm) -> None:
    api = fcm_api(make_api, fcm)
    register(api, "bob", "old-phone")
    register(api, "bob", "new-phone")
    fcm.scripted["old-phone"] = [unregistered()]
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    assert [d.token for d in Registry(api.node.db, api.clock).devices("bob")] == ["new-phone"]
    assert deliveries(api, "mobile")[0]["state"] == "sent"
    api.task("t2", "ann", text="Call again", responsible_id="bob",
             due_at="2026-03-02T16:00:00+00:00")
    api.advance(seconds=0)
    assert [r.json()["message"]["token"] for r in fcm.sent].count("old-phone") == 1


def test_fcm_unavailable_then_back_retries_without_repeats(make_api: MakeApi, fcm: Fcm) -> None:
    api = fcm_api(make_api, fcm)
    register(api, "bob", "phone-a")
    register(api, "bob", "phone-b")
    fcm.scripted["phone-b"] = [json_reply(503, {"error": {"code": 503, "status": "UNAVAILABLE",
                                                          "message": "try later"}})]
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    [row] = deliveries(api, "mobile")
    assert row["state"] == "pending" and "503" in row["reason"]
    api.advance(seconds=30)
    [row] = deliveries(api, "mobile")
    assert (row["state"], row["attempts"]) == ("sent", 2)
    tokens = [r.json()["message"]["token"] for r in fcm.sent]
    assert tokens.count("phone-a") == 1 and tokens.count("phone-b") == 2


def test_expired_access_token_is_refreshed_once(make_api: MakeApi, fcm: Fcm) -> None:
    api = fcm_api(make_api, fcm)
    register(api, "bob", "phone")
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    fcm.tokens_issued.append("ya29.revoked-server-side")  # the server now wants a newer token
    api.task("t2", "ann", text="Call again", responsible_id="bob",
             due_at="2026-03-02T16:00:00+00:00")
    api.advance(seconds=0)
    assert [d["state"] for d in deliveries(api, "mobile")] == ["sent", "sent"]
    assert fcm.tokens_issued[-1] == "ya29.local-3"
    assert len(fcm.ok_sends()) == 1  # the retry with the fresh token


def test_bad_request_fails_for_good(make_api: MakeApi, fcm: Fcm) -> None:
    api = fcm_api(make_api, fcm)
    register(api, "bob", "phone")
    fcm.scripted["phone"] = [json_reply(400, {"error": {
        "code": 400, "status": "INVALID_ARGUMENT", "message": "Invalid JSON payload"}})]
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    api.advance(minutes=5)
    [row] = deliveries(api, "mobile")
    assert (row["state"], row["attempts"], row["job_state"]) == ("failed", 1, "failed")
    assert len(Registry(api.node.db, api.clock).devices("bob")) == 1  # the token is not blamed


def test_no_push_for_a_self_assigned_task_n2(make_api: MakeApi, fcm: Fcm) -> None:
    api = fcm_api(make_api, fcm)
    register(api, "ann", "phone")
    api.task("t1", "ann", text="Note to self", responsible_id="ann",
             due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    assert fcm.sent == []


def test_bad_service_account_names_the_key(make_api: MakeApi, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="fcm.service_account_file"):
        make_api(fcm={"service_account_file": str(tmp_path / "missing.json")})
    (tmp_path / "partial.json").write_text(json.dumps({"client_email": SA_EMAIL}))
    with pytest.raises(SettingsError, match="fcm.service_account_file"):
        make_api(fcm={"service_account_file": str(tmp_path / "partial.json")})
