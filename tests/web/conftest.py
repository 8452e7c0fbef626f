"""The web page in a real browser: headless Debian chromium driven by Playwright's sync API,
against a daemon on a real HTTP server (ephemeral port, SQLite in tmp)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from syncd.daemon import build
from syncd.server import NodeServer
from tests.conftest import API_KEY, make_settings

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1100, "height": 720}


@pytest.fixture(scope="session")
def browser() -> Iterator[sync_api.Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@dataclass
class Site:
    """The daemon on a real port, and the CRM's side of it (the API key)."""

    url: str
    http: httpx.Client
    tokens: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, token: str | None = None, **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or API_KEY}"}
        return self.http.request(method, path, headers=headers, **kw)

    def user(self, user_id: str, **fields: object) -> dict:
        fields.setdefault("name", user_id.title())
        fields.setdefault("email", f"{user_id}@example.com")
        r = self.call("PUT", f"/v1/users/{user_id}", json=fields)
        assert r.status_code == 200, r.text
        return r.json()

    def token(self, user_id: str) -> str:
        if user_id not in self.tokens:
            r = self.call("POST", f"/v1/users/{user_id}/tokens")
            assert r.status_code == 201, r.text
            self.tokens[user_id] = r.json()["token"]
        return self.tokens[user_id]

    def task(self, task_id: str, actor: str, **fields: object) -> dict:
        fields.setdefault("type", "call")
        if "due_date" not in fields:
            fields.setdefault("due_at", "2031-03-03T12:00:00+00:00")
        r = self.call("PUT", f"/v1/tasks/{task_id}", json={"actor_id": actor, **fields})
        assert r.status_code == 200, r.text
        return r.json()

    def complete(self, task_id: str, by: str) -> None:
        r = self.call("POST", f"/v1/tasks/{task_id}/complete", json={"by": by})
        assert r.status_code == 200, r.text

    def settings(self, user_id: str) -> dict:
        return self.call("GET", f"/v1/users/{user_id}/settings").json()

    def unread(self, user_id: str) -> int:
        return self.call("GET", f"/v1/users/{user_id}/notifications/unread-count").json()["count"]

    def open(self, page: sync_api.Page, user_id: str, hash: str = "") -> None:
        """Sign in as the CRM would link it, and wait until the live stream is up."""
        page.goto(f"{self.url}/?token={self.token(user_id)}{hash}")
        page.wait_for_selector("body[data-stream=live]")


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per session; each test starts from a copy of it (fast)."""
    folder = tmp_path_factory.mktemp("template")
    node = build(make_settings(folder, f"sqlite:///{folder / 'syncd.db'}"))
    node.db.dispose()
    return folder / "syncd.db"


@pytest.fixture
def site(tmp_path: Path, migrated_db: Path) -> Iterator[Site]:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{migrated_db}{suffix}").exists():
            shutil.copyfile(f"{migrated_db}{suffix}", tmp_path / f"syncd.db{suffix}")
    node = build(make_settings(tmp_path, f"sqlite:///{tmp_path / 'syncd.db'}"), migrate=False)
    server = NodeServer(node, "127.0.0.1", 0, workers=1)
    server.start()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield Site(server.url, http)
    server.stop()


@dataclass
class Watch:
    """What the page did that it should not: dialogs (alert), script errors."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: sync_api.Browser, site: Site, watch: Watch) -> Iterator[sync_api.Page]:
    # Depends on `site`, so the page (and its open stream) closes before the server stops.
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(8000)
    pg = context.new_page()

    def on_dialog(dialog: sync_api.Dialog) -> None:
        watch.dialogs.append(dialog.message)
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    pg.on("pageerror", lambda err: watch.errors.append(str(err)))
    yield pg
    context.close()
    assert watch.errors == [], watch.errors


def screenshot(page: sync_api.Page, name: str, **kw: object) -> Path:
    """The README's pictures are remade with SYNCD_SCREENSHOTS=1 (`make screenshots`); other
    runs still take them, into a temporary folder, so the step is exercised every time."""
    folder = SCREENSHOTS if os.environ.get("SYNCD_SCREENSHOTS") else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), animations="disabled", **kw)
    assert path.stat().st_size > 1000
    return path
