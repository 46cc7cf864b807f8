"""Rule 19 in the ledger: fines' money, and the unpaid overdue fines that suspend support.

Decision (agreed with the desk's code): the desk keeps recording a fine in its ``fines`` table (ticket,
violation, due date, who), and in the same transaction posts it here as a ``fine`` entry keyed
``fine:<id>`` (so posting twice is harmless). The ledger is the source of truth for the money: a fine is
settled by payments that name it (``fine_id``), and cancelled by a reversal of its entry. A fine's
outstanding amount is therefore the plain sum of every entry carrying its ``fine_id`` (charge +, its
reversal -, payments -, a reversed payment +). ``fines.paid_at`` is kept by the desk as a convenience only;
the desk's suspension check (``tickets.fines.overdue_fine``) reads ``unpaid_overdue_fines`` from here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.ledger.entries import post
from tickets.ledger.models import EntryKind, LedgerEntry
from tickets.models import Fine

__all__ = ["UnpaidFine", "post_fine_entry", "pay_fine_entry", "fine_outstanding", "unpaid_overdue_fines"]


@dataclass(frozen=True, slots=True)
class UnpaidFine:
    fine_id: int
    ticket_id: int | None
    due_at: datetime
    outstanding_rials: int


async def post_fine_entry(session: AsyncSession, fine: Fine, *, now: datetime,
                          posted_by_id: int | None = None) -> LedgerEntry:
    """Post ``fine`` (already flushed, so it has an id) to the ledger, once."""
    entry, _ = await post(session, key=f"fine:{fine.id}", customer_id=fine.customer_id, kind=EntryKind.FINE,
                          amount_rials=fine.amount_rials, now=now, fine_id=fine.id, ticket_id=fine.ticket_id,
                          due_at=fine.due_at, posted_by_id=posted_by_id, description=f"fine {fine.id}")
    return entry


async def fine_outstanding(session: AsyncSession, fine_id: int) -> int:
    rows = (await session.execute(select(LedgerEntry.amount_rials).where(LedgerEntry.fine_id == fine_id))).all()
    return sum(r[0] for r in rows)


async def pay_fine_entry(session: AsyncSession, fine: Fine, *, reference: str, now: datetime,
                         posted_by_id: int | None = None) -> LedgerEntry | None:
    """Record a payment of what is still owed on ``fine`` (None if nothing is owed)."""
    owed = await fine_outstanding(session, fine.id)
    if owed <= 0:
        return None
    entry, _ = await post(session, key=f"payment:{reference}", customer_id=fine.customer_id,
                          kind=EntryKind.PAYMENT, amount_rials=-owed, now=now, fine_id=fine.id,
                          ticket_id=fine.ticket_id, reference=reference, posted_by_id=posted_by_id,
                          description=f"payment of fine {fine.id}")
    return entry


def _unpaid(rows, now: datetime) -> list[UnpaidFine]:
    owed: dict[int, int] = defaultdict(int)
    charge: dict[int, tuple] = {}
    for fine_id, kind, amount, due_at, ticket_id in rows:
        owed[fine_id] += amount
        if kind == EntryKind.FINE:
            charge[fine_id] = (due_at, ticket_id)
    out = [UnpaidFine(fid, charge[fid][1], charge[fid][0], owed[fid]) for fid in charge
           if owed[fid] > 0 and charge[fid][0] is not None and charge[fid][0] < now]
    return sorted(out, key=lambda u: (u.due_at, u.fine_id))


async def unpaid_overdue_fines(session: AsyncSession, customer_id: int, now: datetime) -> list[UnpaidFine]:
    """The customer's fines still owed past their due date, oldest due first (non-empty: suspended)."""
    stmt = select(LedgerEntry.fine_id, LedgerEntry.kind, LedgerEntry.amount_rials, LedgerEntry.due_at,
                  LedgerEntry.ticket_id).where(LedgerEntry.customer_id == customer_id,
                                               LedgerEntry.fine_id.is_not(None))
    return _unpaid((await session.execute(stmt)).all(), now)
