"""Notification channels named in settings, written to ``notification_channels`` at start-up.

``NEGAHBAN_NOTIFICATION_CHANNELS`` lists them like the status page's support channels
(``"label: value; ..."``), one per ``;``:

    noc-pd: pagerduty noc env:PAGERDUTY_ROUTING_KEY; noc-bale: bale noc 4528861; acme-sms: kavenegar customer=acme 09121234567

that is ``name: kind audience address`` where audience is ``noc``, ``escalation`` or ``customer=<customer name>``.
A channel is created or updated by name; one whose kind or address changed is enabled again (a fixed
address is the usual answer to a permanent failure), and channels the list does not name are left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from incidents.models import Audience, ChannelKind, NotificationChannel
from incidents.secrets import is_reference
from monitor.errors import InvalidInput, NotFound
from monitor.models import Customer

__all__ = ["ChannelSpec", "parse_notification_channels", "sync_channels", "parse_channel", "add_channel",
           "set_channel_enabled", "masked_address", "list_channels"]

log = logging.getLogger("negahban.notify")


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    name: str
    kind: str
    audience: str
    address: str
    customer: str | None = None


def _field(i: int, name: str) -> str:
    return f"notification_channels[{i}].{name}"


def _one(i: int, part: str) -> ChannelSpec:
    name, sep, rest = part.partition(":")
    words = rest.split(maxsplit=2)
    if not sep or not name.strip() or len(words) != 3:
        raise InvalidInput(_field(i, "entry"), f"{part.strip()!r}: expected 'name: kind audience address'")
    kind, audience, address = words
    if kind not in set(ChannelKind):
        raise InvalidInput(_field(i, "kind"), f"{kind!r} is not one of {', '.join(ChannelKind)}")
    customer = None
    if audience.startswith("customer="):
        audience, customer = Audience.CUSTOMER.value, audience.removeprefix("customer=")
    elif audience not in (Audience.NOC, Audience.ESCALATION):
        raise InvalidInput(_field(i, "audience"), f"{audience!r}: expected noc, escalation or customer=<name>")
    if kind == ChannelKind.WEBHOOK and urlsplit(address).scheme not in ("http", "https"):
        raise InvalidInput(_field(i, "address"), "a webhook's address must be an http:// or https:// URL")
    return ChannelSpec(name.strip(), kind, audience, address, customer)


def parse_notification_channels(text: str) -> list[ChannelSpec]:
    """Parse the setting; a bad entry raises ``InvalidInput`` naming ``notification_channels[i].field``."""
    specs = [_one(i, part) for i, part in enumerate(p for p in text.split(";") if p.strip())]
    names = [s.name for s in specs]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InvalidInput(_field(i, "name"), f"{name!r} is named twice")
    return specs


async def sync_channels(sessionmaker: async_sessionmaker, specs: list[ChannelSpec]) -> int:
    """Create or update the named channels; return how many were created or changed."""
    changed = 0
    async with sessionmaker() as session, session.begin():
        for i, spec in enumerate(specs):
            customer_id = None
            if spec.customer is not None:
                customer_id = (await session.execute(select(Customer.id).where(Customer.name == spec.customer))
                               ).scalar_one_or_none()
                if customer_id is None:
                    raise InvalidInput(_field(i, "audience"), f"no customer named {spec.customer!r}")
            row = (await session.execute(select(NotificationChannel).where(NotificationChannel.name == spec.name))
                   ).scalar_one_or_none()
            if row is None:
                session.add(NotificationChannel(name=spec.name, kind=spec.kind, address=spec.address,
                                                audience=spec.audience, customer_id=customer_id))
                changed += 1
                continue
            if (row.kind, row.address) != (spec.kind, spec.address):
                row.enabled, row.disabled_reason, row.disabled_at = True, "", None
            new = (spec.kind, spec.address, spec.audience, customer_id)
            if (row.kind, row.address, row.audience, row.customer_id) != new:
                row.kind, row.address, row.audience, row.customer_id = new
                changed += 1
    log.info("channels_synced named=%s changed=%s", len(specs), changed)
    return changed


# One channel at a time (the admin's page): the same checks as the setting's entries.

def parse_channel(name: str, kind: str, audience: str, address: str) -> ChannelSpec:
    """Validate one channel exactly as an entry of ``NEGAHBAN_NOTIFICATION_CHANNELS``; a bad one raises
    ``InvalidInput`` whose field is ``name``, ``kind``, ``audience`` or ``address``."""
    name, kind, audience, address = (v.strip() for v in (name, kind, audience, address))
    if not name or ":" in name or ";" in name or len(name) > 100:
        raise InvalidInput("name", "a name of up to 100 characters without ':' or ';'")
    if not address or ";" in address:
        raise InvalidInput("address", "an address without ';'")
    if not kind or not audience or len(kind.split()) != 1 or len(audience.split()) != 1:
        raise InvalidInput("kind" if len(kind.split()) != 1 else "audience", "one word")
    try:
        (spec,) = parse_notification_channels(f"{name}: {kind} {audience} {address}")
    except InvalidInput as bad:
        raise InvalidInput(bad.field.rpartition(".")[2], bad.reason) from None
    return spec


async def add_channel(sessionmaker: async_sessionmaker, spec: ChannelSpec) -> NotificationChannel:
    """Create the channel ``spec``; a name in use or an unknown customer is refused naming the field."""
    async with sessionmaker.begin() as session:
        customer_id = None
        if spec.customer is not None:
            customer_id = (await session.execute(select(Customer.id).where(Customer.name == spec.customer))
                           ).scalar_one_or_none()
            if customer_id is None:
                raise InvalidInput("audience", f"no customer named {spec.customer!r}")
        if (await session.execute(select(NotificationChannel.id).where(NotificationChannel.name == spec.name))
                ).first() is not None:
            raise InvalidInput("name", f"a channel named {spec.name!r} exists")
        row = NotificationChannel(name=spec.name, kind=spec.kind, address=spec.address, audience=spec.audience,
                                  customer_id=customer_id)
        session.add(row)
    log.info("channel_added name=%s kind=%s audience=%s", spec.name, spec.kind, spec.audience)
    return row


async def set_channel_enabled(sessionmaker: async_sessionmaker, channel_id: int, enabled: bool, *,
                              reason: str, now: datetime) -> None:
    """Enable a channel (clearing why it was off) or disable it for ``reason`` (its notices are skipped)."""
    async with sessionmaker.begin() as session:
        row = await session.get(NotificationChannel, channel_id)
        if row is None:
            raise NotFound(f"channel {channel_id}")
        if enabled:
            row.enabled, row.disabled_reason, row.disabled_at = True, "", None
        elif row.enabled:
            row.enabled, row.disabled_reason, row.disabled_at = False, reason[:1000], now
    log.info("channel_%s id=%s", "enabled" if enabled else "disabled", channel_id)


async def list_channels(sessionmaker: async_sessionmaker) -> list[tuple[NotificationChannel, str | None]]:
    """Every channel with its customer's name (None for NOC and escalation channels), by name."""
    async with sessionmaker() as session:
        rows = await session.execute(select(NotificationChannel, Customer.name)
                                     .outerjoin(Customer, Customer.id == NotificationChannel.customer_id)
                                     .order_by(NotificationChannel.name))
        return [(c, n) for c, n in rows.all()]


def masked_address(kind: str, address: str) -> str:
    """The address as a page may show it: a PagerDuty routing key given in clear is masked (an
    ``env:``/``file:`` reference is shown, it is not the key); a webhook's URL keeps only its scheme, host and
    port (tokens travel in its path, query or user part)."""
    if kind == ChannelKind.PAGERDUTY and not is_reference(address):
        return address[:4] + "…" if len(address) > 8 else "…"
    if kind == ChannelKind.WEBHOOK:
        url = urlsplit(address)
        host = url.hostname or ""
        port = f":{url.port}" if url.port else ""
        rest = url.path.strip("/") or url.query or url.fragment or url.username
        return f"{url.scheme}://{host}{port}" + ("/…" if rest else "")
    return address
