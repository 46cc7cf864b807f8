"""Notifiers: one class per channel kind, one method. A notifier delivers or raises ``DeliveryFailed`` whose
``permanent`` flag says whether a retry could ever help (a 404 webhook, a refused mailbox: no)."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

import aiohttp

from incidents.errors import DeliveryFailed

# The other channels, each a small class behind the same ``send``: incidents.sms (Kavenegar, Ghasedak, any
# HTTP gateway), incidents.messengers (Telegram, Bale), incidents.pagerduty, incidents.signed_webhook.
__all__ = ["Message", "Notifier", "WebhookNotifier", "EmailNotifier", "RecordingNotifier", "http_failure"]


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    body: str
    data: Mapping[str, Any] = field(default_factory=dict)
    # The same for every attempt at one notice (a retry after a crash too), so a receiver can drop a repeat.
    idempotency_key: str = ""


class Notifier(Protocol):
    async def send(self, address: str, message: Message) -> None:
        """Deliver ``message`` to ``address`` or raise ``DeliveryFailed``."""


def http_failure(status: int, text: str) -> DeliveryFailed:
    """Timeouts, rate limits and server errors may pass; any other 4xx will not."""
    transient = status >= 500 or status in (408, 425, 429)
    return DeliveryFailed(f"HTTP {status}: {text[:200]}", permanent=not transient)


async def _post_json(session: aiohttp.ClientSession, url: str, payload: Any, timeout_s: float,
                     headers: Mapping[str, str] | None = None) -> None:
    try:
        async with session.post(url, json=payload, headers=headers,
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            if resp.status >= 300:
                raise http_failure(resp.status, await resp.text())
    except aiohttp.InvalidURL as exc:
        raise DeliveryFailed(f"invalid URL {url!r}", permanent=True) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}", permanent=False) from exc


class WebhookNotifier:
    """POSTs the notice as JSON: ``{"subject", "body", ...data}``."""

    def __init__(self, session: aiohttp.ClientSession, timeout_s: float = 10.0) -> None:
        self.session, self.timeout_s = session, timeout_s

    async def send(self, address: str, message: Message) -> None:
        payload = {"subject": message.subject, "body": message.body, **message.data,
                   "idempotency_key": message.idempotency_key}
        await _post_json(self.session, address, payload, self.timeout_s,
                         {"Idempotency-Key": message.idempotency_key} if message.idempotency_key else None)


# Headers a notice may add to its mail (``data["mail_headers"]``): RFC 2369/8058 unsubscribe, nothing else.
MAIL_HEADERS = frozenset({"List-Unsubscribe", "List-Unsubscribe-Post"})


class EmailNotifier:
    """Sends through SMTP with the standard library, in a worker thread. A notice's ``mail_headers`` of
    ``MAIL_HEADERS`` are added; a value with a line break is refused for good (the email policy would raise
    anyway: no header can be injected through a notice)."""

    def __init__(self, host: str, port: int, sender: str, *, username: str | None = None,
                 password: str | None = None, starttls: bool = False, timeout_s: float = 10.0) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls, self.timeout_s = username, password, starttls, timeout_s

    async def send(self, address: str, message: Message) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self.sender, address, message.subject
        for name, value in (message.data.get("mail_headers") or {}).items():
            if name in MAIL_HEADERS:
                if "\r" in value or "\n" in value:
                    raise DeliveryFailed(f"header {name} has a line break", permanent=True)
                mail[name] = value
        mail.set_content(message.body)
        await asyncio.to_thread(self._send_sync, mail)

    def _send_sync(self, mail: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryFailed(f"recipient refused: {exc.recipients}",
                                 permanent=all(c >= 500 for c in codes)) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
                                 permanent=exc.smtp_code >= 500) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}", permanent=False) from exc


class RecordingNotifier:
    """Keeps what it was asked to send; for tests and dry runs. ``fail`` makes the next sends fail."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Message]] = []
        self.fail: list[DeliveryFailed] = []

    async def send(self, address: str, message: Message) -> None:
        if self.fail:
            raise self.fail.pop(0)
        self.sent.append((address, message))
