"""Email over SMTP against a real (aiosmtpd) server on loopback: content in both languages,
N2 and N5 end to end through the REST API, retries without repeats, TLS and login."""

from __future__ import annotations

import email
import email.policy
import logging
from email.message import EmailMessage

import pytest

from syncd.channels.base import Message, PermanentError, TransientError
from syncd.channels.email import EmailSender, render
from syncd.settings import EmailSettings
from tests.channels.conftest import MakeApi, deliveries
from tests.channels.servers import password_checker, smtp_server
from tests.conftest import Api

FROM = "CRM Tasks <crm@example.com>"
PUBLIC = "https://notify.example.com"
LEAD = {"type": "lead", "id": "42", "url": "https://crm.example.com/leads/42"}


def email_api(make_api: MakeApi, port: int, **email_settings: object) -> Api:
    api = make_api(email={"smtp_host": "127.0.0.1", "smtp_port": port, "from_address": FROM,
                          **email_settings},
                   http={"public_url": PUBLIC})
    api.user("ann", name="Ann Smith", email="ann@example.com")
    api.user("bob", name="Bob Petrov", email="bob@example.com", locale="ru",
             timezone="Europe/Moscow")
    api.user("carol", name="Carol King", email="carol@example.com", locale="en",
             timezone="America/New_York")
    return api


def inbox(handler) -> list[EmailMessage]:
    return [email.message_from_bytes(m.data, policy=email.policy.default)
            for m in handler.messages]


def parts(msg: EmailMessage) -> tuple[str, str]:
    return (msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content())


# -- content ----------------------------------------------------------------------------


def test_new_task_email_in_english(make_api: MakeApi, smtp) -> None:
    controller, handler = smtp
    api = email_api(make_api, controller.port)
    api.task("t1", "ann", text="Call the client about the invoice", type="call",
             responsible_id="carol", due_at="2026-03-02T15:30:00+00:00", entity=LEAD)
    api.advance(seconds=0)

    [msg] = inbox(handler)
    [row] = deliveries(api, "email")
    assert (row["kind"], row["state"]) == ("task_assigned", "sent")
    assert handler.messages[0].rcpt_tos == ["carol@example.com"]
    assert handler.messages[0].mail_from == "crm@example.com"
    assert msg["Subject"] == "New task: Call the client about the invoice"
    assert msg["To"] == "carol@example.com"
    assert msg["From"] == FROM
    assert msg["Message-ID"] == f"<delivery-{row['id']}@example.com>"
    assert msg["Content-Language"] == "en"
    assert msg["Auto-Submitted"] == "auto-generated"
    text, html = parts(msg)
    for body in (text, html):
        assert "Ann Smith" in body  # who set it
        assert "Call the client about the invoice" in body
        assert "Call" in body  # the task's type
        # 15:30 UTC is 10:30 in New York (EST, before the March 8 DST change)
        assert "Monday, 2 March 2026, 10:30 (America/New_York)" in body
        assert "https://crm.example.com/leads/42" in body
        assert PUBLIC + "/" in body
    assert "Ann Smith set you a new task." in text
    assert "Lead 42: https://crm.example.com/leads/42" in text
    assert '<a href="https://crm.example.com/leads/42"' in html
    assert '<html lang="en">' in html


def test_due_email_in_russian_in_the_recipients_zone(make_api: MakeApi, smtp) -> None:
    controller, handler = smtp
    api = email_api(make_api, controller.port)
    api.task("t1", "ann", text="Позвонить клиенту по счёту", type="call",
             responsible_id="bob", due_at="2026-03-02T12:00:00+00:00", entity=LEAD)
    api.advance(seconds=0)
    api.advance(hours=2, minutes=55)  # task_due fires 5 minutes before the deadline (N4)
    api.advance(seconds=61)  # … and its email leaves after the grace period (N5)

    assigned, due = inbox(handler)
    assert assigned["Subject"] == "Новая задача: Позвонить клиенту по счёту"
    assert due["Subject"] == "Пора выполнить задачу: Позвонить клиенту по счёту (срок 15:00)"
    text, html = parts(due)
    for body in (text, html):
        assert "Позвонить клиенту по счёту" in body
        assert "Звонок" in body
        assert "понедельник, 2 марта 2026, 15:00 (Europe/Moscow)" in body  # 12:00 UTC in Moscow
        assert "Ann Smith" in body  # who set it
        assert "Сделка 42" in body
        assert "https://crm.example.com/leads/42" in body
    assert "Здравствуйте, Bob Petrov!" in text
    assert "Поставил:   Ann Smith" in text
    assert '<html lang="ru">' in html
    assert "Открыть в CRM" in html
    assert due["Content-Language"] == "ru"
    assert [r["kind"] for r in deliveries(api, "email")] == ["task_assigned", "task_due"]


def test_whole_day_task_says_all_day(make_api: MakeApi, smtp) -> None:
    controller, handler = smtp
    api = email_api(make_api, controller.port)
    api.task("t1", "ann", text="Send the contract", type="follow_up", responsible_id="carol",
             due_date="2026-03-04")
    api.advance(seconds=0)
    [msg] = inbox(handler)
    text, html = parts(msg)
    assert "Wednesday, 4 March 2026, all day" in text
    assert "Follow up: Send the contract" in text
    assert "Wednesday, 4 March 2026, all day" in html


def test_task_text_is_escaped_in_html(make_api: MakeApi, smtp) -> None:
    controller, handler = smtp
    api = email_api(make_api, controller.port)
    evil = '<img src=x onerror=alert(1)>'
    api.task("t1", "ann", text=evil, responsible_id="carol", due_at="2026-03-02T15:00:00+00:00")
    api.user("ann", name='<script>alert("ann")</script>')
    api.task("t2", "ann", text="Second", responsible_id="carol",
             due_at="2026-03-02T16:00:00+00:00")
    api.advance(seconds=0)

    first, second = inbox(handler)
    text, html = parts(first)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img" not in html
    assert evil in text  # plain text stays as typed
    assert first["Subject"] == f"New task: {evil}"
    _, html2 = parts(second)
    assert "<script>" not in html2
    assert "&lt;script&gt;" in html2


def test_render_keeps_only_http_links() -> None:
    payload = {"kind": "task_assigned", "locale": "en", "title": "New task", "body": "",
               "task_text": "x", "entity_url": "javascript:alert(1)", "timezone": "UTC"}
    _, text, html = render(payload)
    assert "javascript:" not in text and "javascript:" not in html


def test_long_multiline_text_gives_a_one_line_subject() -> None:
    payload = {"kind": "task_assigned", "locale": "en", "title": "New task", "body": "",
               "task_text": "Line one\nLine two " + "x" * 200, "timezone": "UTC"}
    subject, text, _ = render(payload)
    assert "\n" not in subject and len(subject) <= len("New task: ") + 80
    assert subject.startswith("New task: Line one Line two x")
    assert "Line one\nLine two" in text


# -- rules end to end -------------------------------------------------------------------


def test_self_assigned_task_sends_no_email_n2(make_api: MakeApi, smtp) -> None:
    controller, handler = smtp
    api = email_api(make_api, controller.port)
    api.task("t1", "ann", text="Note to self", responsible_id="ann",
             due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    assert [e["kind"] for e in api.entries("ann")] == ["task_assigned"]  # the center has it
    assert handler.messages == []
    assert deliveries(api, "email") == []


def test_due_email_skipped_when_read_in_the_app_n5(make_api: MakeApi, smtp) -> None:
    controller, handler = smtp
    api = email_api(make_api, controller.port)
    api.task("t1", "ann", text="Call", responsible_id="carol",
             due_at="2026-03-02T10:00:00+00:00")
    api.advance(seconds=0)
    assert len(handler.messages) == 1  # task_assigned
    api.advance(minutes=55)  # task_due in the center at 09:55
    due = next(e for e in api.entries("carol") if e["kind"] == "task_due")
    api.advance(seconds=30)
    token = api.token("carol")
    r = api.req("POST", f"/v1/users/carol/notifications/{due['id']}/read", token=token)
    assert r.status_code == 200, r.text
    api.advance(seconds=31)  # the grace period is over
    api.advance(minutes=10)
    assert len(handler.messages) == 1
    row = next(d for d in deliveries(api, "email") if d["kind"] == "task_due")
    assert row["state"] == "skipped" and "N5" in row["reason"]


def test_due_email_sent_once_when_not_read_n5(make_api: MakeApi, smtp) -> None:
    controller, handler = smtp
    api = email_api(make_api, controller.port)
    api.task("t1", "ann", text="Call", responsible_id="carol",
             due_at="2026-03-02T10:00:00+00:00")
    api.advance(minutes=55)
    api.advance(seconds=59)
    assert [m["Subject"] for m in inbox(handler)] == ["New task: Call"]  # not yet: grace
    api.advance(seconds=1)
    api.advance(minutes=30)
    api.advance(hours=3)
    assert [m["Subject"] for m in inbox(handler)] == [
        "New task: Call", "Time to do the task: Call (due 05:00)"]


# -- failures and retries ---------------------------------------------------------------


def test_refused_for_now_then_accepted_is_delivered_exactly_once(make_api: MakeApi,
                                                                  smtp) -> None:
    controller, handler = smtp
    api = email_api(make_api, controller.port)
    handler.rcpt_replies = ["451 4.3.0 try later", "421 4.7.0 too busy"]
    api.task("t1", "ann", text="Call", responsible_id="carol",
             due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    [row] = deliveries(api, "email")
    assert (row["state"], row["job_state"]) == ("pending", "pending")
    assert "451" in row["reason"]
    for _ in range(5):
        api.advance(seconds=30)  # past the backoff, several times
    [row] = deliveries(api, "email")
    assert (row["state"], row["attempts"], row["job_state"]) == ("sent", 3, "done")
    assert len(handler.messages) == 1
    api.advance(hours=1)
    assert len(handler.messages) == 1


def test_connection_refused_then_accepted(make_api: MakeApi) -> None:
    from tests.channels.servers import RecordingHandler

    handler = RecordingHandler()
    first = smtp_server(handler)
    port = first.port
    first.stop()  # nobody listens on the port now
    api = email_api(make_api, port)
    api.task("t1", "ann", text="Call", responsible_id="carol",
             due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    [row] = deliveries(api, "email")
    assert row["state"] == "pending" and "cannot connect" in row["reason"]

    controller = smtp_server(handler)  # the server is back (on a port of its own)
    try:
        sender = api.node.deliverer.senders["email"]
        sender.settings = sender.settings.model_copy(update={"smtp_port": controller.port})
        api.advance(seconds=30)
        [row] = deliveries(api, "email")
        assert (row["state"], row["attempts"]) == ("sent", 2)
        assert len(handler.messages) == 1
    finally:
        controller.stop()


def test_recipient_refused_for_good_fails_without_retry(make_api: MakeApi, smtp) -> None:
    controller, handler = smtp
    api = email_api(make_api, controller.port)
    handler.rcpt_replies = ["550 5.1.1 no such user"]
    api.task("t1", "ann", text="Call", responsible_id="carol",
             due_at="2026-03-02T15:00:00+00:00")
    api.advance(seconds=0)
    api.advance(minutes=10)
    [row] = deliveries(api, "email")
    assert (row["state"], row["attempts"], row["job_state"]) == ("failed", 1, "failed")
    assert "550" in row["reason"]
    assert handler.attempts == 1 and handler.messages == []


def test_sender_classifies_smtp_replies(smtp) -> None:
    controller, handler = smtp
    sender = EmailSender(EmailSettings(smtp_host="127.0.0.1", smtp_port=controller.port,
                                       from_address="crm@example.com"))
    msg = Message(7, "email", "carol", "carol@example.com",
                  {"kind": "task_assigned", "locale": "en", "title": "New task", "body": "",
                   "task_text": "x", "timezone": "UTC"})
    handler.data_replies = ["452 4.3.1 insufficient storage"]
    with pytest.raises(TransientError):
        sender.send(msg)
    handler.data_replies = ["554 5.7.1 rejected"]
    with pytest.raises(PermanentError):
        sender.send(msg)
    sender.send(msg)
    sender.send(msg)  # a repeat (crash before recording) carries the same Message-ID
    ids = {m["Message-ID"] for m in inbox(handler)}
    assert ids == {"<delivery-7@example.com>"}
    with pytest.raises(PermanentError):
        sender.send(Message(8, "email", "carol", "", msg.payload))
    sender.send(Message(9, "email", "carol", "почта@example.com", msg.payload))  # SMTPUTF8


def test_non_ascii_address_without_smtputf8_fails_for_good() -> None:
    from tests.channels.servers import RecordingHandler

    handler = RecordingHandler()
    controller = smtp_server(handler, enable_SMTPUTF8=False)
    try:
        sender = EmailSender(EmailSettings(smtp_host="127.0.0.1", smtp_port=controller.port,
                                           from_address="crm@example.com"))
        with pytest.raises(PermanentError, match="SMTPUTF8"):
            sender.send(Message(9, "email", "carol", "почта@example.com",
                                {"kind": "task_assigned", "locale": "en", "title": "t",
                                 "body": "", "timezone": "UTC"}))
    finally:
        controller.stop()


# -- TLS and login ----------------------------------------------------------------------


def test_starttls_with_login(make_api: MakeApi, cert, caplog) -> None:
    from tests.channels.servers import RecordingHandler

    handler = RecordingHandler()
    controller = smtp_server(handler, tls_context=cert.server_context(), require_starttls=True,
                             authenticator=password_checker("mailer", "s3cret-Pa55"),
                             auth_require_tls=True)
    try:
        api = email_api(make_api, controller.port, starttls=True, ca_file=str(cert.cert_file),
                        username="mailer", password="s3cret-Pa55")
        with caplog.at_level(logging.DEBUG):
            api.task("t1", "ann", text="Call", responsible_id="carol",
                     due_at="2026-03-02T15:00:00+00:00")
            api.advance(seconds=0)
        assert len(handler.messages) == 1
        assert "s3cret-Pa55" not in caplog.text

        # A wrong password is a configuration problem: retried, never "sent", never logged.
        sender = api.node.deliverer.senders["email"]
        sender.settings = sender.settings.model_copy(update={"password": "wrong-Pa55"})
        with caplog.at_level(logging.DEBUG):
            api.task("t2", "ann", text="Call again", responsible_id="carol",
                     due_at="2026-03-02T16:00:00+00:00")
            api.advance(seconds=0)
        row = deliveries(api, "email")[-1]
        assert row["state"] == "pending" and "login failed" in row["reason"]
        assert "wrong-Pa55" not in caplog.text and "wrong-Pa55" not in row["reason"]
    finally:
        controller.stop()


def test_starttls_rejects_an_untrusted_certificate(cert) -> None:
    from tests.channels.servers import RecordingHandler

    handler = RecordingHandler()
    controller = smtp_server(handler, tls_context=cert.server_context(), require_starttls=True)
    try:
        sender = EmailSender(EmailSettings(smtp_host="127.0.0.1", smtp_port=controller.port,
                                           starttls=True, from_address="crm@example.com"))
        with pytest.raises(TransientError, match="(?i)certificate"):
            sender.send(Message(1, "email", "carol", "carol@example.com",
                                {"kind": "task_assigned", "locale": "en", "title": "t",
                                 "body": "", "timezone": "UTC"}))
        assert handler.messages == []
    finally:
        controller.stop()


def test_implicit_tls(cert) -> None:
    from tests.channels.servers import RecordingHandler

    handler = RecordingHandler()
    controller = smtp_server(handler, ssl_context=cert.server_context())
    try:
        sender = EmailSender(EmailSettings(smtp_host="127.0.0.1", smtp_port=controller.port,
                                           tls=True, ca_file=str(cert.cert_file),
                                           from_address="crm@example.com"))
        sender.send(Message(1, "email", "carol", "carol@example.com",
                            {"kind": "task_assigned", "locale": "en", "title": "New task",
                             "body": "", "task_text": "Over TLS", "timezone": "UTC"}))
        [msg] = inbox(handler)
        assert msg["Subject"] == "New task: Over TLS"
    finally:
        controller.stop()


@pytest.mark.parametrize(("locale", "subject", "line"), [
    ("en", "Google Calendar disconnected", "Reconnect Google Calendar"),
    ("ru", "Google Календарь отключён", "Подключите Google Календарь"),
])
def test_calendar_disconnected_email(locale: str, subject: str, line: str) -> None:
    from syncd.domain import messages
    from syncd.domain.model import Kind

    title, body = messages.render(Kind.CALENDAR_DISCONNECTED, locale)
    payload = {"kind": "calendar_disconnected", "locale": locale, "title": title, "body": body,
               "task_id": "", "task_text": None, "timezone": "UTC", "user_name": "Bob"}
    got_subject, text, html = render(payload, PUBLIC)
    assert got_subject == subject
    assert line in text and line in html
    assert PUBLIC + "/" in text and f'href="{PUBLIC}/"' in html


def test_sender_is_safe_to_share_between_threads(smtp) -> None:
    from concurrent.futures import ThreadPoolExecutor

    controller, handler = smtp
    sender = EmailSender(EmailSettings(smtp_host="127.0.0.1", smtp_port=controller.port,
                                       from_address="crm@example.com"))

    def send(i: int) -> None:
        sender.send(Message(i, "email", "carol", f"user{i}@example.com",
                            {"kind": "task_assigned", "locale": "en", "title": "New task",
                             "body": "", "task_text": f"Task {i}", "timezone": "UTC"}))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(16)))
    got = {(m["To"], m["Subject"], m["Message-ID"]) for m in inbox(handler)}
    assert got == {(f"user{i}@example.com", f"New task: Task {i}",
                    f"<delivery-{i}@example.com>") for i in range(16)}
