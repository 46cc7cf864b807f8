"""Reading the ledger for finance: entries filtered by customer and Jalali month, totals per customer, and the
fines still owed. The JSON API (``GET /api/v1/ledger/customers/{id}/entries``) and the ``/ledger`` page read
through here, so a filter means the same on both.

Totals are computed by the database over every matching entry (not only the page shown), in exact integer
rials: ``charges_rials`` sums the positive entries, ``credits_rials`` the negative ones (payments, reversals of
charges), and ``net_rials`` is their sum (positive: the customer owes that much for the filtered entries).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.accounts import Principal, require_role
from monitor.errors import NotFound
from monitor.models import Customer
from tickets.ledger.entries import balance
from tickets.ledger.models import LedgerEntry
from tickets.ledger.statements import STATEMENT_ROLES, month_span
from tickets.models import Fine

__all__ = ["CustomerTotal", "LedgerView", "OwedFine", "browse_ledger", "customer_entries", "owed_fines",
           "ledger_customers"]


@dataclass(frozen=True, slots=True)
class CustomerTotal:
    customer_id: int
    entries: int
    charges_rials: int
    credits_rials: int

    @property
    def net_rials(self) -> int:
        return self.charges_rials + self.credits_rials


@dataclass(frozen=True, slots=True)
class LedgerView:
    entries: list[LedgerEntry]  # the page, newest first
    count: int  # every matching entry
    totals: list[CustomerTotal]  # per customer, over every matching entry, by customer id
    names: dict[int, str]  # customer id -> display name (else the internal name)

    @property
    def net_rials(self) -> int:
        return sum(t.net_rials for t in self.totals)


@dataclass(frozen=True, slots=True)
class OwedFine:
    fine: Fine
    outstanding_rials: int
    overdue: bool


def _conditions(customer_id: int | None, month: tuple[int, int] | None) -> list:
    where = []
    if customer_id is not None:
        where.append(LedgerEntry.customer_id == customer_id)
    if month is not None:
        start, end = month_span(*month)
        where += [LedgerEntry.posted_at >= start, LedgerEntry.posted_at < end]
    return where


async def _names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = (await session.execute(select(Customer.id, Customer.name, Customer.display_name)
                                  .where(Customer.id.in_(ids)))).all()
    return {cid: display or name for cid, name, display in rows}


async def browse_ledger(sm: async_sessionmaker, principal: Principal, *, customer_id: int | None = None,
                        month: tuple[int, int] | None = None, limit: int = 50, offset: int = 0) -> LedgerView:
    """Entries matching the filters (a customer, a Jalali ``(year, month)`` in Tehran time), newest first,
    one page of them, and the totals per customer over all of them. An unknown customer is ``NotFound``."""
    require_role(principal, STATEMENT_ROLES)
    where = _conditions(customer_id, month)
    async with sm() as session:
        if customer_id is not None and await session.get(Customer, customer_id) is None:
            raise NotFound(f"customer {customer_id}")
        rows = list((await session.execute(
            select(LedgerEntry).where(*where).order_by(LedgerEntry.posted_at.desc(), LedgerEntry.id.desc())
            .limit(limit).offset(offset))).scalars().all())
        positive = func.coalesce(func.sum(case((LedgerEntry.amount_rials > 0, LedgerEntry.amount_rials),
                                               else_=0)), 0)
        negative = func.coalesce(func.sum(case((LedgerEntry.amount_rials < 0, LedgerEntry.amount_rials),
                                               else_=0)), 0)
        sums = (await session.execute(
            select(LedgerEntry.customer_id, func.count(LedgerEntry.id), positive, negative).where(*where)
            .group_by(LedgerEntry.customer_id).order_by(LedgerEntry.customer_id))).all()
        totals = [CustomerTotal(cid, int(n), int(pos), int(neg)) for cid, n, pos, neg in sums]
        names = await _names(session, {t.customer_id for t in totals} | {e.customer_id for e in rows})
    return LedgerView(rows, sum(t.entries for t in totals), totals, names)


async def customer_entries(session: AsyncSession, customer_id: int, *, limit: int,
                           offset: int = 0) -> tuple[list[LedgerEntry], int]:
    """One customer's entries, oldest first (``limit`` rows from ``offset``), and their balance in rials."""
    if await session.get(Customer, customer_id) is None:
        raise NotFound(f"customer {customer_id}")
    rows = list((await session.execute(select(LedgerEntry).where(LedgerEntry.customer_id == customer_id)
                                       .order_by(LedgerEntry.id).limit(limit).offset(offset))).scalars().all())
    return rows, await balance(session, customer_id)


async def owed_fines(sm: async_sessionmaker, principal: Principal, *, now: datetime,
                     customer_id: int | None = None) -> list[OwedFine]:
    """Fines with money still owed on them in the ledger (the sum of the entries naming each), oldest due
    first; ``overdue`` once past the due date (rule 19: the customer's support is then suspended)."""
    require_role(principal, STATEMENT_ROLES)
    owed = func.sum(LedgerEntry.amount_rials)
    stmt = (select(LedgerEntry.fine_id, owed).where(LedgerEntry.fine_id.is_not(None))
            .group_by(LedgerEntry.fine_id).having(owed > 0))
    if customer_id is not None:
        stmt = stmt.where(LedgerEntry.customer_id == customer_id)
    async with sm() as session:
        amounts = dict((await session.execute(stmt)).all())
        if not amounts:
            return []
        fines = (await session.execute(select(Fine).where(Fine.id.in_(amounts)))).scalars().all()
    out = [OwedFine(f, int(amounts[f.id]), f.due_at < now) for f in fines]
    return sorted(out, key=lambda o: (o.fine.due_at, o.fine.id))


async def ledger_customers(sm: async_sessionmaker, principal: Principal) -> list[tuple[int, str]]:
    """The customers who have ledger entries, by name: the choices of the page's customer filter."""
    require_role(principal, STATEMENT_ROLES)
    async with sm() as session:
        ids = set((await session.execute(select(LedgerEntry.customer_id).distinct())).scalars().all())
        names = await _names(session, ids)
    return sorted(names.items(), key=lambda kv: (kv[1], kv[0]))
