"""Tunables of the emulator. Defaults are Google's documented values where Google has one."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

DEFAULT_CLIENT_ID = "syncd-emulator-client.apps.googleusercontent.com"
DEFAULT_CLIENT_SECRET = "syncd-emulator-secret"


@dataclass
class EmulatorSettings:
    # Public base URL (scheme://host:port) used in resourceUri, htmlLink and client JSON; when
    # empty it is taken from each request's Host header.
    public_url: str = ""
    access_token_ttl: int = 3599
    auth_code_ttl: int = 600
    # Google keeps at most 100 live refresh tokens per account and client; older ones die.
    max_refresh_tokens: int = 100
    # Calendar API per-minute quotas; None turns a limit off (benchmarks of the emulator itself).
    user_rate_limit: int | None = 600
    project_rate_limit: int | None = 10_000
    # Sync tokens Google invalidates "for various reasons"; None keeps them until expired by admin.
    sync_token_ttl: int | None = None
    channel_default_ttl: int = 604_800
    channel_max_ttl: int = 2_592_000
    # Google refuses http:// webhook addresses; tests on loopback need them, so off by default.
    require_https_webhooks: bool = False
    push_attempts: int = 3
    push_timeout: float = 5.0
    max_batch_size: int = 50
    # An unknown login_hint signs in (and creates) that account, like a real Google user would.
    auto_create_accounts: bool = True
    default_time_zone: str = "UTC"
    default_client_id: str = DEFAULT_CLIENT_ID
    default_client_secret: str = DEFAULT_CLIENT_SECRET
    state_file: str | None = None
    save_interval: float = 5.0
    random_seed: int | None = None

    def with_options(self, **options: Any) -> EmulatorSettings:
        known = {f.name for f in fields(self)}
        unknown = set(options) - known
        if unknown:
            raise TypeError(f"unknown emulator options: {', '.join(sorted(unknown))}")
        return replace(self, **options)

    def runtime_options(self) -> dict[str, Any]:
        """The settings the admin API may change while the server runs."""
        return {name: getattr(self, name) for name in RUNTIME_OPTIONS}

    def update_runtime(self, **options: Any) -> None:
        unknown = set(options) - set(RUNTIME_OPTIONS)
        if unknown:
            raise ValueError(f"not a runtime option: {', '.join(sorted(unknown))}")
        for name, value in options.items():
            setattr(self, name, value)


RUNTIME_OPTIONS = (
    "access_token_ttl", "user_rate_limit", "project_rate_limit", "sync_token_ttl",
    "channel_default_ttl", "channel_max_ttl", "require_https_webhooks", "push_attempts",
    "auto_create_accounts",
)
