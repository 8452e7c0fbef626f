"""Logs are JSON lines on stdout and carry no secret: not the API key, not a user's token, not
the SMTP password, whatever the requests carry and whatever fails along the way."""

from __future__ import annotations

import io
import json
import logging
import socket
from pathlib import Path

from syncd import logs
from syncd.server import mask_secrets
from syncd.settings import LogSettings, Settings
from tests.ops.conftest import API_KEY, EMAIL_PASSWORD, Daemon, base_settings


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_syncd_run_logs_no_secret(tmp_path: Path, daemons: list[Daemon]) -> None:
    settings = base_settings(tmp_path)
    settings["log"]["level"] = "DEBUG"
    # A mail server that refuses connections: email deliveries fail and get logged.
    settings["email"].update(smtp_host="127.0.0.1", smtp_port=closed_port(), starttls=True)
    d = Daemon.spawn(tmp_path, settings)
    daemons.append(d)
    d.wait_serving()
    with d.client() as c:
        assert c.put("/v1/users/ann", json={"name": "Ann", "email": "ann@example.com"}
                     ).status_code == 200
        assert c.put("/v1/users/bob", json={"name": "Bob", "email": "bob@example.com"}
                     ).status_code == 200
        r = c.post("/v1/users/bob/tokens")
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        r = c.put("/v1/tasks/t1", json={"actor_id": "ann", "responsible_id": "bob",
                                        "text": "Call the client",
                                        "due_at": "2030-01-01T10:00:00+00:00"})
        assert r.status_code == 200, r.text
        user = {"Authorization": f"Bearer {token}"}
        assert c.get("/v1/users/bob/notifications", headers=user).status_code == 200
        assert c.get("/v1/users/ann/notifications", headers=user).status_code in (403, 404)
        assert c.get(f"/v1/users/bob/notifications?access_token={token}",
                     headers={"Authorization": ""}).status_code == 200
        # Almost-right credentials: the real ones are substrings of these.
        assert c.get("/v1/users/bob", headers={"Authorization": f"Bearer {API_KEY}x"}
                     ).status_code == 401
        assert c.get("/v1/users/bob", headers={"Authorization": f"Bearer x{token}"}
                     ).status_code == 401
        assert c.post("/v1/users/bob/notifications/read-all", headers=user,
                      content=b"{not json").status_code in (200, 400)
        assert c.put("/v1/tasks/t2", content=b'{"actor_id": ', headers={
            "Content-Type": "application/json"}).status_code == 400
        assert c.get("/healthz").status_code == 200
        assert c.get("/metrics").status_code == 200
    rc, _ = d.terminate()
    assert rc == 0, d.output

    out = d.output
    for secret in (API_KEY, token, EMAIL_PASSWORD):
        assert secret not in out, f"{secret[:6]}… leaked into the log"
    assert d.lines and all(json.loads(line) for line in d.lines)  # one JSON object a line
    assert not [line for line in d.err if line.strip()], d.err  # everything goes to stdout
    msgs = {json.loads(line)["msg"] for line in d.lines}
    assert {"serving", "stopped"} <= msgs


def test_known_secret_values_are_masked_wherever_they_appear(tmp_path: Path) -> None:
    s = Settings(**{**base_settings(tmp_path, "postgresql://syncd:pg-Secret-77@db/syncd"),
                    "webpush": {"vapid_private_key": 'vapid"key\\with-escapes'}})
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.setup(LogSettings(level="INFO"))
        buf = io.StringIO()
        root.handlers[0].stream = buf
        mask_secrets(s)
        log = logging.getLogger("test")
        log.info("plain %s and %s", API_KEY, EMAIL_PASSWORD)
        log.info("extra", extra={"cfg": {"key": 'vapid"key\\with-escapes', "db": "pg-Secret-77"}})
        try:
            raise RuntimeError(f"failed with {API_KEY}")
        except RuntimeError:
            log.exception("boom")
        text = buf.getvalue()
        for secret in (API_KEY, EMAIL_PASSWORD, "pg-Secret-77", "with-escapes"):
            assert secret not in text, (secret, text)
        assert text.count("***") >= 5
        assert all(json.loads(line) for line in text.splitlines())
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
