"""The `syncd` command."""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import date, datetime
from typing import Annotated

import typer

from syncd.settings import Settings, SettingsError, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Task notifications and "
                  "Google Calendar sync for a CRM.")
db_app = typer.Typer(no_args_is_help=True, help="The database.")
users_app = typer.Typer(no_args_is_help=True, help="Users (admin).")
tasks_app = typer.Typer(no_args_is_help=True, help="Tasks (admin).")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(tasks_app, name="tasks")
calendar_app = typer.Typer(no_args_is_help=True, help="Google Calendar mirror (admin).")
app.add_typer(calendar_app, name="calendar")


def settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"syncd: bad configuration\n{exc}", err=True)
        raise typer.Exit(2) from None


def node():  # imported lazily: `check-config` stays fast
    from syncd.daemon import build

    s = settings()
    try:
        return build(s)
    except SettingsError as exc:  # found while wiring (a sender's key file, …)
        typer.echo(f"syncd: bad configuration\n{exc}", err=True)
        raise typer.Exit(2) from None


def out(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@app.command("check-config")
def check_config() -> None:
    """Validate settings.yaml and SYNCD_* overrides; print the effective settings (secrets masked)."""
    s = settings()
    data = s.model_dump(mode="json", by_alias=True)
    data["email"]["password"] = "***" if s.email.password else ""
    data["webpush"]["vapid_private_key"] = "***" if s.webpush.vapid_private_key else ""
    data["api"]["keys"] = [k[:4] + "…" for k in s.api.keys]
    out(data)


@app.command()
def run(workers: Annotated[int, typer.Option(help="Worker threads.")] = 2) -> None:
    """Run the daemon: HTTP API and workers, until SIGTERM (systemd Type=notify aware)."""
    import os

    from syncd.systemd import Notifier

    notifier = Notifier()  # a no-op unless systemd passed $NOTIFY_SOCKET
    try:
        s = load_settings()
    except SettingsError as exc:  # before the heavy imports: a typo fails fast
        notifier.status("bad configuration: " + str(exc).replace("\n", "; "))
        typer.echo(f"syncd: bad configuration\n{exc}", err=True)
        raise typer.Exit(2) from None

    from syncd import logs
    from syncd.daemon import build
    from syncd.server import NodeServer, log_uncaught_thread_errors, mask_secrets

    logs.setup(s.log)
    mask_secrets(s)
    log_uncaught_thread_errors()
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C: leave now (claimed jobs come back via their lease)
            os._exit(128 + signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    notifier.status("starting: database migrations")
    try:
        n = build(s)
    except SettingsError as exc:  # found while wiring (a sender's key file, …)
        notifier.status("bad configuration: " + str(exc).replace("\n", "; "))
        typer.echo(f"syncd: bad configuration\n{exc}", err=True)
        raise typer.Exit(2) from None
    NodeServer(n, s.http.host, s.http.port, workers, notifier=notifier).run(stop)


@app.command()
def status() -> None:
    """Job queue figures and counts of users and tasks."""
    from sqlalchemy import func, select

    from syncd.jobs import queue
    from syncd.store.tables import Task, User

    n = node()
    with n.db.read() as s:
        users = s.execute(select(func.count()).select_from(User)).scalar_one()
        tasks = s.execute(select(func.count()).select_from(Task)
                          .where(Task.deleted_at.is_(None))).scalar_one()
    out({"database": n.db.dialect, "users": users, "tasks": tasks,
         "jobs": queue.counts(n.db, n.clock.now())})


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations."""
    from syncd.store.db import Database

    db = Database(settings().database_url)
    db.upgrade()
    typer.echo(f"database at head ({db.dialect})")


@users_app.command("put")
def users_put(user_id: str, name: str = "", email: str = "",
              timezone: str | None = None, locale: str | None = None) -> None:
    """Create or update a user."""
    from syncd.api.schemas import UserIn

    data = UserIn(name=name or None, email=email or None, timezone=timezone, locale=locale)
    user = node().service.put_user(user_id, data.model_dump(exclude_none=True))
    out(user.model_dump())


@users_app.command("show")
def users_show(user_id: str) -> None:
    out(node().service.get_user(user_id).model_dump())


@users_app.command("token")
def users_token(user_id: str) -> None:
    """Issue a user token (for the web page or a user's own API calls)."""
    typer.echo(node().service.issue_token(user_id))


@tasks_app.command("put")
def tasks_put(task_id: str, actor: str, text: str | None = None,
              responsible: str | None = None, due_at: datetime | None = None,
              due_date: str | None = None, type: str | None = None) -> None:
    """Create or update a task (due_at needs an offset, e.g. 2026-12-01T10:00:00+01:00)."""
    from syncd.api.schemas import TaskIn

    body = TaskIn(actor_id=actor, text=text, responsible_id=responsible, due_at=due_at,
                  due_date=date.fromisoformat(due_date) if due_date else None, type=type)
    fields = body.model_dump(exclude_none=True)
    actor_id = fields.pop("actor_id")
    out(node().service.upsert_task(task_id, fields, actor_id).model_dump())


@tasks_app.command("complete")
def tasks_complete(task_id: str, by: str) -> None:
    out(node().service.complete_task(task_id, by).model_dump())


@tasks_app.command("delete")
def tasks_delete(task_id: str) -> None:
    node().service.delete_task(task_id)
    typer.echo(f"deleted {task_id}")


@tasks_app.command("show")
def tasks_show(task_id: str) -> None:
    out(node().service.get_task(task_id).model_dump())


@app.command()
def demo(port: Annotated[int | None, typer.Option(help="HTTP port (default http.port, "
                                                          "or a free one if taken).")] = None,
         duration: Annotated[float, typer.Option(help="Stop after this many seconds "
                                                      "(0: run until Ctrl-C).")] = 0,
         every: Annotated[float, typer.Option(help="Seconds between new live tasks.")] = 45
         ) -> None:
    """The daemon + the Calendar emulator + sample users and tasks; prints the page's URL."""
    from syncd import demo as demo_mod
    from syncd import logs

    s = settings()
    logs.setup(s.log.model_copy(update={"level": "WARNING", "json_format": False}))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if duration:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    demo_mod.run(s, stop, say=lambda line: typer.echo(line), port=port, every=every)


@calendar_app.command("connect")
def calendar_connect(user_id: str) -> None:
    """Console OAuth flow: open the printed URL anywhere, consent, paste the address the
    browser was sent back to. The running daemon finishes the setup."""
    from urllib.parse import parse_qs, urlparse

    n = node()
    client = n.mirror.google.client
    redirect = (client.redirect_uris[0] if client.kind == "installed" and client.redirect_uris
                else None)
    typer.echo("Open this address, consent, then paste the address you were sent back to:\n")
    typer.echo(n.mirror.connect_url(user_id, redirect_uri=redirect))
    back = typer.prompt("\nAddress", prompt_suffix=": ").strip()
    query = {k: v[0] for k, v in parse_qs(urlparse(back).query).items()}
    if "error" in query:
        typer.echo(f"syncd: Google said {query['error']}", err=True)
        raise typer.Exit(1)
    connected = n.mirror.finish_connect(query.get("state", ""), query.get("code", ""))
    typer.echo(f"connected {connected}: the daemon now creates the calendar and mirrors tasks")


@app.command()
def emulator(host: str = "127.0.0.1", port: int = 8090,
             state_file: Annotated[str | None, typer.Option(help="Save state here.")] = None
             ) -> None:
    """Run the Google Calendar v3 + OAuth 2.0 emulator."""
    from syncd.emulator.server import serve

    serve(host, port, state_file=state_file)


def main() -> None:
    try:
        app()
    except Exception as exc:  # typer prints tracebacks by default; an admin wants one line
        from syncd.errors import SyncdError

        if isinstance(exc, SyncdError):
            typer.echo(f"syncd: {exc.message}", err=True)
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
