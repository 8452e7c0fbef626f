"""The Sender protocol every channel implements, and the errors that steer retries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    """A delivery as a sender sees it: who, on which channel, and the rendered payload."""

    delivery_id: int
    channel: str
    user_id: str
    recipient: str
    payload: dict


class TransientError(Exception):
    """Try again later (the server was down, refused for now, timed out)."""


class PermanentError(Exception):
    """This message can never be delivered (bad address, unknown device)."""


class Gone(Exception):
    """The push service no longer knows this target (subscription, device token): drop it."""


class Skipped(Exception):
    """There is nowhere to send it (no browser subscribed, no enabled device): not a failure."""


class Sender(Protocol):
    channel: str

    def send(self, message: Message) -> None:
        """Deliver, or raise TransientError / PermanentError. Must be safe to call twice for
        the same delivery_id (a crash between sending and recording the send repeats it)."""
        ...
