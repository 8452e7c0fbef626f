"""Settings: `settings.yaml` (path from SYNCD_SETTINGS) overridden by SYNCD_<SECTION>__<KEY>."""

from __future__ import annotations

import os
from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

DEFAULT_SETTINGS_FILE = "settings.yaml"


class Section(BaseModel):
    # A misspelt key (`http.prot`) stops the daemon with its name rather than being ignored.
    model_config = ConfigDict(extra="forbid")


class HttpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    # SIGTERM: stop taking work, finish or release it, exit within this (the unit's TimeoutStopSec).
    stop_timeout_seconds: float = Field(20.0, ge=1, le=600)


class DatabaseSettings(Section):
    # Empty means SQLite at <state_dir>/syncd.db.
    url: str = ""


class ApiSettings(Section):
    keys: list[str] = Field(default_factory=list)

    @field_validator("keys")
    @classmethod
    def _long_enough(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if len(key) < 16:
                raise ValueError("each API key must be at least 16 characters")
        return keys


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


def credential_path(configured: str) -> Path:
    """A systemd credential (LoadCredential=NAME:…) named like the configured file wins."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if directory and configured:
        candidate = Path(directory) / Path(configured).name
        if candidate.is_file():
            return candidate
    return Path(configured)


class NotifySettings(Section):
    due_soon_minutes: int = Field(5, ge=0, le=1440)
    email_grace_seconds: int = Field(60, ge=0, le=3600)
    all_day_notify_at: time = time(9, 0)
    default_timezone: str = "UTC"
    default_locale: Literal["en", "ru"] = "en"

    _tz = field_validator("default_timezone")(_check_timezone)


class EmailSettings(Section):
    smtp_host: str = ""
    smtp_port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    tls: bool = False
    username: str = ""
    password: str = ""
    from_address: str = "syncd@localhost"
    # CA bundle (PEM) to verify the SMTP server's certificate; empty: the system's CAs.
    ca_file: str = ""
    timeout_seconds: float = Field(30.0, gt=0, le=600)


class WebPushSettings(Section):
    vapid_private_key: str = ""
    vapid_subject: str = "mailto:admin@localhost"
    # How long a push service keeps a message for a browser that is offline.
    ttl_seconds: int = Field(43200, ge=0, le=2419200)
    # Plain-http subscription endpoints (tests, local push servers); real ones are https.
    allow_http_endpoints: bool = False
    timeout_seconds: float = Field(10.0, gt=0, le=120)


class FcmSettings(Section):
    service_account_file: str = ""
    base_url: str = "https://fcm.googleapis.com"
    # Empty: the project_id in the service-account file.
    project_id: str = ""
    timeout_seconds: float = Field(10.0, gt=0, le=120)


class ApnsSettings(Section):
    # The token-auth signing key (.p8) from Apple's developer account; empty disables APNs.
    key_file: str = ""
    key_id: str = ""
    team_id: str = ""
    # The iOS app's bundle id.
    topic: str = ""
    # Development builds of the app register with https://api.sandbox.push.apple.com.
    base_url: str = "https://api.push.apple.com"
    # How long APNs keeps a notification for a phone that is offline.
    ttl_seconds: int = Field(43200, ge=0, le=2419200)
    timeout_seconds: float = Field(10.0, gt=0, le=120)
    # CA bundle (PEM) to verify APNs' certificate (a TLS-inspecting proxy); empty: the public CAs.
    ca_file: str = ""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if url.split(":", 1)[0] not in ("http", "https"):
            raise ValueError("must be an https:// URL (http:// only for a local stand-in)")
        return url


class GoogleSettings(Section):
    client_file: str = "credentials/google-client.json"
    token_key_file: str = "credentials/token.key"
    api_endpoint: str = "https://www.googleapis.com"
    auth_uri: str = "https://accounts.google.com/o/oauth2/auth"
    token_uri: str = "https://oauth2.googleapis.com/token"
    revoke_uri: str = "https://oauth2.googleapis.com/revoke"
    calendar_name: str = "CRM tasks"
    event_minutes: int = Field(30, ge=1, le=1440)
    reminders: list[int] = Field(default_factory=lambda: [5], max_length=5)
    webhook_url: str = ""
    poll_seconds: int = Field(60, ge=1)
    # With push channels on, polling is only a safety net this far apart.
    safety_poll_seconds: int = Field(900, ge=1)
    backfill_days: int = Field(7, ge=0)
    completed: Literal["mark", "delete"] = "mark"
    done_marks: list[str] = Field(default_factory=lambda: ["✓", "✔", "☑", "[x]"])
    done_color: str = "8"
    on_event_deleted: Literal["complete", "unlink", "restore"] = "complete"
    keep_calendar_on_disconnect: bool = False
    quota_pause_minutes: int = Field(60, ge=1)

    # Under systemd, LoadCredential= files in $CREDENTIALS_DIRECTORY win (same file name).
    _credentials = field_validator("client_file", "token_key_file")(
        lambda v: str(credential_path(v)))
    # G14: requests in any 60 s (Google's sliding window), all nodes together; kept below
    # Google's 600 per user and 10,000 per project.
    user_requests_per_minute: int = Field(500, ge=1)
    project_requests_per_minute: int = Field(9000, ge=1)


class JobSettings(Section):
    # The worker never sleeps longer than this, so other nodes' jobs are seen promptly.
    max_sleep_seconds: float = Field(1.0, gt=0, le=60)
    batch_size: int = Field(200, ge=1, le=5000)
    lease_seconds: int = Field(60, ge=5)
    max_attempts: int = Field(12, ge=1)
    backoff_base_seconds: float = Field(2.0, gt=0)
    backoff_max_seconds: float = Field(3600.0, gt=0)
    # /healthz answers 503 once the most overdue job is this late (0: never).
    health_max_lateness_seconds: float = Field(600.0, ge=0)


class LogSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = Field(True, alias="json")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SYNCD_", env_nested_delimiter="__", extra="forbid", populate_by_name=True
    )

    state_dir: Path = Path("state")
    http: HttpSettings = HttpSettings()
    database: DatabaseSettings = DatabaseSettings()
    api: ApiSettings = ApiSettings()
    notify: NotifySettings = NotifySettings()
    email: EmailSettings = EmailSettings()
    webpush: WebPushSettings = WebPushSettings()
    fcm: FcmSettings = FcmSettings()
    apns: ApnsSettings = ApnsSettings()
    google: GoogleSettings = GoogleSettings()
    jobs: JobSettings = JobSettings()
    log: LogSettings = LogSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = os.environ.get("SYNCD_SETTINGS", DEFAULT_SETTINGS_FILE)
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls, yaml_file=path))

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.state_dir / 'syncd.db'}"


class SettingsError(Exception):
    """A bad setting; the message names every offending key."""


def load_settings(**overrides: object) -> Settings:
    path = os.environ.get("SYNCD_SETTINGS")
    if path and not Path(path).is_file():
        raise SettingsError(f"SYNCD_SETTINGS: no such file {path!r}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"])
            lines.append(f"setting {key}: {err['msg']}")
        raise SettingsError("\n".join(lines)) from None
