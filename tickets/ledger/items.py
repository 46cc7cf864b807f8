"""Rules 7-8: agreed out-of-scope work and packages sold, as priced items tied to a ticket."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker

from monitor.accounts import Principal, Role, require_role
from tickets.ledger.entries import post, require_rials
from tickets.ledger.errors import LedgerInput
from tickets.ledger.models import EntryKind, ItemKind, LedgerEntry, PricedItem
from tickets.models import Package, Scope, Ticket

__all__ = ["record_priced_item", "ITEM_ROLES"]

ITEM_ROLES = frozenset({Role.FINANCE, Role.NOC, Role.ADMIN})


def _kind(value) -> ItemKind:
    try:
        return ItemKind(value)
    except ValueError:
        raise LedgerInput("kind", "must be out_of_scope or package") from None


async def record_priced_item(sm: async_sessionmaker, principal: Principal, *, ticket_id: int, kind: str,
                             amount_rials: int, description: str = "", package_id: int | None = None,
                             now: datetime) -> tuple[PricedItem, LedgerEntry]:
    """Charge the ticket's customer for agreed work or a package (``item:<id>``)."""
    require_role(principal, ITEM_ROLES)
    kind = _kind(kind)
    require_rials(amount_rials, "amount_rials")
    async with sm.begin() as session:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            raise LedgerInput("ticket_id", f"no such ticket {ticket_id}")
        if kind == ItemKind.OUT_OF_SCOPE and ticket.scope == Scope.IN:
            # Rule 7: only work outside the support scope is charged; in-scope work is part of the service.
            raise LedgerInput("kind", f"ticket {ticket_id} is in scope: its work is not charged")
        if package_id is not None:
            package = await session.get(Package, package_id)
            if package is None or package.customer_id != ticket.customer_id:
                raise LedgerInput("package_id", f"package {package_id} is not this customer's")
        item = PricedItem(customer_id=ticket.customer_id, ticket_id=ticket_id, kind=kind, package_id=package_id,
                          description=description, amount_rials=amount_rials, recorded_by_id=principal.user_id,
                          recorded_at=now)
        session.add(item)
        await session.flush()
        entry, _ = await post(session, key=f"item:{item.id}", customer_id=item.customer_id,
                              kind=EntryKind(kind.value), amount_rials=amount_rials, now=now, item_id=item.id,
                              ticket_id=ticket_id, posted_by_id=principal.user_id, description=description)
    return item, entry
