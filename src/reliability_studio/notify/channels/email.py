"""Email notifications over SMTP (aiosmtplib): many teams still page and track by mail.

Every message about one incident threads in mail clients: the `incident.created` message has
the incident's own Message-ID (`<incident-{id}@reliability-studio>`), and every later message
names it in `In-Reply-To` and `References`. Clients that thread by those headers (all common
ones) show the incident as one conversation, even when the first message was never received.

Each message has a plain-text and an HTML alternative; everything interpolated into the HTML is
escaped (titles come from alerts, and alerts come from anywhere).

As for every sender, this one sends once and classifies the outcome; the dispatcher retries.
5xx replies (a refused recipient, a refused sender, failed authentication) are permanent; 4xx
replies, connection failures and timeouts are retryable; a server lacking what the
configuration needs (AUTH, STARTTLS) is permanent. The password never appears in an
error or in `repr()`.
"""

from __future__ import annotations

import html
import logging
import re
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from reliability_studio.notify.delivery import (
    Delivered,
    Notification,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from reliability_studio.outbound.addresses import OutboundPolicy
from reliability_studio.outbound.resolver import connect_checked

logger = logging.getLogger(__name__)

MESSAGE_ID_DOMAIN = "reliability-studio"
SMTP_OK = 250


def incident_message_id(incident_id: object) -> str:
    """The Message-ID of an incident's first message, the root every follow-up threads to."""
    return f"<incident-{incident_id}@{MESSAGE_ID_DOMAIN}>"


def _one_line(text: str) -> str:
    """Header-safe text: no CR/LF (header injection), runs of whitespace collapsed."""
    return re.sub(r"\s+", " ", text).strip()


def subject_of(n: Notification) -> str:
    """`[CRITICAL] Payment Service Down (open)`: severity first, so inbox rules can sort."""
    parts = []
    if n.severity:
        parts.append(f"[{n.severity.upper()}]")
    parts.append(n.title)
    if n.status:
        parts.append(f"({n.status})")
    return _one_line(" ".join(parts))


def _facts(n: Notification) -> list[tuple[str, str]]:
    """The lines both alternatives show, in order."""
    facts: list[tuple[str, str]] = [("Event", n.event)]
    if n.severity:
        facts.append(("Severity", n.severity))
    if n.status:
        facts.append(("Status", n.status))
    if n.services:
        facts.append(("Services", ", ".join(n.services)))
    facts.append(("Occurred at", n.occurred_at.isoformat()))
    return facts


def _text_body(n: Notification) -> str:
    lines = [n.title, ""]
    lines += [f"{label}: {value}" for label, value in _facts(n)]
    if n.url:
        lines += ["", f"Open: {n.url}"]
    return "\n".join(lines) + "\n"


def _html_body(n: Notification) -> str:
    rows = "".join(
        f'<tr><th align="left">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>'
        for label, value in _facts(n)
    )
    link = ""
    if n.url and n.url.lower().startswith(("https://", "http://")):
        link = f'<p><a href="{html.escape(n.url, quote=True)}">Open in Reliability Studio</a></p>'
    return (
        "<!DOCTYPE html><html><body>"
        f"<h2>{html.escape(n.title)}</h2><table>{rows}</table>{link}"
        "</body></html>\n"
    )


def render_email(n: Notification, *, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The message for one notification, threaded under its incident's first message."""
    message = EmailMessage()
    message["Subject"] = subject_of(n)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(datetime.now(UTC))
    if n.incident_id is not None and n.event == "incident.created":
        message["Message-ID"] = incident_message_id(n.incident_id)
    else:
        message["Message-ID"] = f"<{n.id}@{MESSAGE_ID_DOMAIN}>"
        if n.incident_id is not None:
            root = incident_message_id(n.incident_id)
            message["In-Reply-To"] = root
            message["References"] = root
    # RFC 3834: machine-generated, so vacation auto-responders stay quiet.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Reliability-Studio-Event"] = n.event
    message.set_content(_text_body(n))
    message.add_alternative(_html_body(n), subtype="html")
    return message


class EmailSender:
    """Sends notifications through one SMTP server (one connection per message)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        start_tls: bool | None = None,
        timeout_seconds: float = 10,
        policy: OutboundPolicy | None = None,
    ) -> None:
        """`use_tls` is implicit TLS (port 465); `start_tls` None upgrades when offered.

        With a `policy` (the dispatcher always passes one), the server's address is checked
        and the connection made to the checked address (`DestinationDeniedError` otherwise);
        without, aiosmtplib connects to `host` itself.
        """
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.use_tls = use_tls
        self.start_tls = start_tls
        self.timeout_seconds = timeout_seconds
        self.policy = policy

    def __repr__(self) -> str:
        return (
            f"EmailSender(host={self.host!r}, port={self.port!r}, username={self.username!r}, "
            f"password={'<set>' if self._password else None}, use_tls={self.use_tls!r})"
        )

    def _scrub(self, text: str) -> str:
        """Server replies are quoted in errors; a server could echo what it was sent."""
        if self._password:
            text = text.replace(self._password, "<password>")
        return text

    def _classify(self, code: int, what: str) -> PermanentDeliveryError | RetryableDeliveryError:
        message = f"SMTP {self.host}:{self.port}: {self._scrub(what)}"
        if code >= 500:
            return PermanentDeliveryError(message)
        return RetryableDeliveryError(message)

    async def send(self, sender: str, recipients: Sequence[str], n: Notification) -> Delivered:
        """Send one notification; `Delivered(250)` once the server accepted the message.

        When the server accepts some recipients and refuses others the message is delivered
        (retrying would repeat it to those who got it); the refusals are logged.
        """
        if not recipients:
            raise PermanentDeliveryError("email channel has no recipients")
        message = render_email(n, sender=sender, recipients=recipients)
        sock: socket.socket | None = None
        try:
            if self.policy is not None:
                # Connected here, to a checked address; `hostname` still names the server
                # for TLS (SNI and certificate checks), and aiosmtplib wants no port then.
                sock = await connect_checked(
                    self.host, self.port, self.policy, timeout_seconds=self.timeout_seconds
                )
            refused, _reply = await aiosmtplib.send(
                message,
                sender=sender,
                recipients=list(recipients),
                hostname=self.host,
                port=None if sock is not None else self.port,
                sock=sock,
                username=self.username,
                password=self._password,
                use_tls=self.use_tls,
                start_tls=self.start_tls,
                timeout=self.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refusal.code for refusal in exc.recipients]
            detail = "; ".join(
                f"{refusal.recipient}: {refusal.code} {refusal.message}"
                for refusal in exc.recipients
            )
            # Permanent if any refusal is: retrying would not reach that recipient anyway.
            code = max(codes, default=550)
            raise self._classify(code, f"all recipients refused ({detail})") from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise self._classify(exc.code, f"authentication failed: {exc.code}") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise self._classify(exc.code, f"{exc.code} {exc.message}") from None
        except OSError as exc:
            # Connect errors, timeouts, a dropped connection (aiosmtplib's are OSErrors too):
            # the server may be back later.
            raise RetryableDeliveryError(
                f"SMTP {self.host}:{self.port} unreachable: {type(exc).__name__}: "
                f"{self._scrub(str(exc))}"
            ) from None
        except aiosmtplib.SMTPException as exc:
            # What is left is configuration: no AUTH or STARTTLS offered, no usable mechanism.
            raise PermanentDeliveryError(
                f"SMTP {self.host}:{self.port}: {self._scrub(str(exc))}"
            ) from None
        finally:
            if sock is not None:  # aiosmtplib closes it when done; this covers early failures
                sock.close()
        if refused:
            logger.warning(
                "email partly delivered",
                extra={"refused": {address: r.code for address, r in refused.items()}},
            )
        return Delivered(status_code=SMTP_OK)
