"""Status-page webhooks: a visitor's URL that hears of incidents, updates and maintenance on the services it
chose, as signed JSON POSTs through the outbox (so retries with backoff are the dispatcher's).

Ownership is proven like an e-mail address's: the first POST to the URL (``event: subscription.confirm``)
carries a confirm link, ``confirm_url``, and nothing else is sent until someone who reads that URL's requests
POSTs to it (or opens it and presses the button). That first POST also carries ``signing_secret``, this
subscription's own key: every POST is signed ``X-Negahban-Signature: t=...,v1=HMAC-SHA256(key, "t.body")``
(``incidents.signed_webhook``, the scheme of our other webhooks), and the key is derived from the service's
``NEGAHBAN_WEBHOOK_SIGNING_SECRET`` and the subscription (never stored, different for every subscriber, so one
subscriber cannot forge notices to another).

The URL is a visitor's choice, so the request must not reach the company's own network (SSRF): the address
is checked when subscribing and again on every delivery with ``probes.allow.target_allowed`` (public
addresses only, unless inside ``NEGAHBAN_STATUS_WEBHOOK_ALLOW``). A name is resolved by a guarded resolver
that hands the connection only the addresses that pass, so a name that changes its answer between the check
and the POST (DNS rebinding) gains nothing; redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from incidents.errors import DeliveryFailed
from incidents.notifiers import Message
from incidents.signed_webhook import SignedWebhookNotifier
from monitor.errors import InvalidInput
from probes.allow import target_allowed
from probes.net import numeric_family

__all__ = ["MAX_URL", "WebhookRefused", "AddressRefused", "check_webhook_url", "check_reachable",
           "subscription_secret", "GuardedResolver", "StatusWebhookNotifier", "mask_url"]

MAX_URL = 500  # the address column's length
Resolve = Callable[[str], Awaitable[list[str]]]


class WebhookRefused(InvalidInput):
    """A URL that cannot be subscribed; ``fa`` says why in Persian, for the visitor."""

    def __init__(self, reason: str, fa: str, field: str = "url") -> None:
        super().__init__(field, reason)
        self.fa = fa


class AddressRefused(OSError):
    """A webhook's host resolves only to addresses the guard refuses."""


_BAD_URL = "نشانی وب‌هوک درست نیست؛ مانند https://example.com/hook بنویسید."
_NOT_PUBLIC = "این نشانی به شبکهٔ داخلی یا نشانی غیرعمومی می‌رسد و پذیرفته نمی‌شود."


def check_webhook_url(url: str) -> str:
    """The URL as stored (trimmed), or ``WebhookRefused``: one absolute http(s) URL in ASCII, with a host, no
    user name or password, no fragment, at most ``MAX_URL`` characters. Addresses are checked apart
    (``check_reachable``), since a name needs resolving."""
    raw = (url or "").strip()
    if not raw:
        raise WebhookRefused("required", "نشانی وب‌هوک را بنویسید.")
    if len(raw) > MAX_URL:
        raise WebhookRefused(f"longer than {MAX_URL} characters", "نشانی وب‌هوک بیش از اندازه بلند است.")
    if not raw.isascii() or any(ord(ch) <= 0x20 or ord(ch) == 0x7f for ch in raw):
        raise WebhookRefused("must be one URL in ASCII, without spaces or control characters", _BAD_URL)
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise WebhookRefused("not a URL", _BAD_URL) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("must be an http:// or https:// URL with a host", _BAD_URL)
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise WebhookRefused("must carry no user name, password or fragment", _BAD_URL)
    if port == 0:
        raise WebhookRefused("port 0", _BAD_URL)
    return raw


async def system_resolve(host: str) -> list[str]:
    infos = await ThreadedResolver().resolve(host, 0, socket.AF_UNSPEC)
    return [i["host"] for i in infos]


async def check_reachable(url: str, allowed: list, resolve: Resolve = system_resolve) -> None:
    """Refuse (``WebhookRefused``) a URL whose host is, or resolves to, an address outside the public
    internet and ``allowed``: every address it resolves to must pass, not just one."""
    host = urlsplit(url).hostname or ""
    if numeric_family(host):
        addresses = [host]
    else:
        try:
            addresses = await resolve(host)
        except OSError:
            raise WebhookRefused(f"{host} does not resolve", "نام میزبان این نشانی پیدا نشد.") from None
    if not addresses or not all(target_allowed(a, allowed) for a in addresses):
        raise WebhookRefused(f"{host} is not a public address and not inside NEGAHBAN_STATUS_WEBHOOK_ALLOW",
                             _NOT_PUBLIC)


def subscription_secret(master: bytes, subscription_id: int, address: str) -> str:
    """The key a subscription's POSTs are signed with: HMAC-SHA256 of the service's secret over the
    subscription's id and URL (the same for every delivery, different for every subscriber)."""
    return hmac.new(master, f"status-webhook:{subscription_id}:{address}".encode(), hashlib.sha256).hexdigest()


def mask_url(url: str) -> str:
    """``https://hooks.example.com/…``: enough for its owner to recognise it, not its path (a token may be
    in it)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…"


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses ``target_allowed`` passes (``AddressRefused`` if none)."""

    def __init__(self, allowed: list, inner: AbstractResolver | None = None) -> None:
        self.allowed, self.inner = allowed, inner or ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        found = [r for r in await self.inner.resolve(host, port, family) if target_allowed(r["host"], self.allowed)]
        if not found:
            raise AddressRefused(f"{host} resolves only to addresses a status webhook may not reach")
        return found

    async def close(self) -> None:
        await self.inner.close()


class StatusWebhookNotifier:
    """Sends subscribers' notices (channel kind ``status_webhook``) signed with each subscription's own key,
    through its own HTTP session whose resolver is guarded; an address the guard refuses is a permanent
    failure (the subscriber's channel is disabled, not retried)."""

    def __init__(self, master_secret: str, allowed: list, now: Callable[[], datetime],
                 timeout_s: float = 10.0) -> None:
        if not master_secret:
            raise ValueError("status webhooks need NEGAHBAN_WEBHOOK_SIGNING_SECRET")
        self.master, self.allowed, self.now, self.timeout_s = master_secret.encode(), allowed, now, timeout_s
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                resolver=GuardedResolver(self.allowed), use_dns_cache=False))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, address: str, message: Message) -> None:
        host = urlsplit(address).hostname or ""
        if numeric_family(host) and not target_allowed(host, self.allowed):
            raise DeliveryFailed(f"{host} is an address a status webhook may not reach", permanent=True)
        sub_id = message.data.get("subscription_id")
        if not isinstance(sub_id, int):
            raise DeliveryFailed("a status webhook notice without its subscription", permanent=True)
        secret = subscription_secret(self.master, sub_id, address)
        data: dict[str, Any] = dict(message.data)
        if data.get("event") == "subscription.confirm":
            data["signing_secret"] = secret  # only the URL's owner reads it, with the confirm link
        signed = SignedWebhookNotifier(self._http(), secret, self.now, self.timeout_s, allow_redirects=False)
        try:
            await signed.send(address, Message(message.subject, message.body, data, message.idempotency_key))
        except DeliveryFailed as exc:
            cause = exc.__cause__
            if isinstance(cause, aiohttp.ClientConnectorError) and isinstance(cause.os_error, AddressRefused):
                raise DeliveryFailed(str(cause.os_error), permanent=True) from cause
            raise
