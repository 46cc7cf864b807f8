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
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from incidents.models import Audience, ChannelKind, NotificationChannel
from monitor.errors import InvalidInput
from monitor.models import Customer

__all__ = ["ChannelSpec", "parse_notification_channels", "sync_channels"]

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
