"""Which senders a node runs: each channel only when configured."""

from __future__ import annotations

import json
from pathlib import Path

from syncd.channels.email import EmailSender
from syncd.channels.fcm import FcmClient
from syncd.channels.mobile import MobileSender
from syncd.channels.webpush import WebPushSender
from tests.channels.conftest import MakeApi


def test_only_configured_channels_get_a_sender(make_api: MakeApi, tmp_path: Path) -> None:
    api = make_api()
    assert set(api.node.deliverer.senders) == {"browser"}  # Web Push needs no setting
    assert isinstance(api.node.deliverer.senders["browser"], WebPushSender)
    api.user("ann")
    api.user("bob")
    api.task("t1", "ann", text="Call", responsible_id="bob", due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    states = {ch: state for ch, _, state, _ in api.deliveries("bob")}
    assert states["email"] == "skipped" and states["mobile"] == "skipped"

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    sa = tmp_path / "sa.json"
    sa.write_text(json.dumps({
        "type": "service_account", "project_id": "p", "client_email": "x@p.iam",
        "token_uri": "http://127.0.0.1:9/token",
        "private_key": key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode()}))
    full = make_api(email={"smtp_host": "127.0.0.1"}, fcm={"service_account_file": str(sa)})
    senders = full.node.deliverer.senders
    assert isinstance(senders["email"], EmailSender)
    assert isinstance(senders["mobile"], MobileSender)
    [fcm] = senders["mobile"].clients.values()
    assert isinstance(fcm, FcmClient)
    assert fcm.url == "https://fcm.googleapis.com/v1/projects/p/messages:send"
