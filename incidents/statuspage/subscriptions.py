"""Visitors' e-mail subscriptions to the status page: subscribe (double opt-in), confirm, unsubscribe.

The contract, for the web layer above it:

- ``subscribe_email`` validates the address (``InvalidInput("email", ...)`` naming what is wrong, with a
  Persian reason in ``EmailRefused.fa``) and otherwise answers the same whatever the address's history, so
  the page cannot be used to learn who is subscribed. A new or unsubscribed address gets a pending
  subscription with a fresh random confirm token, of which only the SHA-256 is stored, and a confirmation
  notice in the outbox (its own channel, in the same transaction). A pending address gets a fresh token and
  mail at most once per ``RESEND_AFTER``; an active one gets nothing (a stranger cannot change it).
- ``confirm`` turns a pending subscription whose token is unexpired into an active one; ``look_up_confirm``
  only reads (a GET must not change anything: mail scanners open links).
- ``unsubscribe`` ends a subscription by its id and manage token (the one-click link of every notice) and
  disables its channel, so a notice already queued is skipped rather than sent.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidents.models import ChannelKind, NotificationChannel
from incidents.statuspage.fanout import SUBSCRIBER, WEBHOOK_KIND, enqueue_for
from incidents.statuspage.models import StatusSubscription, SubscriptionKind, SubscriptionState
from incidents.statuspage.notices import confirm_notice, public_name
from incidents.statuspage.webhooks import check_reachable, check_webhook_url, mask_url, system_resolve
from monitor.errors import InvalidInput
from monitor.models import Service

__all__ = ["CONFIRM_TTL", "RESEND_AFTER", "EmailRefused", "check_email", "token_digest", "subscribe_email",
           "subscribe_webhook", "look_up_confirm", "confirm", "look_up_manage", "unsubscribe", "LinkState"]

CONFIRM_TTL = timedelta(hours=48)
RESEND_AFTER = timedelta(minutes=10)
MAX_ADDRESS = 254  # RFC 5321's path limit less the angle brackets

# RFC 5322 atext for the local part (dot-atom, no quoted strings); LDH labels for the domain.
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_TLD = re.compile(r"^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


class EmailRefused(InvalidInput):
    """An address that cannot be subscribed; ``fa`` says why in Persian, for the visitor."""

    def __init__(self, reason: str, fa: str) -> None:
        super().__init__("email", reason)
        self.fa = fa


def check_email(address: str) -> str:
    """The address as stored (trimmed, lower-cased), or ``EmailRefused``: one plain ASCII address only, so
    nothing a visitor types can reach a mail header but the address itself."""
    raw = address or ""
    if any(ch in raw for ch in "\r\n") or any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in raw):
        raise EmailRefused("must be one address, without line breaks or control characters",
                           "فقط یک نشانی ایمیل، بدون شکستن خط، بنویسید.")
    text = raw.strip()
    if not text:
        raise EmailRefused("required", "نشانی ایمیل را بنویسید.")
    if len(text) > MAX_ADDRESS:
        raise EmailRefused(f"longer than {MAX_ADDRESS} characters", "نشانی ایمیل بیش از اندازه بلند است.")
    if not text.isascii():
        raise EmailRefused("must be written in Latin letters (internationalised addresses are not accepted)",
                           "نشانی ایمیل را با حروف لاتین بنویسید؛ نشانی با حروف فارسی یا دامنهٔ بین‌المللی "
                           "پذیرفته نمی‌شود.")
    if any(ch.isspace() for ch in text) or text.count("@") != 1:
        raise EmailRefused("must be one address of the form name@example.com",
                           "نشانی ایمیل درست نیست؛ مانند name@example.com بنویسید.")
    local, domain = text.split("@")
    labels = domain.lower().split(".")
    if (not local or len(local) > 64 or not _LOCAL.match(local) or len(labels) < 2
            or not all(_LABEL.match(label) for label in labels) or not _TLD.match(labels[-1])):
        raise EmailRefused("must be one address of the form name@example.com",
                           "نشانی ایمیل درست نیست؛ مانند name@example.com بنویسید.")
    return f"{local}@{domain}".lower()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _confirm_url(site_url: str, token: str) -> str:
    return f"{site_url}/status/confirm/{token}"


async def _channel(session: AsyncSession, sub: StatusSubscription) -> NotificationChannel:
    if sub.channel_id is not None:
        found = await session.get(NotificationChannel, sub.channel_id)
        if found is not None:
            found.address, found.enabled, found.disabled_reason, found.disabled_at = sub.address, True, "", None
            return found
    kind = ChannelKind.EMAIL if sub.kind == SubscriptionKind.EMAIL else WEBHOOK_KIND
    channel = NotificationChannel(name=f"status-subscriber-{sub.id}", kind=kind, address=sub.address,
                                  audience=SUBSCRIBER, enabled=True)
    session.add(channel)
    await session.flush()
    sub.channel_id = channel.id
    return channel


async def _send_confirmation(session: AsyncSession, sub: StatusSubscription, now: datetime,
                             new_token: Callable[[], str]) -> None:
    token = new_token()
    sub.confirm_sha256, sub.confirm_expires_at = token_digest(token), now + CONFIRM_TTL
    sub.confirm_sends, sub.confirm_sent_at = (sub.confirm_sends or 0) + 1, now
    await _channel(session, sub)
    names = [public_name(n) for n in (await session.execute(select(Service.display_name).where(
        Service.id.in_(sub.service_ids)).order_by(Service.id))).scalars()] if sub.service_ids else []
    notice = confirm_notice(_confirm_url(sub.site_url, token), sub.confirm_expires_at, names)
    data = {"event": "subscription.confirm", "subscription_id": sub.id}
    if sub.kind == SubscriptionKind.WEBHOOK:  # a machine reads it: the link as a field, and what it covers
        data |= {"confirm_url": _confirm_url(sub.site_url, token), "components": names,
                 "expires_at": sub.confirm_expires_at.isoformat()}
    await enqueue_for(session, sub, f"confirm:{sub.confirm_sends}", notice, data, now)


async def subscribe_email(sessionmaker: async_sessionmaker, address: str, site_url: str, now: datetime, *,
                          new_token: Callable[[], str] = lambda: secrets.token_urlsafe(32)) -> bool:
    """Ask ``address`` to confirm a subscription to every public service. Return whether a confirmation
    mail was queued (for logs and tests; the visitor is told the same either way)."""
    return await _subscribe(sessionmaker, SubscriptionKind.EMAIL, check_email(address), [], site_url, now,
                            new_token)


async def _public_ids(sessionmaker: async_sessionmaker, service_ids: list[int]) -> list[int]:
    """``service_ids`` sorted, once each, if every one is a public service; else ``InvalidInput`` naming
    ``services``."""
    wanted = sorted(set(service_ids))
    async with sessionmaker() as session:
        found = set((await session.execute(select(Service.id).where(
            Service.id.in_(wanted), Service.public_status.is_(True)))).scalars()) if wanted else set()
    if set(wanted) - found:
        raise InvalidInput("services", "one of the chosen services is not on the status page")
    return wanted


async def subscribe_webhook(sessionmaker: async_sessionmaker, url: str, service_ids: list[int], site_url: str,
                            now: datetime, *, allowed: list, resolve=system_resolve,
                            new_token: Callable[[], str] = lambda: secrets.token_urlsafe(32)) -> bool:
    """Ask the owner of ``url`` to confirm a subscription to ``service_ids`` (none: every public service):
    the confirmation POST goes to the URL itself. Refused (``WebhookRefused``, ``InvalidInput``) before
    anything is written for a malformed URL, an address outside the public internet and ``allowed``, or a
    service not on the status page. Return whether a confirmation was queued."""
    clean = check_webhook_url(url)
    await check_reachable(clean, allowed, resolve)
    ids = await _public_ids(sessionmaker, service_ids)
    return await _subscribe(sessionmaker, SubscriptionKind.WEBHOOK, clean, ids, site_url, now, new_token)


async def _subscribe(sessionmaker: async_sessionmaker, kind: SubscriptionKind, clean: str, service_ids: list[int],
                     site_url: str, now: datetime, new_token: Callable[[], str]) -> bool:
    site_url = site_url.rstrip("/")
    for _attempt in range(2):  # a concurrent first subscription of the same address: the second one reads it
        try:
            async with sessionmaker() as session, session.begin():
                sub = (await session.execute(select(StatusSubscription).where(
                    StatusSubscription.kind == kind, StatusSubscription.address == clean))
                ).scalar_one_or_none()
                if sub is None:
                    sub = StatusSubscription(kind=kind, address=clean, service_ids=service_ids,
                                             state=SubscriptionState.PENDING, site_url=site_url,
                                             manage_token=secrets.token_urlsafe(32), confirm_sends=0,
                                             created_at=now)
                    session.add(sub)
                    await session.flush()
                elif sub.state == SubscriptionState.ACTIVE:
                    return False
                elif (sub.state == SubscriptionState.PENDING and sub.confirm_sent_at is not None
                      and now - sub.confirm_sent_at < RESEND_AFTER):
                    return False
                else:  # pending and due another mail, or coming back after unsubscribing
                    sub.state, sub.site_url, sub.unsubscribed_at = SubscriptionState.PENDING, site_url, None
                    sub.service_ids = service_ids
                await _send_confirmation(session, sub, now, new_token)
                return True
        except IntegrityError:
            continue
    return False


@dataclass(frozen=True, slots=True)
class LinkState:
    """What a confirm or unsubscribe link points at: ``pending``, ``active``, ``unsubscribed``, ``expired``
    or ``invalid`` (no such token: said the same way as an expired one to the visitor)."""

    state: str
    address: str = ""


def _mask(address: str) -> str:
    """``ali@example.com`` -> ``a**@example.com``: enough for its owner to recognise it (a URL: its host)."""
    if "://" in address:
        return mask_url(address)
    local, _, domain = address.partition("@")
    return f"{local[:1]}{'*' * max(2, len(local) - 1)}@{domain}"


async def _by_confirm(session: AsyncSession, token: str) -> StatusSubscription | None:
    if not token or len(token) > 200:
        return None
    return (await session.execute(select(StatusSubscription).where(
        StatusSubscription.confirm_sha256 == token_digest(token)))).scalar_one_or_none()


def _confirm_state(sub: StatusSubscription | None, now: datetime) -> str:
    if sub is None or sub.state == SubscriptionState.UNSUBSCRIBED:
        return "invalid"
    if sub.state == SubscriptionState.ACTIVE:
        return "active"
    if sub.confirm_expires_at is None or sub.confirm_expires_at <= now:
        return "expired"
    return "pending"


async def look_up_confirm(sessionmaker: async_sessionmaker, token: str, now: datetime) -> LinkState:
    """Where a confirm link stands; reads only."""
    async with sessionmaker() as session:
        sub = await _by_confirm(session, token)
        state = _confirm_state(sub, now)
        return LinkState(state, _mask(sub.address) if sub is not None and state != "invalid" else "")


async def confirm(sessionmaker: async_sessionmaker, token: str, now: datetime) -> LinkState:
    """Activate the pending subscription of ``token``; a second confirm finds it ``active`` and changes
    nothing."""
    async with sessionmaker() as session, session.begin():
        sub = await _by_confirm(session, token)
        state = _confirm_state(sub, now)
        if state == "pending":
            sub.state, sub.confirmed_at, state = SubscriptionState.ACTIVE, now, "active"
            await _channel(session, sub)
        return LinkState(state, _mask(sub.address) if sub is not None and state != "invalid" else "")


async def _by_manage(session: AsyncSession, sub_id: int, token: str) -> StatusSubscription | None:
    sub = await session.get(StatusSubscription, sub_id)
    if sub is None or not hmac.compare_digest(sub.manage_token.encode(), (token or "").encode()):
        return None
    return sub


async def look_up_manage(sessionmaker: async_sessionmaker, sub_id: int, token: str) -> LinkState:
    async with sessionmaker() as session:
        sub = await _by_manage(session, sub_id, token)
        return LinkState(sub.state, _mask(sub.address)) if sub is not None else LinkState("invalid")


async def unsubscribe(sessionmaker: async_sessionmaker, sub_id: int, token: str, now: datetime) -> LinkState:
    """End the subscription and disable its channel (queued notices are then skipped). Idempotent."""
    async with sessionmaker() as session, session.begin():
        sub = await _by_manage(session, sub_id, token)
        if sub is None:
            return LinkState("invalid")
        if sub.state != SubscriptionState.UNSUBSCRIBED:
            sub.state, sub.unsubscribed_at = SubscriptionState.UNSUBSCRIBED, now
            sub.confirm_sha256, sub.confirm_expires_at = None, None
            if sub.channel_id is not None:
                channel = await session.get(NotificationChannel, sub.channel_id)
                if channel is not None:
                    channel.enabled, channel.disabled_reason, channel.disabled_at = False, "unsubscribed", now
        return LinkState(SubscriptionState.UNSUBSCRIBED, _mask(sub.address))
