"""Which senders a node runs: each channel only when configured (SPEC §6 settings)."""

from __future__ import annotations

import logging

from syncd.channels.registry import Registry
from syncd.clock import Clock
from syncd.notify.deliver import Deliverer
from syncd.settings import Settings, SettingsError
from syncd.store.db import Database

log = logging.getLogger(__name__)


def register_senders(deliverer: Deliverer, settings: Settings, db: Database, clock: Clock) -> None:
    """email: when email.smtp_host is set; browser (Web Push): always, with a generated VAPID
    key unless one is configured; mobile: when fcm.service_account_file or apns.key_file (or
    both) is set. A bad setting raises SettingsError naming the key."""
    from syncd.channels.apns import ApnsClient
    from syncd.channels.email import EmailSender
    from syncd.channels.fcm import FcmClient
    from syncd.channels.mobile import MobileSender, PushClient
    from syncd.channels.webpush import WebPushSender, load_vapid_key

    registry = Registry(db, clock)
    public_url = settings.http.public_url
    if settings.email.smtp_host:
        try:
            deliverer.register(EmailSender(settings.email, public_url, clock))
        except ValueError as exc:
            raise SettingsError(f"setting {exc}") from None
    vapid = load_vapid_key(settings, db, clock)
    deliverer.register(WebPushSender(settings.webpush, vapid, registry, public_url))
    push: list[PushClient] = []
    if settings.fcm.service_account_file:
        push.append(FcmClient(settings.fcm, public_url))
    if settings.apns.key_file:
        push.append(ApnsClient(settings.apns, clock, public_url))
    if push:
        deliverer.register(MobileSender(push, registry))
    log.debug("senders", extra={"channels": sorted(deliverer.senders)})
