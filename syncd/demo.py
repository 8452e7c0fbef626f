"""`syncd demo`: the daemon on the embedded defaults, the Calendar emulator beside it, sample
users and tasks (some due within minutes, one whole-day), and a CRM that keeps setting tasks,
so notifications arrive live. Everything lives under <state_dir>/demo and starts afresh."""

from __future__ import annotations

import json
import random
import shutil
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from syncd.emulator.server import EmulatorServer
from syncd.settings import Settings

PEOPLE = [("ann", "Ann Manager", "en"), ("bob", "Bob Seller", "en"), ("ivan", "Иван Петров", "ru")]
CHORES = [("call", "Call the client about the renewal"), ("meeting", "Demo for Acme Corp"),
          ("follow_up", "Send the proposal to Globex"), ("call", "Check in with Initech"),
          ("follow_up", "Chase the unpaid invoice")]


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def demo_settings(base: Settings, emu: EmulatorServer, port: int) -> Settings:
    root = base.state_dir / "demo"
    client_file = root / "google-client.json"
    client_file.write_text(json.dumps(emu.client_config()))
    public = f"http://127.0.0.1:{port}"
    return base.model_copy(update={
        "state_dir": root,
        "database": base.database.model_copy(update={"url": ""}),
        "http": base.http.model_copy(update={"host": "127.0.0.1", "port": port,
                                             "public_url": public}),
        "google": base.google.model_copy(update={
            "client_file": str(client_file), "token_key_file": str(root / "token.key"),
            "api_endpoint": emu.base_url, "auth_uri": emu.auth_uri,
            "token_uri": emu.token_uri, "revoke_uri": emu.revoke_uri, "poll_seconds": 10}),
        "email": base.email.model_copy(update={"smtp_host": ""}),
    })


def seed(service, now: datetime, tz: str) -> None:
    for uid, name, locale in PEOPLE:
        service.put_user(uid, {"name": name, "email": f"{uid}@example.com", "timezone": tz,
                               "locale": locale})
    today = now.astimezone(ZoneInfo(tz)).date()
    tasks = [
        ("demo-1", "call", "Call Acme about the contract", "bob", {"due_at": now + timedelta(minutes=6)}),
        ("demo-2", "meeting", "Prepare the quarterly review", "bob", {"due_at": now + timedelta(minutes=2)}),
        ("demo-3", "follow_up", "Send the signed offer", "bob", {"due_date": today}),
        ("demo-4", "call", "Позвонить в ООО «Ромашка»", "ivan", {"due_at": now + timedelta(minutes=7)}),
        ("demo-5", "follow_up", "Overdue: confirm the delivery", "bob", {"due_at": now - timedelta(hours=2)}),
    ]
    for task_id, kind, text, responsible, due in tasks:
        service.upsert_task(task_id, {"text": text, "type": kind, "responsible_id": responsible,
                                      **due}, actor_id="ann")
    service.upsert_task("demo-6", {"text": "Update my pipeline notes", "type": "follow_up",
                                   "responsible_id": "bob", "due_at": now + timedelta(hours=3)},
                        actor_id="bob")  # N2: set for himself, center only


def keep_setting_tasks(service, stop: threading.Event, every: float) -> None:
    n = 0
    while not stop.wait(every):
        n += 1
        kind, text = random.choice(CHORES)
        due = service.clock.now() + timedelta(minutes=random.choice([6, 8, 15, 60]))
        service.upsert_task(f"live-{n}", {"text": text, "type": kind, "responsible_id": "bob",
                                          "due_at": due}, actor_id="ann")


def run(base: Settings, stop: threading.Event, say: Callable[[str], None] = print,
        port: int | None = None, every: float = 45.0) -> None:
    from syncd.daemon import build
    from syncd.server import NodeServer

    root = base.state_dir / "demo"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with EmulatorServer() as emu:
        for uid, _, _ in PEOPLE:
            emu.create_account(f"{uid}@example.com", time_zone="Europe/Berlin")
        settings = demo_settings(base, emu, free_port(base.http.port if port is None else port))
        node = build(settings)
        server = NodeServer(node, settings.http.host, settings.http.port)
        server.start()
        seed(node.service, node.clock.now(), "Europe/Berlin")
        tokens = {uid: node.service.issue_token(uid) for uid, _, _ in PEOPLE}
        feeder = threading.Thread(target=keep_setting_tasks, args=(node.service, stop, every),
                                  daemon=True)
        feeder.start()
        say("syncd demo is running (Ctrl-C to stop)\n")
        say(f"  Bob's page (tasks arrive live):  {server.url}/?token={tokens['bob']}")
        say(f"  Ann's page (hears of completions): {server.url}/?token={tokens['ann']}")
        say(f"  Иван (Russian locale):            {server.url}/?token={tokens['ivan']}")
        say(f"  Google Calendar emulator:         {emu.base_url}  "
            f"(events: {emu.base_url}/emulator/accounts/bob@example.com/calendars)")
        say("  Profile → Google Calendar → Connect: consent runs through the emulator.")
        say(f"  API docs: {server.url}/docs   (CRM API key: {settings.api.keys[0]})")
        stop.wait()
        server.stop()


