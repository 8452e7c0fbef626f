"""The `mobile` channel: one delivery reaches each of the user's enabled phones, whichever push
service its app registered with (FCM or APNs), each once; a token the service calls dead
removes the device (SPEC §4)."""

from __future__ import annotations

import logging
from typing import Protocol

from syncd.channels import common
from syncd.channels.base import Message, Skipped
from syncd.channels.registry import Registry
from syncd.store.tables import Device

log = logging.getLogger(__name__)


class PushClient(Protocol):
    """One push service. `push` raises Gone / TransientError / PermanentError as base.py says."""

    provider: str

    def push(self, device: Device, message: Message) -> None: ...

    def close(self) -> None: ...


class MobileSender:
    channel = "mobile"

    def __init__(self, clients: list[PushClient], registry: Registry) -> None:
        self.clients = {client.provider: client for client in clients}
        self.registry = registry
        self.progress = common.Progress()

    def send(self, message: Message) -> None:
        # Devices of a provider this node has no settings for are left alone, not failed.
        devices = self.registry.enabled_devices(message.user_id, *self.clients)
        if not devices:
            raise Skipped("no enabled device")
        common.fan_out(message.delivery_id, devices, self.progress, "device",
                       lambda device: self.clients[device.provider].push(device, message),
                       self._drop)

    def _drop(self, device: Device) -> None:
        if self.registry.drop_device(device.id, device.token):
            log.info("push token dead, device removed",
                     extra={"device": device.id, "user": device.user_id,
                            "provider": device.provider})

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
