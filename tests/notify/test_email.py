"""The email channel against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
import email.policy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from reliability_studio.notify.channels.email import EmailSender, render_email
from reliability_studio.notify.delivery import (
    Delivered,
    Notification,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from tests.support.postgres import free_port

INCIDENT_ID = uuid.UUID("5b0d7a3e-4a59-4d35-9d1e-2f6c0b8c1a11")
ROOT = f"<incident-{INCIDENT_ID}@reliability-studio>"
SENDER = "studio@example.org"
ONCALL = "oncall@example.org"
REFUSED = "nobody@example.org"


def notification(**changes: object) -> Notification:
    fields: dict[str, object] = {
        "id": uuid.UUID("0f8e7c57-58b4-4a3f-9a41-7e5b6c4d3e21"),
        "event": "incident.updated",
        "occurred_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        "incident_id": INCIDENT_ID,
        "title": "Payment Service Down",
        "severity": "critical",
        "status": "open",
        "services": ["payments", "checkout"],
        "url": "https://studio.example/incidents/5b0d7a3e",
        "resource": {"id": str(INCIDENT_ID)},
    }
    fields.update(changes)
    return Notification(**fields)  # type: ignore[arg-type]


class Mailbox:
    """An aiosmtpd handler that keeps every message and refuses one address with 550."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str | None, list[str]]] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address == REFUSED:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler = Mailbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def send(port: int, recipients: list[str], n: Notification | None = None, **options: Any) -> Any:
    sender = EmailSender("127.0.0.1", port, timeout_seconds=5, **options)
    return asyncio.run(sender.send(SENDER, recipients, n or notification()))


def test_a_sent_message_arrives_with_subject_and_both_alternatives(
    mailbox: tuple[Mailbox, int],
) -> None:
    handler, port = mailbox
    assert send(port, [ONCALL]) == Delivered(status_code=250)
    assert handler.envelopes == [(SENDER, [ONCALL])]
    [message] = handler.messages
    assert message["Subject"] == "[CRITICAL] Payment Service Down (open)"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",))
    rich = message.get_body(preferencelist=("html",))
    assert plain is not None
    assert rich is not None
    assert "Services: payments, checkout" in plain.get_content()
    assert "<h2>Payment Service Down</h2>" in rich.get_content()


def test_a_follow_up_threads_to_the_incidents_first_message(
    mailbox: tuple[Mailbox, int],
) -> None:
    handler, port = mailbox
    send(port, [ONCALL])
    [message] = handler.messages
    # Long headers may be folded on the wire: compare without the folding whitespace.
    assert message["Message-ID"].strip() == f"<{notification().id}@reliability-studio>"
    assert message["In-Reply-To"].strip() == ROOT
    assert message["References"].strip() == ROOT


def test_the_first_message_about_an_incident_is_the_thread_root() -> None:
    message = render_email(
        notification(event="incident.created"), sender=SENDER, recipients=[ONCALL]
    )
    assert message["Message-ID"] == ROOT
    assert message["In-Reply-To"] is None


def test_a_notification_without_incident_does_not_thread() -> None:
    message = render_email(
        notification(event="slo.burn_rate", incident_id=None), sender=SENDER, recipients=[ONCALL]
    )
    assert message["Message-ID"] == f"<{notification().id}@reliability-studio>"
    assert message["References"] is None


def test_a_refused_recipient_is_permanent(mailbox: tuple[Mailbox, int]) -> None:
    handler, port = mailbox
    with pytest.raises(PermanentDeliveryError, match="550"):
        send(port, [REFUSED])
    assert handler.messages == []


def test_one_refused_recipient_among_accepted_ones_still_delivers(
    mailbox: tuple[Mailbox, int],
) -> None:
    handler, port = mailbox
    assert send(port, [ONCALL, REFUSED]) == Delivered(status_code=250)
    assert handler.envelopes == [(SENDER, [ONCALL])]


def test_a_server_that_is_down_is_retryable() -> None:
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        send(free_port(), [ONCALL])


def test_the_password_never_appears_in_errors_or_repr() -> None:
    password = "hunter2-smtp-pw"
    with pytest.raises(RetryableDeliveryError) as caught:
        send(free_port(), [ONCALL], username="studio", password=password)
    assert password not in str(caught.value)
    assert password not in repr(EmailSender("127.0.0.1", 25, password=password))


def test_auth_against_a_server_without_auth_is_a_permanent_configuration_error(
    mailbox: tuple[Mailbox, int],
) -> None:
    _, port = mailbox
    with pytest.raises(PermanentDeliveryError) as caught:
        send(port, [ONCALL], username="studio", password="hunter2-smtp-pw")
    assert "hunter2" not in str(caught.value)


def test_the_html_alternative_escapes_what_the_alert_wrote() -> None:
    n = notification(
        title='<script>alert("x")</script> & more',
        services=["<b>payments</b>"],
        url='https://studio.example/i?a=1&b="2"',
    )
    rich = render_email(n, sender=SENDER, recipients=[ONCALL]).get_body(preferencelist=("html",))
    assert rich is not None
    content = rich.get_content()
    assert "<script>" not in content
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in content
    assert "&lt;b&gt;payments&lt;/b&gt;" in content
    assert 'href="https://studio.example/i?a=1&amp;b=&quot;2&quot;"' in content


def test_a_title_cannot_inject_headers() -> None:
    n = notification(title="Down\r\nBcc: attacker@example.org")
    message = render_email(n, sender=SENDER, recipients=[ONCALL])
    assert message["Subject"] == "[CRITICAL] Down Bcc: attacker@example.org (open)"
    assert message["Bcc"] is None
