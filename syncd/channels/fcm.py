"""Firebase Cloud Messaging, HTTP v1 API, with service-account OAuth: the `mobile` channel's
client for devices registered with provider "fcm" (channels/mobile.py fans a delivery out).

POST {fcm.base_url}/v1/projects/{project_id}/messages:send, one request per device token. The
access token comes from the service account's `token_uri` (google-auth) and is reused until it
nears expiry; a 401 refreshes it once. UNREGISTERED means the device is gone.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import google.auth.exceptions
import google.auth.transport.requests
import httpx
from google.oauth2 import service_account

from syncd.channels import common
from syncd.channels.base import Gone, Message, PermanentError, TransientError
from syncd.settings import FcmSettings, SettingsError
from syncd.store.tables import Device

log = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
# FCM's word for "this token is dead": remove the device (SPEC §4).
DEAD_TOKEN = {"UNREGISTERED", "SENDER_ID_MISMATCH"}


def load_service_account(path: str) -> dict:
    try:
        info = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SettingsError(f"setting fcm.service_account_file: cannot read {path!r}: "
                            f"{type(exc).__name__}") from None
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        raise SettingsError(f"setting fcm.service_account_file: {path!r} lacks "
                            f"{', '.join(missing)}")
    return info


class FcmClient:
    provider = "fcm"

    def __init__(self, settings: FcmSettings, public_url: str = "") -> None:
        info = load_service_account(settings.service_account_file)
        self.project_id = settings.project_id or info.get("project_id") or ""
        if not self.project_id:
            raise SettingsError("setting fcm.project_id: empty, and the service-account file "
                                "names no project_id")
        try:
            self.credentials = service_account.Credentials.from_service_account_info(
                info, scopes=[SCOPE])
        except (ValueError, KeyError) as exc:
            raise SettingsError(f"setting fcm.service_account_file: {exc}") from None
        self.settings = settings
        self.public_url = public_url
        self.url = f"{settings.base_url.rstrip('/')}/v1/projects/{self.project_id}/messages:send"
        self.http = httpx.Client(timeout=settings.timeout_seconds)
        self._token_lock = threading.Lock()  # google-auth credentials are not thread-safe

    # -- OAuth --------------------------------------------------------------------------

    def access_token(self, stale: str | None = None) -> str:
        """A valid access token; `stale` is one the server just refused (refresh unless another
        thread already did)."""
        with self._token_lock:
            c = self.credentials
            if not c.valid or (stale is not None and c.token == stale):
                try:
                    c.refresh(google.auth.transport.requests.Request())
                except google.auth.exceptions.RefreshError as exc:
                    # e.g. invalid_grant: a revoked key. Configuration; retried with backoff.
                    log.error("FCM: the service account cannot get an access token",
                              extra={"error": str(exc)[:200]})
                    raise TransientError(f"FCM OAuth refused: {str(exc)[:200]}") from exc
                except google.auth.exceptions.TransportError as exc:
                    raise TransientError("FCM OAuth token endpoint unreachable") from exc
            return c.token

    # -- sending ------------------------------------------------------------------------

    def body(self, token: str, message: Message) -> dict:
        title, text = common.push_text(message.payload)
        data = common.push_data(message.delivery_id, message.payload, self.public_url)
        urgent = message.payload.get("kind") == "task_due"
        return {"message": {
            "token": token,
            "notification": {"title": title, "body": text},
            "data": data,
            "android": {
                "priority": "high" if urgent else "normal",
                "collapse_key": f"delivery-{message.delivery_id}",
                # A copy resent after a crash replaces the first on the phone.
                "notification": {"tag": data["tag"]},
            },
            "apns": {
                "headers": {"apns-priority": "10" if urgent else "5",
                            "apns-collapse-id": data["tag"]},
                "payload": {"aps": {"sound": "default",
                                    "thread-id": f"task-{data['task_id']}"}},
            },
        }}

    def _post(self, body: dict) -> httpx.Response:
        token = self.access_token()
        for attempt in (1, 2):
            try:
                resp = self.http.post(self.url, json=body,
                                      headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                raise TransientError(f"FCM unreachable: {type(exc).__name__}") from exc
            if resp.status_code == 401 and attempt == 1:
                token = self.access_token(stale=token)
                continue
            return resp
        return resp

    def push(self, device: Device, message: Message) -> None:
        resp = self._post(self.body(device.token, message))
        if resp.status_code == 200:
            return
        status, code, field_errors = resp.status_code, "", []
        try:
            error = resp.json().get("error", {})
            text = str(error.get("message", ""))[:200]
            for detail in error.get("details", []):
                if detail.get("@type") == FCM_ERROR:
                    code = detail.get("errorCode", "")
                elif detail.get("@type") == BAD_REQUEST:
                    field_errors += [v.get("field") for v in detail.get("fieldViolations", [])]
            code = code or error.get("status", "")
        except (ValueError, AttributeError):
            text = resp.text[:200]
        # Only FCM's explicit word removes a device: a bare 404 may be a wrong project id.
        if code in DEAD_TOKEN or (status == 400 and "message.token" in field_errors):
            raise Gone()
        reason = f"FCM answered {status} {code}: {text}"
        if status in (401, 403):
            log.error("FCM refused the service account", extra={"status": status, "code": code})
            raise TransientError(reason)  # configuration: retried so pushes flow once fixed
        if status == 429 or status >= 500:
            raise TransientError(reason)
        raise PermanentError(reason)

    def close(self) -> None:
        self.http.close()
