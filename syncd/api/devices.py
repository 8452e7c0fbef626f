"""Where push goes (SPEC §4): mobile devices and browsers' Web Push subscriptions, per user."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from syncd.api.auth import NodeDep, OwnUser
from syncd.api.schemas import Strict
from syncd.channels.registry import Registry
from syncd.errors import NotFound
from syncd.store.tables import Device

router = APIRouter(tags=["devices"])
DeviceId = Annotated[int, Path(ge=1, le=2**62)]
# an http(s) URL with a path; no spaces or control characters (PostgreSQL text can't hold NUL)
ENDPOINT = r"^https?://[^\s/\x00-\x1f\x7f]+/[^\s\x00-\x1f\x7f]*$"
_B64URL = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _b64url_bytes(length: int, first: int | None = None):
    def check(value: str) -> str:
        if not value or any(c not in _B64URL for c in value.rstrip("=")):
            raise ValueError("must be base64url")
        try:
            raw = base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
        except (binascii.Error, ValueError):
            raise ValueError("must be base64url") from None
        if len(raw) != length or (first is not None and raw[0] != first):
            raise ValueError(f"must encode {length} bytes"
                             + (" (an uncompressed P-256 point)" if first is not None else ""))
        return value.rstrip("=")
    return check


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="ignore")
    p256dh: Annotated[str, Field(max_length=128), AfterValidator(_b64url_bytes(65, 0x04))]
    auth: Annotated[str, Field(max_length=64), AfterValidator(_b64url_bytes(16))]


class WebPushIn(BaseModel):
    """The browser's PushSubscription.toJSON(), as it comes."""

    model_config = ConfigDict(extra="ignore")
    endpoint: Annotated[str, Field(max_length=2048, pattern=ENDPOINT)]
    expirationTime: int | None = None
    keys: PushKeys


class WebPushOut(BaseModel):
    id: int
    endpoint: str
    created_at: datetime


class PublicKeyOut(BaseModel):
    public_key: str = Field(description="The VAPID application server key (base64url), for "
                                        "pushManager.subscribe({applicationServerKey})")


class DeviceIn(Strict):
    provider: Literal["fcm", "apns"]
    token: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[\x21-\x7e]+$")]
    enabled: bool = True


class DevicePatch(Strict):
    enabled: bool


class DeviceOut(BaseModel):
    id: int
    provider: str
    token: str
    enabled: bool
    created_at: datetime


class DeviceList(BaseModel):
    items: list[DeviceOut]


def device_out(d: Device) -> DeviceOut:
    return DeviceOut(id=d.id, provider=d.provider, token=d.token, enabled=d.enabled,
                     created_at=d.created_at)


def registry(n: NodeDep) -> Registry:
    return Registry(n.db, n.clock)


# -- Web Push ---------------------------------------------------------------------------

@router.get("/v1/webpush/public-key", response_model=PublicKeyOut)
def public_key(n: NodeDep) -> PublicKeyOut:
    """Public by nature: the page needs it before the user subscribes."""
    sender = n.deliverer.senders.get("browser")
    key = getattr(sender, "application_server_key", None)
    if not key:
        raise NotFound("web push is not configured on this node")
    return PublicKeyOut(public_key=key)


@router.post("/v1/users/{id}/webpush", response_model=WebPushOut, status_code=201,
             responses={200: {"model": WebPushOut, "description": "already known: updated"}})
def subscribe(id: OwnUser, body: WebPushIn, n: NodeDep, response: Response) -> WebPushOut:
    row, created = registry(n).subscribe_webpush(
        id, body.endpoint, body.keys.p256dh, body.keys.auth,
        allow_http=n.settings.webpush.allow_http_endpoints)
    response.status_code = 201 if created else 200
    return WebPushOut(id=row.id, endpoint=row.endpoint, created_at=row.created_at)


@router.delete("/v1/users/{id}/webpush", status_code=204)
def unsubscribe(id: OwnUser, n: NodeDep,
                endpoint: Annotated[str, Query(max_length=2048, pattern=ENDPOINT)]) -> Response:
    registry(n).unsubscribe_webpush(id, endpoint)
    return Response(status_code=204)


# -- mobile devices ---------------------------------------------------------------------

@router.post("/v1/users/{id}/devices", response_model=DeviceOut, status_code=201,
             responses={200: {"model": DeviceOut, "description": "already known: updated"}})
def register_device(id: OwnUser, body: DeviceIn, n: NodeDep, response: Response) -> DeviceOut:
    row, created = registry(n).register_device(id, body.provider, body.token, body.enabled)
    response.status_code = 201 if created else 200
    return device_out(row)


@router.get("/v1/users/{id}/devices", response_model=DeviceList)
def list_devices(id: OwnUser, n: NodeDep) -> DeviceList:
    return DeviceList(items=[device_out(d) for d in registry(n).devices(id)])


@router.get("/v1/users/{id}/devices/{did}", response_model=DeviceOut)
def get_device(id: OwnUser, did: DeviceId, n: NodeDep) -> DeviceOut:
    return device_out(registry(n).get_device(id, did))


@router.patch("/v1/users/{id}/devices/{did}", response_model=DeviceOut)
def patch_device(id: OwnUser, did: DeviceId, body: DevicePatch, n: NodeDep) -> DeviceOut:
    return device_out(registry(n).set_device_enabled(id, did, body.enabled))


@router.delete("/v1/users/{id}/devices/{did}", status_code=204)
def delete_device(id: OwnUser, did: DeviceId, n: NodeDep) -> Response:
    registry(n).delete_device(id, did)
    return Response(status_code=204)

