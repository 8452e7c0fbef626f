"""Browser push: Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291).

The VAPID key comes from `webpush.vapid_private_key` (PEM, or base64url of the raw 32-byte key
or of DER) or is generated into `<state_dir>/vapid_private.pem` on first start. One delivery on
the `browser` channel goes to every subscription of the user; a push service that answers
404/410 has forgotten the subscription, so it is removed.

What the page's service worker receives (JSON, decrypted by the browser):
  {"title", "body", "lang", "tag", "url", "kind", "task_id", "entry_id", "delivery_id"}
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher, WebPushException

from syncd.channels import common
from syncd.channels.base import Gone, Message, PermanentError, Skipped, TransientError
from syncd.channels.registry import Registry
from syncd.settings import Settings, SettingsError, WebPushSettings
from syncd.store.tables import WebPushSubscription

log = logging.getLogger(__name__)

KEY_FILE = "vapid_private.pem"
JWT_LIFETIME = 12 * 3600  # RFC 8292: at most 24 h


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class VapidKey:
    """The application server's P-256 key pair."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise TypeError("a VAPID key must be on the P-256 curve")
        self.private_key = private_key
        self._vapid = Vapid02(private_key)

    @property
    def public_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    @property
    def application_server_key(self) -> str:
        """What the page passes to pushManager.subscribe() (base64url, 65 bytes)."""
        return b64url(self.public_bytes)

    def pem(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    def authorization(self, endpoint: str, subject: str, now: float | None = None) -> str:
        """`Authorization: vapid t=<JWT>, k=<public key>` for one push service origin."""
        url = urlsplit(endpoint)
        claims = {"aud": f"{url.scheme}://{url.netloc}",
                  "exp": int((now or time.time()) + JWT_LIFETIME), "sub": subject}
        return self._vapid.sign(claims)["Authorization"]

    @classmethod
    def parse(cls, text: str) -> VapidKey:
        text = text.strip()
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = b64url_decode(text)
            if len(raw) == 32:
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            else:
                key = serialization.load_der_private_key(raw, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError("not an elliptic-curve private key")
        return cls(key)

    @classmethod
    def generate(cls) -> VapidKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))


def load_vapid_key(settings: Settings) -> VapidKey:
    """From settings, else `<state_dir>/vapid_private.pem`, generated (0600) on first start.
    Two processes starting at once on one state_dir end up with the same key."""
    configured = settings.webpush.vapid_private_key
    if configured:
        try:
            return VapidKey.parse(configured)
        except (ValueError, TypeError) as exc:
            raise SettingsError(f"setting webpush.vapid_private_key: {exc}") from None
    path = Path(settings.state_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = VapidKey.generate()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vapid-")
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, fresh.pem())
            os.fsync(fd)
            os.close(fd)
            os.link(tmp, path)  # atomic, and fails if another process got there first
            log.info("generated a VAPID key", extra={"path": str(path)})
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    try:
        return VapidKey.parse(path.read_text())
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"{path}: not a usable VAPID private key: {exc}") from None


def check_subject(subject: str) -> None:
    if not (subject.startswith("mailto:") and "@" in subject) and not subject.startswith("https://"):
        raise SettingsError("setting webpush.vapid_subject: must be a mailto: address or an "
                            "https:// URL (push services contact it about problems)")


class WebPushSender:
    channel = "browser"

    def __init__(self, settings: WebPushSettings, key: VapidKey, registry: Registry,
                 public_url: str = "") -> None:
        check_subject(settings.vapid_subject)
        self.settings = settings
        self.key = key
        self.registry = registry
        self.public_url = public_url
        self.progress = common.Progress()

    @property
    def application_server_key(self) -> str:
        return self.key.application_server_key

    def content(self, message: Message) -> bytes:
        title, body = common.push_text(message.payload)
        data = common.push_data(message.delivery_id, message.payload, self.public_url)
        return json.dumps({"title": title, "body": body,
                           "lang": common.locale_of(message.payload), **data},
                          ensure_ascii=False, separators=(",", ":")).encode()

    def send(self, message: Message) -> None:
        subs = self.registry.webpush_subscriptions(message.user_id)
        if not subs:
            raise Skipped("no browser subscribed to push")
        data = self.content(message)
        urgency = "high" if message.payload.get("kind") == "task_due" else "normal"
        common.fan_out(message.delivery_id, subs, self.progress, "subscription",
                       lambda sub: self._push(sub, data, message.delivery_id, urgency),
                       self._drop)

    def _drop(self, sub: WebPushSubscription) -> None:
        if self.registry.drop_webpush(sub.id, sub.endpoint):
            log.info("push subscription gone, removed", extra={"subscription": sub.id})

    def _push(self, sub: WebPushSubscription, data: bytes, delivery_id: int,
              urgency: str) -> None:
        headers = {
            "Authorization": self.key.authorization(sub.endpoint, self.settings.vapid_subject),
            "Urgency": urgency,
            # A copy resent after a crash replaces the first while it waits in the push service.
            "Topic": f"delivery-{delivery_id}"[:32],
        }
        info = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
        try:
            resp = WebPusher(info).send(data, headers=headers, ttl=self.settings.ttl_seconds,
                                        content_encoding="aes128gcm",
                                        timeout=self.settings.timeout_seconds)
        except WebPushException as exc:  # the stored keys can't be used: the browser must resubscribe
            log.warning("unusable push subscription, removed",
                        extra={"subscription": sub.id, "error": str(exc)[:200]})
            raise Gone() from exc
        except (requests.RequestException, OSError) as exc:
            raise TransientError(f"{type(exc).__name__} reaching {urlsplit(sub.endpoint).netloc}"
                                 ) from exc
        status = resp.status_code
        if status in (200, 201, 202):
            return
        if status in (404, 410):
            raise Gone()
        reason = f"push service answered {status} {resp.text[:200]!r}"
        if status == 429 or status >= 500:
            raise TransientError(reason)
        raise PermanentError(reason)

    def close(self) -> None:
        pass
