"""Apple Push Notification service, HTTP/2 provider API with token-based auth: the `mobile`
channel's client for devices registered with provider "apns" (channels/mobile.py fans out).

POST {apns.base_url}/3/device/{token}, one request per device, authorised by a provider JWT
signed ES256 with the team's .p8 key. Apple rejects a JWT older than an hour and answers
TooManyProviderTokenUpdates to one renewed more often than every 20 minutes, so one JWT serves
every send for 50 minutes of the injected clock; ExpiredProviderToken renews it once at once.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from syncd.channels import common
from syncd.channels.base import Gone, Message, PermanentError, TransientError
from syncd.clock import Clock
from syncd.settings import ApnsSettings, SettingsError
from syncd.store.tables import Device

log = logging.getLogger(__name__)

TOKEN_LIFETIME = timedelta(minutes=50)
# Apple's words for "this token is dead": remove the device (SPEC §4).
DEAD_TOKEN = {"Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic"}
# apns-id: the same UUID for the same (delivery, device), so a resend after a crash is
# recognisably the same notification.
APNS_ID_NAMESPACE = uuid.UUID("6f1d9c52-3b7e-4a55-9d2c-1f0e8a7b4c31")


def load_signing_key(path: str) -> ec.EllipticCurvePrivateKey:
    """The .p8 file Apple issues: a PKCS#8 PEM P-256 private key. Errors name the file, never
    its content."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise SettingsError(f"setting apns.key_file: cannot read {path!r}: "
                            f"{type(exc).__name__}") from None
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SettingsError(f"setting apns.key_file: {path!r} is not an unencrypted PEM "
                            "private key (Apple's .p8 file)") from None
    if not (isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)):
        raise SettingsError(f"setting apns.key_file: {path!r} is not a P-256 key (ES256)")
    return key


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class ApnsClient:
    provider = "apns"

    def __init__(self, settings: ApnsSettings, clock: Clock, public_url: str = "") -> None:
        self.key = load_signing_key(settings.key_file)
        for name in ("key_id", "team_id", "topic"):
            if not getattr(settings, name).strip():
                raise SettingsError(f"setting apns.{name}: empty, but apns.key_file is set")
        self.settings = settings
        self.clock = clock
        self.public_url = public_url
        self.base = settings.base_url.rstrip("/")
        # Apple speaks only HTTP/2: https negotiates it by ALPN; plain http (a local stand-in)
        # can only start it by prior knowledge.
        verify = ssl.create_default_context(cafile=settings.ca_file) if settings.ca_file else True
        self.http = httpx.Client(http2=True, http1=not self.base.startswith("http://"),
                                 verify=verify, timeout=settings.timeout_seconds)
        self._token: tuple[str, datetime] | None = None
        self._token_lock = threading.Lock()

    # -- provider token -----------------------------------------------------------------

    def _sign(self, now: datetime) -> str:
        header = b64url(json.dumps({"alg": "ES256", "kid": self.settings.key_id}).encode())
        claims = b64url(json.dumps({"iss": self.settings.team_id,
                                    "iat": int(now.timestamp())}).encode())
        der = self.key.sign(f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        # JWS wants the raw r||s pair, 32 bytes each, not cryptography's DER.
        return f"{header}.{claims}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def provider_token(self, stale: str | None = None) -> str:
        """The JWT to send; `stale` is one APNs just called expired (renew unless another
        thread already did)."""
        with self._token_lock:
            now = self.clock.now()
            if (self._token is None or self._token[0] == stale
                    or now - self._token[1] >= TOKEN_LIFETIME):
                self._token = (self._sign(now), now)
            return self._token[0]

    # -- sending ------------------------------------------------------------------------

    def request(self, device: Device, message: Message) -> tuple[dict[str, str], dict]:
        """(headers without authorization, body) for one device."""
        title, text = common.push_text(message.payload)
        data = common.push_data(message.delivery_id, message.payload, self.public_url)
        urgent = message.payload.get("kind") == "task_due"
        ttl = self.settings.ttl_seconds
        # 0 tells APNs to try once and keep nothing for a phone that is offline.
        expires = int((self.clock.now() + timedelta(seconds=ttl)).timestamp()) if ttl else 0
        headers = {
            "apns-topic": self.settings.topic,
            "apns-push-type": "alert",
            "apns-priority": "10" if urgent else "5",
            # The tag FCM uses too ("entry-<id>", well under Apple's 64 bytes): a copy resent
            # after a crash replaces the first on the phone.
            "apns-collapse-id": data["tag"],
            "apns-expiration": str(expires),
            "apns-id": str(uuid.uuid5(APNS_ID_NAMESPACE, f"{message.delivery_id}:{device.id}")),
        }
        body = {"aps": {"alert": {"title": title, "body": text}, "sound": "default",
                        "thread-id": f"task-{data['task_id']}"},
                **data}
        return headers, body

    def _post(self, url: str, headers: dict[str, str], body: dict, token: str) -> tuple[int, str]:
        """(status, Apple's reason) of one send."""
        try:
            resp = self.http.post(url, json=body,
                                  headers={**headers, "authorization": f"bearer {token}"})
        except httpx.HTTPError as exc:
            raise TransientError(f"APNs unreachable: {type(exc).__name__}") from exc
        if resp.status_code == 200:
            return 200, ""
        try:
            return resp.status_code, str(resp.json().get("reason", ""))[:100]
        except (ValueError, AttributeError):
            return resp.status_code, resp.text[:100]

    def push(self, device: Device, message: Message) -> None:
        headers, body = self.request(device, message)
        # Real tokens are hex; quoting keeps any other registered string inside the path.
        url = f"{self.base}/3/device/{quote(device.token, safe='')}"
        token = self.provider_token()
        status, reason = self._post(url, headers, body, token)
        if reason == "ExpiredProviderToken":
            status, reason = self._post(url, headers, body, self.provider_token(stale=token))
        if status == 200:
            return
        if status == 410 or reason in DEAD_TOKEN:
            raise Gone()
        text = f"APNs answered {status} {reason}"
        if status == 403:
            log.error("APNs refused the provider token",
                      extra={"status": status, "reason": reason, "key_id": self.settings.key_id})
            raise TransientError(text)  # configuration: retried so pushes flow once fixed
        if status == 429 or status >= 500:
            raise TransientError(text)
        raise PermanentError(text)

    def close(self) -> None:
        self.http.close()
