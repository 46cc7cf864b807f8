"""Monthly statements: a Jalali month (Asia/Tehran) of a customer's ledger entries.

``build_statement`` is pure: the statement's total is the sum of its entries' amounts, and its closing
balance the opening balance plus that total. ``charges_rials`` sums the positive entries and
``credits_rials`` the negative ones (payments, reversals of charges), so charges + credits = total.
A statement is stored (in rials) by ``generate_statement``; customers see it through ``statement_fa`` (toman,
Persian digits, Jalali dates), finance through ``statement_csv`` (rials).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import jdatetime
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.accounts import Principal, Role, require_role, scope
from monitor.errors import NotFound
from monitor.models import Customer
from tickets.calendar import TEHRAN
from tickets.ledger.entries import balance
from tickets.ledger.errors import LedgerInput
from tickets.ledger.models import LedgerEntry, Statement
from tickets.sla import jalali_month_span

__all__ = ["Line", "StatementView", "build_statement", "month_statement", "read_statement",
           "generate_statement", "generate_month", "previous_jalali_month", "STATEMENT_ROLES"]

STATEMENT_ROLES = frozenset({Role.FINANCE, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Line:
    entry_id: int
    posted_at: datetime
    kind: str
    amount_rials: int
    description: str = ""
    ticket_id: int | None = None
    visit_id: int | None = None
    reference: str | None = None
    reverses_id: int | None = None


@dataclass(frozen=True, slots=True)
class StatementView:
    customer_id: int
    jalali_year: int
    jalali_month: int
    period_start: datetime
    period_end: datetime
    opening_rials: int
    lines: tuple[Line, ...]

    @property
    def total_rials(self) -> int:
        return sum(line.amount_rials for line in self.lines)

    @property
    def charges_rials(self) -> int:
        return sum(line.amount_rials for line in self.lines if line.amount_rials > 0)

    @property
    def credits_rials(self) -> int:
        return sum(line.amount_rials for line in self.lines if line.amount_rials < 0)

    @property
    def closing_rials(self) -> int:
        return self.opening_rials + self.total_rials


def line_of(e: LedgerEntry) -> Line:
    return Line(e.id, e.posted_at, e.kind, e.amount_rials, e.description or "", e.ticket_id, e.visit_id,
                e.reference, e.reverses_id)


def build_statement(customer_id: int, jalali_year: int, jalali_month: int, opening_rials: int,
                    entries: Iterable[Line]) -> StatementView:
    """The statement of the month from its entries (those posted inside the month, in posting order)."""
    start, end = month_span(jalali_year, jalali_month)
    lines = tuple(sorted((e for e in entries if start <= e.posted_at < end), key=lambda e: (e.posted_at,
                                                                                             e.entry_id)))
    return StatementView(customer_id, jalali_year, jalali_month, start, end, opening_rials, lines)


def previous_jalali_month(now: datetime) -> tuple[int, int]:
    """The Jalali month (Tehran time) before the one ``now`` falls in: the month a job run at the start of a
    month should store statements for."""
    local = jdatetime.date.fromgregorian(date=now.astimezone(TEHRAN).date())
    return (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)


def month_span(jalali_year: int, jalali_month: int) -> tuple[datetime, datetime]:
    if not 1 <= jalali_month <= 12 or not 1300 <= jalali_year <= 1600:
        raise LedgerInput("month", f"{jalali_year}/{jalali_month} is not a Jalali month")
    return jalali_month_span(jalali_year, jalali_month)


async def month_statement(session: AsyncSession, customer_id: int, jalali_year: int,
                          jalali_month: int) -> StatementView:
    start, end = month_span(jalali_year, jalali_month)
    opening = await balance(session, customer_id, before=start)
    rows = (await session.execute(select(LedgerEntry).where(
        LedgerEntry.customer_id == customer_id, LedgerEntry.posted_at >= start, LedgerEntry.posted_at < end)
    )).scalars().all()
    return build_statement(customer_id, jalali_year, jalali_month, opening, [line_of(e) for e in rows])


async def read_statement(sm: async_sessionmaker, principal: Principal, customer_id: int, jalali_year: int,
                         jalali_month: int) -> StatementView:
    """A statement for staff, or for the customer it belongs to (anyone else: ``NotFound``)."""
    async with sm() as session:
        found = (await session.execute(scope(select(Customer.id).where(Customer.id == customer_id), principal,
                                             Customer.id))).scalar_one_or_none()
        if found is None:
            raise NotFound(f"customer {customer_id}")
        return await month_statement(session, customer_id, jalali_year, jalali_month)


def _store(row: Statement | None, view: StatementView, now: datetime) -> Statement:
    row = row or Statement(customer_id=view.customer_id, jalali_year=view.jalali_year,
                           jalali_month=view.jalali_month)
    row.period_start, row.period_end = view.period_start, view.period_end
    row.opening_rials, row.charges_rials = view.opening_rials, view.charges_rials
    row.credits_rials, row.closing_rials = view.credits_rials, view.closing_rials
    row.entry_count, row.generated_at = len(view.lines), now
    return row


async def _generate(session: AsyncSession, customer_id: int, jy: int, jm: int, now: datetime) -> Statement:
    view = await month_statement(session, customer_id, jy, jm)
    row = (await session.execute(select(Statement).where(
        Statement.customer_id == customer_id, Statement.jalali_year == jy, Statement.jalali_month == jm)
    )).scalar_one_or_none()
    row = _store(row, view, now)
    session.add(row)
    return row


async def generate_statement(sm: async_sessionmaker, principal: Principal, customer_id: int, jalali_year: int,
                             jalali_month: int, *, now: datetime) -> Statement:
    """Store (or refresh) the customer's statement of the month in rials."""
    require_role(principal, STATEMENT_ROLES)
    async with sm.begin() as session:
        if await session.get(Customer, customer_id) is None:
            raise NotFound(f"customer {customer_id}")
        return await _generate(session, customer_id, jalali_year, jalali_month, now)


async def generate_month(sm: async_sessionmaker, jalali_year: int, jalali_month: int, *,
                         now: datetime) -> int:
    """Store the month's statement of every customer who has ledger entries (a job for the scheduler)."""
    async with sm.begin() as session:
        ids = (await session.execute(select(LedgerEntry.customer_id).distinct())).scalars().all()
        for cid in sorted(ids):
            await _generate(session, cid, jalali_year, jalali_month, now)
    return len(ids)
