"""Web Push against a local push service on loopback that decrypts each payload with the
subscription's own keys (RFC 8291, aes128gcm) and checks the VAPID header (RFC 8292)."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import http_ece
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from syncd.channels.registry import Registry
from syncd.channels.webpush import KEY_NAME, VapidKey, b64url
from syncd.clock import ManualClock
from syncd.daemon import build
from syncd.settings import SettingsError
from syncd.store.tables import SharedKey
from tests.channels.conftest import MakeApi, deliveries
from tests.channels.servers import HttpServer, Request
from tests.conftest import Api, make_settings

SUBJECT = "mailto:ops@example.com"


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One browser's push subscription: its key pair and auth secret, as the browser keeps them."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def make(cls, endpoint: str) -> Browser:
        return cls(endpoint, ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    def subscription(self) -> dict:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}}

    def decrypt(self, req: Request) -> dict:
        assert req.headers["content-encoding"] == "aes128gcm"
        plain = http_ece.decrypt(req.body, private_key=self.private_key,
                                 auth_secret=self.auth, version="aes128gcm")
        return json.loads(plain)


def check_vapid(req: Request, public_key: str, origin: str) -> dict:
    """The Authorization header: `vapid t=<ES256 JWT>, k=<application server key>`."""
    scheme, _, params = req.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    assert fields["k"] == public_key
    header_b64, claims_b64, sig_b64 = fields["t"].split(".")
    assert json.loads(b64d(header_b64)) == {"typ": "JWT", "alg": "ES256"}
    sig = b64d(sig_b64)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(public_key))
    try:
        key.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                        int.from_bytes(sig[32:], "big")),
                   f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:  # pragma: no cover - the assertion message is the point
        pytest.fail("VAPID JWT signature does not verify")
    claims = json.loads(b64d(claims_b64))
    assert claims["aud"] == origin
    assert claims["sub"] == SUBJECT
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    return claims


@pytest.fixture
def push(http_server) -> HttpServer:
    """A push service: 201 for /push/*, 410 for /gone/*, and whatever `status` says per path."""
    status: dict[str, list[int]] = {}

    def respond(req: Request):
        if status.get(req.path):
            return status[req.path].pop(0), {}, b""
        if req.path.startswith("/gone/"):
            return 410, {}, b"subscription expired"
        return 201, {"Location": f"{req.path}/msg"}, b""

    server = http_server(respond)
    server.status = status  # type: ignore[attr-defined]
    return server


def push_api(make_api: MakeApi, **webpush: object) -> Api:
    api = make_api(webpush={"allow_http_endpoints": True, "vapid_subject": SUBJECT, **webpush},
                   http={"public_url": "https://notify.example.com"})
    api.user("ann", name="Ann Smith")
    api.user("bob", name="Bob Petrov", locale="ru", timezone="Europe/Moscow")
    return api


def subscribe(api: Api, user: str, browser: Browser, token: str | None = None) -> dict:
    r = api.req("POST", f"/v1/users/{user}/webpush", token=token, json=browser.subscription())
    assert r.status_code in (200, 201), r.text
    return r.json()


def public_key(api: Api) -> str:
    r = api.client.get("/v1/webpush/public-key")
    assert r.status_code == 200, r.text
    return r.json()["public_key"]


# -- keys -------------------------------------------------------------------------------


def test_vapid_key_generated_once_and_shared_by_every_node(db_url: str, tmp_path: Path,
                                                          clock: ManualClock) -> None:
    """Browsers subscribe to one key: after a restart, and on every node of a cluster (each
    with its own state directory), pushes are signed with that key."""
    keys = []
    for state_dir in ("node-a", "node-b", "node-a"):
        node = build(make_settings(tmp_path / state_dir, db_url), clock)
        keys.append(node.deliverer.senders["browser"].application_server_key)
        node.db.dispose()
    assert len(b64d(keys[0])) == 65 and b64d(keys[0])[0] == 4  # an uncompressed P-256 point
    assert keys == [keys[0]] * 3
    assert not list(tmp_path.rglob("*.pem"))  # the private key is not left lying around


@pytest.mark.parametrize("form", ["pem", "raw"])
def test_vapid_key_from_settings(make_api: MakeApi, form: str) -> None:
    key = VapidKey.generate()
    raw = key.private_key.private_numbers().private_value.to_bytes(32, "big")
    text = key.pem().decode() if form == "pem" else b64url(raw)
    api = push_api(make_api, vapid_private_key=text)
    assert public_key(api) == key.application_server_key
    with api.node.db.read() as s:
        assert s.get(SharedKey, KEY_NAME) is None  # nothing generated beside it


def test_bad_vapid_settings_name_the_key(make_api: MakeApi) -> None:
    with pytest.raises(SettingsError, match="webpush.vapid_private_key"):
        push_api(make_api, vapid_private_key="not a key")
    with pytest.raises(SettingsError, match="webpush.vapid_subject"):
        push_api(make_api, vapid_subject="ops@example.com")


# -- subscriptions API ------------------------------------------------------------------


def test_subscribe_validates_and_unsubscribes(make_api: MakeApi, push: HttpServer) -> None:
    api = push_api(make_api)
    token = api.token("bob")
    browser = Browser.make(f"{push.url}/push/bob-1")
    first = subscribe(api, "bob", browser, token)
    r = api.req("POST", "/v1/users/bob/webpush", token=token, json=browser.subscription())
    assert r.status_code == 200 and r.json()["id"] == first["id"]  # the same endpoint again

    bad = browser.subscription()
    bad["keys"]["p256dh"] = b64url(b"\x04" + b"x" * 10)
    r = api.req("POST", "/v1/users/bob/webpush", token=token, json=bad)
    assert r.status_code == 422 and r.json()["error"]["field"] == "keys.p256dh"
    bad = browser.subscription()
    bad["keys"]["auth"] = "!!"
    r = api.req("POST", "/v1/users/bob/webpush", token=token, json=bad)
    assert r.status_code == 422 and r.json()["error"]["field"] == "keys.auth"
    r = api.req("POST", "/v1/users/bob/webpush", token=token, json={"endpoint": "ftp://x/y",
                                                                   "keys": bad["keys"]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "endpoint"
    r = api.req("POST", "/v1/users/ann/webpush", token=token, json=browser.subscription())
    assert r.status_code == 404  # someone else's account looks absent

    r = api.req("DELETE", "/v1/users/bob/webpush", token=token,
                params={"endpoint": browser.endpoint})
    assert r.status_code == 204
    r = api.req("DELETE", "/v1/users/bob/webpush", token=token,
                params={"endpoint": browser.endpoint})
    assert r.status_code == 404 and r.json()["error"]["field"] == "endpoint"
    assert Registry(api.node.db, api.clock).webpush_subscriptions("bob") == []


def test_plain_http_endpoints_refused_by_default(make_api: MakeApi) -> None:
    api = make_api()
    api.user("bob")
    r = api.req("POST", "/v1/users/bob/webpush",
                json=Browser.make("http://127.0.0.1:9/push/x").subscription())
    assert r.status_code == 422 and r.json()["error"]["field"] == "endpoint"


# -- sending ----------------------------------------------------------------------------


def test_push_reaches_every_browser_encrypted_and_signed(make_api: MakeApi,
                                                         push: HttpServer) -> None:
    api = push_api(make_api)
    laptop, phone = Browser.make(f"{push.url}/push/bob-laptop"), Browser.make(
        f"{push.url}/push/bob-phone")
    subscribe(api, "bob", laptop)
    subscribe(api, "bob", phone)
    api.task("t1", "ann", text="Позвонить клиенту", type="call", responsible_id="bob",
             due_at="2026-03-02T12:00:00+00:00",
             entity={"type": "lead", "id": "42", "url": "https://crm.example.com/leads/42"})
    api.advance(seconds=0)

    [row] = deliveries(api, "browser")
    assert (row["kind"], row["state"]) == ("task_assigned", "sent")
    key = public_key(api)
    for browser in (laptop, phone):
        [req] = push.to(browser.endpoint.removeprefix(push.url))
        assert req.method == "POST"
        check_vapid(req, key, push.url)
        assert int(req.headers["ttl"]) == 43200
        assert req.headers["urgency"] == "normal"
        assert req.headers["topic"] == f"delivery-{row['id']}"
        data = browser.decrypt(req)
        assert data["title"] == "Новая задача"
        assert "Позвонить клиенту" in data["body"] and "Ann Smith" in data["body"]
        assert data["lang"] == "ru"
        assert data["url"] == "https://crm.example.com/leads/42"
        assert data["task_id"] == "t1" and data["kind"] == "task_assigned"
        assert data["tag"] == f"entry-{row['entry_id']}"

    api.advance(hours=2, minutes=55)  # task_due: urgent
    due = push.to("/push/bob-laptop")[-1]
    assert due.headers["urgency"] == "high"
    assert laptop.decrypt(due)["title"] == "Пора выполнить задачу"


def test_no_push_for_a_self_assigned_task_n2(make_api: MakeApi, push: HttpServer) -> None:
    api = push_api(make_api)
    subscribe(api, "ann", Browser.make(f"{push.url}/push/ann"))
    api.task("t1", "ann", text="Note to self", responsible_id="ann",
             due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    assert push.requests == []


def test_gone_subscription_is_removed(make_api: MakeApi, push: HttpServer) -> None:
    api = push_api(make_api)
    alive, gone = Browser.make(f"{push.url}/push/bob"), Browser.make(f"{push.url}/gone/bob")
    subscribe(api, "bob", alive)
    subscribe(api, "bob", gone)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    assert [s.endpoint for s in Registry(api.node.db, api.clock).webpush_subscriptions("bob")] \
        == [alive.endpoint]
    assert deliveries(api, "browser")[0]["state"] == "sent"
    api.task("t2", "ann", text="Call again", responsible_id="bob",
             due_at="2026-03-02T16:00:00+00:00")
    api.advance(seconds=0)
    assert len(push.to("/gone/")) == 1  # never tried again
    assert len(push.to("/push/bob")) == 2


def test_push_service_trouble_retries_only_the_failed_browser(make_api: MakeApi,
                                                              push: HttpServer) -> None:
    api = push_api(make_api)
    ok, busy = Browser.make(f"{push.url}/push/ok"), Browser.make(f"{push.url}/push/busy")
    subscribe(api, "bob", ok)
    subscribe(api, "bob", busy)
    push.status["/push/busy"] = [503, 429]  # type: ignore[attr-defined]
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    [row] = deliveries(api, "browser")
    assert row["state"] == "pending" and "503" in row["reason"]
    for _ in range(4):
        api.advance(seconds=30)
    [row] = deliveries(api, "browser")
    assert (row["state"], row["attempts"]) == ("sent", 3)
    assert len(push.to("/push/ok")) == 1  # reached once, not on every retry
    assert len(push.to("/push/busy")) == 3
    assert "Call" in busy.decrypt(push.to("/push/busy")[-1])["body"]


def test_no_subscriptions_is_not_an_error(make_api: MakeApi, push: HttpServer) -> None:
    api = push_api(make_api)
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    [row] = deliveries(api, "browser")
    assert (row["state"], row["reason"]) == ("skipped", "no browser subscribed to push")
    assert row["job_state"] is None  # nowhere to go: no job was queued for it
    assert push.requests == []


def test_long_task_text_fits_a_push_message(make_api: MakeApi, push: HttpServer) -> None:
    api = push_api(make_api)
    browser = Browser.make(f"{push.url}/push/bob")
    subscribe(api, "bob", browser)
    api.task("t1", "ann", text="щ" * 10_000, responsible_id="bob",
             due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    [req] = push.requests
    assert len(req.body) <= 4096  # what push services accept
    body = browser.decrypt(req)["body"]
    assert len(body) <= 1000
    assert "…\nСрок: " in body and body.endswith("Поставил: Ann Smith")  # the text is cut, not these
