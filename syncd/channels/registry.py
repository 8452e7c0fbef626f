"""Where push goes: browsers' Web Push subscriptions and mobile devices, per user (SPEC §4).

The API and the senders both come through here; each function is one short transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from syncd.clock import Clock
from syncd.errors import InvalidInput, NotFound
from syncd.store.db import Database
from syncd.store.tables import Device, User, WebPushSubscription

PROVIDERS = ("fcm", "apns")
T = TypeVar("T")


class Registry:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    @staticmethod
    def _retry_once(fn: Callable[[], T]) -> T:
        # Two registrations of one endpoint/token racing: the loser's INSERT hits the unique
        # constraint; on the second go it finds the winner's row and updates it.
        try:
            return fn()
        except IntegrityError:
            return fn()

    # -- Web Push -----------------------------------------------------------------------

    def subscribe_webpush(self, user_id: str, endpoint: str, p256dh: str, auth: str, *,
                          allow_http: bool = False) -> tuple[WebPushSubscription, bool]:
        """Store a browser's subscription; the same endpoint again updates it (and moves it to
        this user: one browser profile, one endpoint). Returns (row, created)."""
        scheme = urlsplit(endpoint).scheme.lower()
        if scheme != "https" and not (allow_http and scheme == "http"):
            raise InvalidInput("endpoint: must be an https URL", field="endpoint")

        def go() -> tuple[WebPushSubscription, bool]:
            with self.db.transaction() as s:
                if s.get(User, user_id) is None:
                    raise NotFound(f"no user {user_id!r}", field="id")
                row = s.execute(select(WebPushSubscription).where(
                    WebPushSubscription.endpoint == endpoint).with_for_update()).scalar()
                created = row is None
                if row is None:
                    row = WebPushSubscription(user_id=user_id, endpoint=endpoint, p256dh=p256dh,
                                              auth=auth, created_at=self.clock.now())
                else:
                    row.user_id, row.p256dh, row.auth = user_id, p256dh, auth
                s.add(row)
                s.flush()
                return row, created

        return self._retry_once(go)

    def unsubscribe_webpush(self, user_id: str, endpoint: str) -> None:
        with self.db.transaction() as s:
            n = s.execute(delete(WebPushSubscription).where(
                WebPushSubscription.user_id == user_id,
                WebPushSubscription.endpoint == endpoint)).rowcount
        if not n:
            raise NotFound("no such subscription for this user", field="endpoint")

    def webpush_subscriptions(self, user_id: str) -> list[WebPushSubscription]:
        with self.db.read() as s:
            return list(s.execute(select(WebPushSubscription).where(
                WebPushSubscription.user_id == user_id).order_by(WebPushSubscription.id)).scalars())

    def drop_webpush(self, subscription_id: int, endpoint: str) -> bool:
        """The push service called this subscription dead (404/410)."""
        with self.db.transaction() as s:
            return bool(s.execute(delete(WebPushSubscription).where(
                WebPushSubscription.id == subscription_id,
                WebPushSubscription.endpoint == endpoint)).rowcount)

    # -- mobile devices -----------------------------------------------------------------

    def register_device(self, user_id: str, provider: str, token: str,
                        enabled: bool = True) -> tuple[Device, bool]:
        """Register an app install; the same (provider, token) again updates it and moves it
        to this user (a phone changes hands, or someone else logs in). (row, created)."""
        if provider not in PROVIDERS:
            raise InvalidInput(f"provider: must be one of {', '.join(PROVIDERS)}", field="provider")

        def go() -> tuple[Device, bool]:
            with self.db.transaction() as s:
                if s.get(User, user_id) is None:
                    raise NotFound(f"no user {user_id!r}", field="id")
                row = s.execute(select(Device).where(
                    Device.provider == provider, Device.token == token).with_for_update()).scalar()
                created = row is None
                if row is None:
                    row = Device(user_id=user_id, provider=provider, token=token, enabled=enabled,
                                 created_at=self.clock.now())
                else:
                    row.user_id, row.enabled = user_id, enabled
                s.add(row)
                s.flush()
                return row, created

        return self._retry_once(go)

    def _own_device(self, s, user_id: str, device_id: int) -> Device:
        row = s.get(Device, device_id)
        if row is None or row.user_id != user_id:
            raise NotFound(f"no device {device_id}", field="did")
        return row

    def get_device(self, user_id: str, device_id: int) -> Device:
        with self.db.read() as s:
            return self._own_device(s, user_id, device_id)

    def set_device_enabled(self, user_id: str, device_id: int, enabled: bool) -> Device:
        with self.db.transaction() as s:
            row = self._own_device(s, user_id, device_id)
            row.enabled = enabled
            s.add(row)
            return row

    def delete_device(self, user_id: str, device_id: int) -> None:
        with self.db.transaction() as s:
            s.delete(self._own_device(s, user_id, device_id))

    def devices(self, user_id: str) -> list[Device]:
        with self.db.read() as s:
            return list(s.execute(select(Device).where(Device.user_id == user_id)
                                  .order_by(Device.id)).scalars())

    def enabled_devices(self, user_id: str, *providers: str) -> list[Device]:
        with self.db.read() as s:
            return list(s.execute(select(Device).where(
                Device.user_id == user_id, Device.provider.in_(providers),
                Device.enabled.is_(True)).order_by(Device.id)).scalars())

    def drop_device(self, device_id: int, token: str) -> bool:
        """The push service called this token dead (FCM UNREGISTERED, APNs Unregistered)."""
        with self.db.transaction() as s:
            return bool(s.execute(delete(Device).where(
                Device.id == device_id, Device.token == token)).rowcount)
