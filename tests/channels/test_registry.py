"""Devices and subscriptions on both backends (SQLite and PostgreSQL): the unique keys, moves
between users, and input PostgreSQL would refuse (NUL) turned away at the door."""

from __future__ import annotations

import pytest

from syncd.channels.registry import Registry
from syncd.errors import InvalidInput, NotFound
from tests.channels.conftest import MakeApi

KEYS = {"p256dh": "BPcMbnWQL5GOYX_5LKZXT6sLmHiMsJSiEvIFvfcDvX7IZ9qqtq68onpTPEYmyxSQNiH7UD_"
                  "98AUcQ12kBoFSb0w", "auth": "4vQK-SvRAN5eo-8ASlrwAw"}


def test_registry_on_both_backends(make_api: MakeApi, db_url: str) -> None:
    api = make_api(database={"url": db_url}, webpush={"allow_http_endpoints": True})
    api.user("ann")
    api.user("bob")
    reg = Registry(api.node.db, api.clock)

    sub, created = reg.subscribe_webpush("bob", "https://push.example.com/s/1", KEYS["p256dh"],
                                         KEYS["auth"])
    assert created
    again, created = reg.subscribe_webpush("ann", "https://push.example.com/s/1",
                                           KEYS["p256dh"], KEYS["auth"])
    assert not created and again.id == sub.id  # one browser profile, now ann's
    assert reg.webpush_subscriptions("bob") == []
    assert [s.id for s in reg.webpush_subscriptions("ann")] == [sub.id]
    with pytest.raises(NotFound):
        reg.unsubscribe_webpush("bob", "https://push.example.com/s/1")
    with pytest.raises(InvalidInput):
        reg.subscribe_webpush("ann", "http://push.example.com/s/2", KEYS["p256dh"], KEYS["auth"])
    assert reg.drop_webpush(sub.id, sub.endpoint) is True
    assert reg.drop_webpush(sub.id, sub.endpoint) is False

    dev, created = reg.register_device("bob", "fcm", "tok-1")
    assert created and dev.enabled
    same, created = reg.register_device("bob", "fcm", "tok-1", enabled=False)
    assert not created and same.id == dev.id and not same.enabled
    other, created = reg.register_device("bob", "apns", "tok-1")  # unique per provider
    assert created and other.id != dev.id
    assert reg.enabled_devices("bob", "fcm") == []
    reg.set_device_enabled("bob", dev.id, True)
    assert [d.id for d in reg.enabled_devices("bob", "fcm")] == [dev.id]
    with pytest.raises(NotFound):
        reg.set_device_enabled("ann", dev.id, False)
    with pytest.raises(InvalidInput):
        reg.register_device("bob", "gcm", "tok-2")
    assert reg.drop_device(dev.id, "another-token") is False  # re-registered meanwhile: kept
    assert reg.drop_device(dev.id, "tok-1") is True
    reg.delete_device("bob", other.id)
    assert reg.devices("bob") == []


def test_control_characters_are_refused_on_both_backends(make_api: MakeApi,
                                                         db_url: str) -> None:
    api = make_api(database={"url": db_url})
    api.user("bob")
    for endpoint in ("https://push.example.com/a\x00b", "https://push.example.com/a\x07",
                     "https://push.example.com/a b"):
        r = api.req("POST", "/v1/users/bob/webpush", json={"endpoint": endpoint, "keys": KEYS})
        assert r.status_code == 422 and r.json()["error"]["field"] == "endpoint", r.text
        r = api.req("DELETE", "/v1/users/bob/webpush", params={"endpoint": endpoint})
        assert r.status_code == 422 and r.json()["error"]["field"] == "endpoint", r.text
    r = api.req("POST", "/v1/users/bob/devices", json={"provider": "fcm", "token": "a\x00b"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "token"
    r = api.req("POST", "/v1/users/bob/webpush",
                json={"endpoint": "https://push.example.com/ok", "keys": KEYS})
    assert r.status_code == 201, r.text
