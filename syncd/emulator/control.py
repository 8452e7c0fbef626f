"""Test and operator controls behind the /emulator/ admin API (also callable in-process)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from . import eventbody
from .calendar import CalendarApi
from .clock import Clock
from .counters import Counters
from .faults import Faults
from .grants import Grants
from .push import PushHub
from .scopes import APP_CREATED
from .settings import EmulatorSettings
from .state import EmulatorState, OAuthClient


class Control:
    def __init__(self, *, state: EmulatorState, grants: Grants, calendar: CalendarApi,
                 faults: Faults, counters: Counters, push: PushHub, settings: EmulatorSettings,
                 clock: Clock) -> None:
        self.state = state
        self.grants = grants
        self.calendar = calendar
        self.faults = faults
        self.counters = counters
        self.push = push
        self.settings = settings
        self.clock = clock

    # -- accounts and grants ---------------------------------------------------------------

    def create_account(self, email: str, scopes: list[str] | None = None,
                       client_id: str | None = None, time_zone: str | None = None,
                       base_url: str = "") -> dict[str, Any]:
        """Create (or reuse) an account and mint a grant for it, skipping the web flow."""
        if "@" not in email:
            raise ValueError("email must be an address")
        zone_name = time_zone or self.settings.default_time_zone
        if eventbody.zone(zone_name) is None:
            raise ValueError(f"unknown time zone {zone_name!r}")
        client = self._client(client_id)
        with self.state.lock:
            self.state.add_account(email, zone_name)
            issued = self.grants.mint(email, client.client_id, scopes or [APP_CREATED])
        return {"email": email, "client_id": client.client_id,
                "client_secret": client.client_secret, "token_uri": f"{base_url}/token",
                **issued.response()}

    def accounts(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [{**asdict(a), "calendars": len(self.state.calendars_of(a.email))}
                    for a in self.state.accounts.values()]

    def calendars(self, email: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return [{**self.calendar.calendar_resource(c), "primary": c.primary,
                     "createdBy": c.created_by, "events": len(c.events)}
                    for c in self.state.calendars_of(email)]

    def events(self, email: str, calendar_id: str) -> list[dict[str, Any]]:
        """Every event of the calendar, cancelled ones in full, in creation order."""
        with self.state.lock:
            calendar = self.state.calendars.get(
                email if calendar_id == "primary" else calendar_id)
            if calendar is None or calendar.owner != email:
                raise KeyError(calendar_id)
            ordered = sorted(calendar.events.values(), key=lambda e: e.index)
            return [eventbody.render(e.data, e.start_ts, e.end_ts, calendar.time_zone, False)
                    for e in ordered]

    def revoke(self, email: str, client_id: str | None = None) -> int:
        return self.grants.revoke_grant(email, client_id)

    def expire_access_tokens(self, email: str | None = None) -> int:
        return self.grants.expire_access_tokens(email)

    # -- OAuth clients ---------------------------------------------------------------------

    def _client(self, client_id: str | None) -> OAuthClient:
        if client_id is None:
            return self.grants.ensure_default_client()
        client = self.state.clients.get(client_id)
        if client is None:
            raise KeyError(client_id)
        return client

    def register_client(self, **options: Any) -> dict[str, Any]:
        return asdict(self.grants.register_client(**options))

    def clients(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [asdict(c) for c in self.state.clients.values()]

    def client_secrets(self, client_id: str | None, base_url: str) -> dict[str, Any]:
        """The client in Google's client_secrets.json format, pointing at this emulator."""
        client = self._client(client_id)
        return {client.kind: {
            "client_id": client.client_id,
            "project_id": "syncd-emulator",
            "auth_uri": f"{base_url}/o/oauth2/auth",
            "token_uri": f"{base_url}/token",
            "auth_provider_x509_cert_url": f"{base_url}/oauth2/v1/certs",
            "client_secret": client.client_secret,
            "redirect_uris": client.redirect_uris,
        }}

    # -- faults, time, sync tokens, lifecycle ----------------------------------------------

    def set_quota_exceeded(self, exceeded: bool, accounts: list[str] | None = None) -> None:
        self.faults.set_quota_exceeded(exceeded, accounts)

    def expire_sync_tokens(self) -> int:
        with self.state.lock:
            self.state.sync_epoch += 1
            return self.state.sync_epoch

    def advance_clock(self, seconds: float) -> str:
        advance = getattr(self.clock, "advance", None)
        if advance is None:
            raise ValueError("this emulator runs on a clock that cannot be advanced")
        return eventbody.rfc3339_millis(advance(seconds))

    def channels(self) -> list[dict[str, Any]]:
        now_ms = int(self.clock().timestamp() * 1000)
        with self.state.lock:
            return [{**asdict(c), "expired": c.expiration_ms <= now_ms}
                    for c in self.state.channels.values()]

    def config(self, **options: Any) -> dict[str, Any]:
        self.settings.update_runtime(**options)
        return self.settings.runtime_options()

    def reset(self) -> None:
        """Forget everything but the settings; the default OAuth client comes back."""
        self.state.reset()
        self.faults.clear()
        self.counters.reset()
        self.grants.ensure_default_client()

    def save(self, path: str | None = None) -> str:
        target = path or self.settings.state_file
        if not target:
            raise ValueError("no state file configured")
        self.state.save(target)
        return target
