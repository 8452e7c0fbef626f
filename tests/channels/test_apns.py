"""Mobile push through APNs (HTTP/2 provider API, token-based auth) against a local HTTP/2
stand-in that checks each provider JWT with the public half of the test's P-256 key; and one
`mobile` delivery reaching a user's FCM and APNs phones alike."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from syncd.channels.registry import Registry
from syncd.clock import ManualClock
from syncd.settings import SettingsError
from tests.channels.conftest import MakeApi, deliveries
from tests.channels.servers import Apns, Cert, Request, apns_reply, b64url_decode, self_signed
from tests.channels.test_fcm import Fcm, register
from tests.conftest import START, Api

KEY_ID = "ABC123DEFG"
TEAM_ID = "DEF123GHIJ"
TOPIC = "com.example.crm"
LATER = "2026-03-03T15:00:00+00:00"  # a deadline whose task_due stays out of the way


@functools.cache
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def phone(label: str) -> str:
    """A device token shaped like Apple's: 64 hex digits."""
    return hashlib.sha256(label.encode()).hexdigest()


def claims(req: Request) -> dict:
    return json.loads(b64url_decode(Apns.jwt(req).split(".")[1]))


@pytest.fixture
def apns(clock: ManualClock) -> Iterator[Apns]:
    stand_in = Apns(signing_key().public_key(), KEY_ID, TEAM_ID, clock.now)
    yield stand_in
    stand_in.server.stop()
    assert stand_in.server.errors == [], stand_in.server.errors


def apns_settings(apns: Apns, tmp_path: Path, **settings: object) -> dict:
    key_file = tmp_path / f"AuthKey_{KEY_ID}.p8"
    key_file.write_bytes(pem(signing_key()))
    return {"key_file": str(key_file), "key_id": KEY_ID, "team_id": TEAM_ID, "topic": TOPIC,
            "base_url": apns.url, **settings}


def apns_api(make_api: MakeApi, apns: Apns, tmp_path: Path, **sections: object) -> Api:
    api = make_api(apns=apns_settings(apns, tmp_path),
                   http={"public_url": "https://notify.example.com"}, **sections)
    api.user("ann", name="Ann Smith")
    api.user("bob", name="Bob Petrov")
    return api


# -- sending ----------------------------------------------------------------------------


def test_alert_reaches_an_enabled_apns_device(make_api: MakeApi, apns: Apns,
                                              tmp_path: Path) -> None:
    api = apns_api(make_api, apns, tmp_path)
    register(api, "bob", phone("bob"), provider="apns")
    api.task("t1", "ann", text="Call the client", type="call", responsible_id="bob",
             due_at="2026-03-02T12:00:00+00:00",
             entity={"type": "lead", "id": "42", "url": "https://crm.example.com/leads/42"})
    api.advance(seconds=0)

    [row] = deliveries(api, "mobile")
    assert (row["kind"], row["state"]) == ("task_assigned", "sent")
    [req] = apns.delivered()
    assert req.http_version == "2"
    assert (req.method, req.path) == ("POST", f"/3/device/{phone('bob')}")
    headers = req.headers
    assert headers["apns-topic"] == TOPIC
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "5"  # a new task may wait for the phone's convenience
    assert headers["apns-collapse-id"] == f"entry-{row['entry_id']}"
    assert headers["apns-expiration"] == str(int((START + timedelta(hours=12)).timestamp()))
    assert uuid.UUID(headers["apns-id"])
    assert claims(req) == {"iss": TEAM_ID, "iat": int(START.timestamp())}

    body = req.json()
    aps = body.pop("aps")
    assert aps["alert"]["title"] == "New task"
    assert "Call the client" in aps["alert"]["body"] and "Ann Smith" in aps["alert"]["body"]
    assert (aps["sound"], aps["thread-id"]) == ("default", "task-t1")
    assert body == {"delivery_id": str(row["id"]), "entry_id": str(row["entry_id"]),
                    "kind": "task_assigned", "task_id": "t1",
                    "url": "https://crm.example.com/leads/42", "tag": f"entry-{row['entry_id']}"}

    api.advance(hours=2, minutes=55)  # time to do the task: urgent
    due = apns.delivered()[-1]
    assert due.json()["aps"]["alert"]["title"] == "Time to do the task"
    assert due.headers["apns-priority"] == "10"
    assert len(apns.delivered()) == 2


def test_disabled_apns_device_gets_nothing(make_api: MakeApi, apns: Apns, tmp_path: Path) -> None:
    api = apns_api(make_api, apns, tmp_path)
    dev = register(api, "bob", phone("bob"), provider="apns", enabled=False)
    register(api, "bob", "fcm-token-bob")  # FCM is not configured on this node: left alone
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=LATER)
    api.advance(seconds=0)
    assert apns.server.requests == []
    assert deliveries(api, "mobile")[0]["state"] == "skipped"

    api.req("PATCH", f"/v1/users/bob/devices/{dev['id']}", json={"enabled": True})
    api.task("t2", "ann", text="Call again", responsible_id="bob", due_at=LATER)
    api.advance(seconds=0)
    assert [Apns.device(r) for r in apns.delivered()] == [phone("bob")]
    assert deliveries(api, "mobile")[1]["state"] == "sent"


def test_one_delivery_reaches_fcm_and_apns_phones(make_api: MakeApi, apns: Apns, http_server,
                                                 tmp_path: Path) -> None:
    fcm = Fcm(http_server, tmp_path)
    api = apns_api(make_api, apns, tmp_path,
                   fcm={"service_account_file": str(fcm.sa_file), "base_url": fcm.server.url})
    register(api, "bob", "android-phone")
    register(api, "bob", phone("iphone"), provider="apns")
    api.task("t1", "ann", text="Call the client", responsible_id="bob", due_at=LATER)
    api.advance(seconds=0)

    [row] = deliveries(api, "mobile")
    assert (row["state"], row["attempts"]) == ("sent", 1)
    [android] = fcm.ok_sends()
    [iphone] = apns.delivered()
    assert android["token"] == "android-phone"
    assert Apns.device(iphone) == phone("iphone")
    # The same words and the same tag on both phones.
    assert iphone.json()["aps"]["alert"] == android["notification"]
    assert iphone.headers["apns-collapse-id"] == android["data"]["tag"]


@pytest.mark.parametrize(("status", "reason"), [
    (410, "Unregistered"), (400, "BadDeviceToken"), (400, "DeviceTokenNotForTopic")])
def test_dead_token_removes_the_device(make_api: MakeApi, apns: Apns, tmp_path: Path,
                                       status: int, reason: str) -> None:
    api = apns_api(make_api, apns, tmp_path)
    register(api, "bob", phone("old"), provider="apns")
    register(api, "bob", phone("new"), provider="apns")
    apns.scripted[phone("old")] = [apns_reply(status, reason)]
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=LATER)
    api.advance(seconds=0)
    assert [d.token for d in Registry(api.node.db, api.clock).devices("bob")] == [phone("new")]
    assert deliveries(api, "mobile")[0]["state"] == "sent"

    api.task("t2", "ann", text="Call again", responsible_id="bob", due_at=LATER)
    api.advance(seconds=0)
    assert [Apns.device(r) for r in apns.server.requests].count(phone("old")) == 1


def test_expired_provider_token_is_renewed_and_the_send_retried(
        make_api: MakeApi, apns: Apns, tmp_path: Path) -> None:
    api = apns_api(make_api, apns, tmp_path)
    register(api, "bob", phone("bob"), provider="apns")
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=LATER)
    api.advance(seconds=0)
    [first] = apns.delivered()
    apns.expired.add(Apns.jwt(first))  # Apple's clock disagrees with ours

    api.task("t2", "ann", text="Call again", responsible_id="bob", due_at=LATER)
    api.advance(seconds=0)
    assert [d["state"] for d in deliveries(api, "mobile")] == ["sent", "sent"]
    assert [status for _, status in apns.answered] == [200, 403, 200]
    refused, retried = apns.server.requests[1:]
    assert Apns.jwt(refused) == Apns.jwt(first) != Apns.jwt(retried)
    assert refused.headers["apns-id"] == retried.headers["apns-id"]


def test_unavailable_then_back_delivers_once(make_api: MakeApi, apns: Apns, tmp_path: Path) -> None:
    api = apns_api(make_api, apns, tmp_path)
    register(api, "bob", phone("bob"), provider="apns")
    apns.scripted[phone("bob")] = [apns_reply(503, "ServiceUnavailable")]
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=LATER)
    api.advance(seconds=0)
    [row] = deliveries(api, "mobile")
    assert row["state"] == "pending" and "503" in row["reason"]
    assert apns.delivered() == []

    api.advance(seconds=30)
    [row] = deliveries(api, "mobile")
    assert (row["state"], row["attempts"]) == ("sent", 2)
    assert len(apns.delivered()) == 1
    # The retry is the same notification to Apple and to the phone.
    first, again = apns.server.requests
    assert first.headers["apns-id"] == again.headers["apns-id"]
    assert first.json() == again.json()
    api.advance(minutes=10)
    assert len(apns.server.requests) == 2


@pytest.fixture
def apns_tls(clock: ManualClock, tmp_path: Path) -> Iterator[tuple[Apns, Cert]]:
    """The stand-in as Apple runs it: HTTPS, offering only h2 by ALPN."""
    cert = self_signed(tmp_path)
    stand_in = Apns(signing_key().public_key(), KEY_ID, TEAM_ID, clock.now, cert=cert)
    yield stand_in, cert
    stand_in.server.stop()
    assert stand_in.server.errors == [], stand_in.server.errors


def task_for_bobs_iphone(api: Api) -> dict:
    """Ann sets Bob a task; Bob has an iPhone. Returns the mobile delivery once tried."""
    api.user("ann")
    api.user("bob")
    register(api, "bob", phone("bob"), provider="apns")
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at=LATER)
    api.advance(seconds=0)
    [row] = deliveries(api, "mobile")
    return row


def test_over_tls_http2_is_negotiated_by_alpn(apns_tls: tuple[Apns, Cert], make_api: MakeApi,
                                              tmp_path: Path) -> None:
    # (apns_tls first: it outlives the node, whose teardown closes its connection to it)
    apns, cert = apns_tls
    assert apns.url.startswith("https://")
    api = make_api(apns=apns_settings(apns, tmp_path, ca_file=str(cert.cert_file)))
    assert task_for_bobs_iphone(api)["state"] == "sent"
    [req] = apns.delivered()
    assert req.http_version == "2" and claims(req)["iss"] == TEAM_ID


def test_an_untrusted_certificate_is_retried_and_keeps_the_device(
        apns_tls: tuple[Apns, Cert], make_api: MakeApi, tmp_path: Path) -> None:
    apns, _ = apns_tls  # its certificate is nobody's CA: not in the public CAs syncd trusts
    api = make_api(apns=apns_settings(apns, tmp_path))
    row = task_for_bobs_iphone(api)
    assert row["state"] == "pending" and "ConnectError" in row["reason"]
    assert apns.server.requests == []  # nothing was said to a server that proved nothing
    assert [d.token for d in Registry(api.node.db, api.clock).devices("bob")] == [phone("bob")]


def test_provider_token_is_reused_then_renewed_after_50_minutes(
        make_api: MakeApi, apns: Apns, tmp_path: Path) -> None:
    api = apns_api(make_api, apns, tmp_path)
    register(api, "bob", phone("bob"), provider="apns")
    for n, minutes in enumerate([0, 20, 29, 2, 30], start=1):
        api.clock.advance(minutes=minutes)
        api.task(f"t{n}", "ann", text=f"Call {n}", responsible_id="bob", due_at=LATER)
        api.advance(seconds=0)

    sent = apns.delivered()
    assert len(sent) == 5  # every send accepted: no token Apple calls too old
    assert len({Apns.jwt(r) for r in sent[:3]}) == 1  # 0, 20, 49 minutes: one token
    renewed = START + timedelta(minutes=51)
    assert claims(sent[3])["iat"] == int(renewed.timestamp())  # 51 minutes: a fresh one
    assert Apns.jwt(sent[4]) == Apns.jwt(sent[3])  # which then serves the next 50 minutes


def test_signing_key_and_token_never_logged(make_api: MakeApi, apns: Apns, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    api = apns_api(make_api, apns, tmp_path)
    register(api, "bob", phone("bob"), provider="apns")
    with caplog.at_level(logging.DEBUG):
        api.task("t1", "ann", text="Call", responsible_id="bob", due_at=LATER)
        api.advance(seconds=0)
        apns.public_key = ec.generate_private_key(ec.SECP256R1()).public_key()  # key revoked
        api.task("t2", "ann", text="Call again", responsible_id="bob", due_at=LATER)
        api.advance(seconds=0)

    ok, refused = deliveries(api, "mobile")
    assert ok["state"] == "sent"
    assert refused["state"] == "pending" and "403 InvalidProviderToken" in refused["reason"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(r.name == "syncd.channels.apns" and r.reason == "InvalidProviderToken"
               for r in errors)

    # Everything syncd logged, extras included; the stand-in's own HTTP/2 decoding aside.
    ours = " ".join(str(vars(r)) for r in caplog.records
                    if r.thread != apns.server.thread.ident)
    secrets = {Apns.jwt(r) for r in apns.server.requests}
    secrets |= {jwt.split(".")[2] for jwt in secrets}
    secrets |= {line for line in pem(signing_key()).decode().splitlines() if "-----" not in line}
    secrets.add(f"{signing_key().private_numbers().private_value:x}")
    assert [s for s in secrets if s in ours] == []


# -- start-up ---------------------------------------------------------------------------


def test_bad_key_file_stops_start_up_naming_the_key(make_api: MakeApi, apns: Apns,
                                                    tmp_path: Path) -> None:
    good = apns_settings(apns, tmp_path)
    with pytest.raises(SettingsError, match="apns.key_file"):
        make_api(apns={**good, "key_file": str(tmp_path / "missing.p8")})

    (tmp_path / "garbage.p8").write_text("not a key")
    with pytest.raises(SettingsError, match="apns.key_file"):
        make_api(apns={**good, "key_file": str(tmp_path / "garbage.p8")})
    for name, key in [("rsa.p8", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
                      ("p384.p8", ec.generate_private_key(ec.SECP384R1()))]:
        (tmp_path / name).write_bytes(pem(key))
        with pytest.raises(SettingsError, match=r"apns.key_file: .* not a P-256 key") as err:
            make_api(apns={**good, "key_file": str(tmp_path / name)})
        assert pem(key).decode().splitlines()[1] not in str(err.value)  # no key material

    for key in ("key_id", "team_id", "topic"):
        with pytest.raises(SettingsError, match=f"apns.{key}"):
            make_api(apns={**good, key: ""})
