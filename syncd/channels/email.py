"""Email over SMTP: multipart plain text + HTML from the templates in syncd/templates/email/.

One connection per send (the sender is shared by worker threads and holds no connection).
Retries are the job queue's: a refusal "for now" (connection refused, timeouts, 4xx replies)
raises TransientError; a 5xx for the recipient or the message raises PermanentError. Every
email carries a Message-ID derived from the delivery id, so a copy resent after a crash between
sending and recording is recognisably the same message.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from datetime import UTC
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from syncd.channels import common
from syncd.channels.base import Message, PermanentError, TransientError
from syncd.clock import Clock, SystemClock
from syncd.settings import EmailSettings

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
SUBJECT_CHARS = 80


@cache
def _environment() -> Environment:
    # Autoescape everything but the plain-text parts: a task's text can't inject HTML.
    return Environment(loader=FileSystemLoader(TEMPLATES),
                       autoescape=lambda name: bool(name) and name.endswith(".html"),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                       keep_trailing_newline=True)


@cache
def _ehlo_name() -> str:
    return socket.getfqdn()


def context(payload: dict, public_url: str) -> dict:
    """What the templates see, worked out from a delivery's payload."""
    locale = common.locale_of(payload)
    kind = payload.get("kind") or ""
    due = common.deadline(payload)
    actor = payload.get("actor_name") or ""
    author = payload.get("author_name") or ""
    return {
        "locale": locale,
        "kind": kind,
        "title": payload.get("title") or "",
        "body": payload.get("body") or "",
        "user_name": payload.get("user_name") or "",
        "task_text": payload.get("task_text") or "",
        "headline": common.one_line(payload.get("task_text"), SUBJECT_CHARS),
        "task_type": common.task_type_label(payload.get("task_type"), locale),
        "deadline": due["text"],
        "due_time": due["time"],
        # Who set the task: whoever handed it over (N3) or created it; for task_completed the
        # actor is who completed it.
        "set_by": author if kind == "task_completed" else (actor or author),
        "completed_by": actor if kind == "task_completed" else "",
        "entity_label": common.entity_label(payload, locale),
        "entity_url": common.safe_link(payload.get("entity_url")),
        "center_url": common.safe_link(public_url.rstrip("/") + "/") if public_url else None,
    }


def render(payload: dict, public_url: str = "") -> tuple[str, str, str]:
    """(subject, plain text, HTML) in the recipient's locale."""
    ctx = context(payload, public_url)
    env = _environment()
    locale = ctx["locale"]
    subject = env.get_template(f"{locale}/subject.txt").render(ctx)
    text = env.get_template(f"{locale}/body.txt").render(ctx)
    html = env.get_template(f"{locale}/body.html").render(ctx)
    return " ".join(subject.split()), text, html


class EmailSender:
    channel = "email"

    def __init__(self, settings: EmailSettings, public_url: str = "",
                 clock: Clock | None = None) -> None:
        if not settings.smtp_host:
            raise ValueError("email.smtp_host is empty")
        self.settings = settings
        self.public_url = public_url
        self.clock = clock or SystemClock()
        name, address = parseaddr(settings.from_address)
        if "@" not in address:
            raise ValueError(f"email.from_address: no address in {settings.from_address!r}")
        self.from_name = name
        self.from_address = address
        self.domain = address.rsplit("@", 1)[1].strip("[]") or "localhost"

    def message_id(self, delivery_id: int) -> str:
        return f"<delivery-{delivery_id}@{self.domain}>"

    def build(self, message: Message) -> EmailMessage:
        subject, text, html = render(message.payload, self.public_url)
        msg = EmailMessage()
        local, _, domain = self.from_address.rpartition("@")
        msg["From"] = Address(self.from_name, local, domain)
        msg["To"] = message.recipient
        msg["Subject"] = subject
        msg["Date"] = format_datetime(self.clock.now().astimezone(UTC))
        msg["Message-ID"] = self.message_id(message.delivery_id)
        # Out-of-office replies and auto-responders stay quiet (RFC 3834).
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
        if message.payload.get("task_id"):
            msg["X-Syncd-Task"] = one_header(message.payload["task_id"])
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        msg["Content-Language"] = common.locale_of(message.payload)  # after: set_content drops it
        return msg

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file or None)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.tls:
            return smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, local_hostname=_ehlo_name(),
                                    timeout=s.timeout_seconds, context=self._tls_context())
        smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, local_hostname=_ehlo_name(),
                            timeout=s.timeout_seconds)
        try:
            if s.starttls:
                smtp.starttls(context=self._tls_context())
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: Message) -> None:
        if not message.recipient:
            raise PermanentError("no email address")
        try:
            msg = self.build(message)
        except (ValueError, TypeError) as exc:  # e.g. a recipient no header can carry
            raise PermanentError(f"cannot build the email: {exc}") from exc
        where = f"{self.settings.smtp_host}:{self.settings.smtp_port}"
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(f"SMTP {where}: cannot connect: {describe(exc)}") from exc
        try:
            try:
                if self.settings.username:
                    smtp.login(self.settings.username, self.settings.password)
                smtp.send_message(msg, from_addr=self.from_address,
                                  to_addrs=[message.recipient])
            except smtplib.SMTPNotSupportedError as exc:
                if "SMTPUTF8" not in str(exc):
                    raise TransientError(f"SMTP {where}: {describe(exc)}") from exc
                # an address with non-ASCII characters, and a server that can't take it
                raise PermanentError(f"SMTP {where}: {describe(exc)}") from exc
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()), (0, b""))
                raise classify(code, f"SMTP {where}: recipient refused: {code} {_text(text)}") \
                    from exc
            except smtplib.SMTPAuthenticationError as exc:
                # A configuration error: retried (with backoff) so mail flows once it is fixed.
                log.error("SMTP login failed; check email.username and email.password",
                          extra={"smtp": where, "code": exc.smtp_code})
                raise TransientError(f"SMTP {where}: login failed: {exc.smtp_code}") from exc
            except smtplib.SMTPSenderRefused as exc:
                # The server won't take mail from email.from_address: fix the setting; retried.
                raise TransientError(f"SMTP {where}: sender refused: {exc.smtp_code} "
                                     f"{_text(exc.smtp_error)}") from exc
            except smtplib.SMTPResponseException as exc:  # DATA, HELO and other replies
                raise classify(exc.smtp_code, f"SMTP {where}: {exc.smtp_code} "
                                              f"{_text(exc.smtp_error)}") from exc
            except (OSError, smtplib.SMTPException) as exc:  # disconnected, timed out, TLS
                raise TransientError(f"SMTP {where}: {describe(exc)}") from exc
        finally:
            _quit(smtp)
        log.info("email sent", extra={"delivery": message.delivery_id,
                                      "message_id": msg["Message-ID"]})

    def close(self) -> None:
        pass


def classify(code: int, reason: str) -> TransientError | PermanentError:
    """4xx (and anything odd) is "not now"; 5xx is "never" (RFC 5321 §4.2.1)."""
    return PermanentError(reason) if 500 <= code < 600 else TransientError(reason)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def one_header(value: str) -> str:
    return " ".join(str(value).split())[:200]


def _text(value: bytes | str) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(value.split())[:300]


def _quit(smtp: smtplib.SMTP) -> None:
    # The message was accepted (or refused) already; a broken goodbye changes nothing.
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
