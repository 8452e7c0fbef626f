"""`syncd demo` (what `make demo` runs), end to end as a newcomer would meet it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_serves_the_page_notifies_live_and_connects_google_calendar(tmp_path: Path):
    shutil.copy(ROOT / "settings.yaml", tmp_path / "settings.yaml")
    syncd = Path(sys.executable).with_name("syncd")
    proc = subprocess.Popen([str(syncd), "demo", "--port", "0", "--duration", "60",
                             "--every", "2"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "SYNCD_SETTINGS": str(tmp_path / "settings.yaml")})
    try:
        lines = []
        assert proc.stdout is not None
        while len(lines) < 8:
            line = proc.stdout.readline()
            assert line, "demo exited early:\n" + "".join(lines)
            lines.append(line)
        text = "".join(lines)
        page = re.search(r"Bob's page.*?(http://\S+)", text).group(1)
        emulator = re.search(r"Google Calendar emulator:\s+(http://\S+)", text).group(1)
        base = f"{urlparse(page).scheme}://{urlparse(page).netloc}"
        token = page.split("token=")[1]
        auth = {"Authorization": f"Bearer {token}"}
        assert "<html" in httpx.get(page).text.lower()
        kinds = {e["kind"] for e in httpx.get(f"{base}/v1/users/bob/notifications",
                                              headers=auth).json()["items"]}
        assert {"task_assigned", "task_due", "task_overdue"} <= kinds  # demo-2 fires at once
        count = httpx.get(f"{base}/v1/users/bob/notifications/unread-count",
                          headers=auth).json()["count"]
        time.sleep(3)  # the demo's CRM sets a new task every 2 s here
        later = httpx.get(f"{base}/v1/users/bob/notifications/unread-count",
                          headers=auth).json()["count"]
        assert later > count
        # The profile's Google Calendar toggle: consent at the emulator, back to the daemon.
        url = httpx.post(f"{base}/v1/users/bob/calendar/connect",
                         headers=auth).json()["authorization_url"]
        landed = httpx.get(url, follow_redirects=True)
        assert landed.status_code == 200 and str(landed.url).startswith(base)
        for _ in range(100):
            state = httpx.get(f"{base}/v1/users/bob/calendar", headers=auth).json()
            if state["state"] == "on" and state["last_push_at"]:
                break
            time.sleep(0.1)
        cal_id = state["calendar_id"]
        events = httpx.get(f"{emulator}/emulator/accounts/bob@example.com/calendars/"
                           f"{cal_id}/events").json()
        assert any("Call Acme about the contract" in e["summary"] for e in
                   (events["items"] if isinstance(events, dict) else events))
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0
