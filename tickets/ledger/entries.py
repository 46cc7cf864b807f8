"""Posting to the append-only ledger: idempotent entries, reversals, balances.

Every posting carries an idempotency key. The key is UNIQUE in the database, so the same fact posted twice
(an approval that arrives twice, two approvals racing in two processes, a payment file imported again)
leaves exactly one entry: the insert runs in a savepoint, and a unique violation means "already posted".
On PostgreSQL the second of two concurrent inserts waits for the first transaction, then fails on the
constraint; nothing else needs a lock.

A posted entry is never edited or deleted (the mapper refuses it); a correction is a ``reversal`` entry whose
amount is the exact negation of the entry it reverses and whose ``reverses_id`` (also UNIQUE) points at it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.ledger.errors import AppendOnly, LedgerInput
from tickets.ledger.models import EntryKind, LedgerEntry

__all__ = ["post", "reverse", "live_entries", "balance", "require_rials"]

log = logging.getLogger("negahban.ledger")


def require_rials(value, field: str, *, positive: bool = True) -> int:
    """``value`` as a whole number of rials; floats, strings and booleans are refused by name."""
    if type(value) is not int:
        raise LedgerInput(field, "must be a whole number of rials (an integer, never a float)")
    if positive and value <= 0:
        raise LedgerInput(field, "must be greater than zero")
    if not positive and value < 0:
        raise LedgerInput(field, "must not be negative")
    return value


@event.listens_for(LedgerEntry, "before_update")
def _refuse_update(mapper, connection, target) -> None:
    raise AppendOnly(f"ledger entry {target.id} is posted; correct it with a reversal")


@event.listens_for(LedgerEntry, "before_delete")
def _refuse_delete(mapper, connection, target) -> None:
    raise AppendOnly(f"ledger entry {target.id} is posted; correct it with a reversal")


async def _by_key(session: AsyncSession, key: str) -> LedgerEntry | None:
    return (await session.execute(select(LedgerEntry).where(LedgerEntry.idempotency_key == key))
            ).scalar_one_or_none()


async def post(session: AsyncSession, *, key: str, customer_id: int, kind: EntryKind, amount_rials: int,
               now: datetime, **refs) -> tuple[LedgerEntry, bool]:
    """Post one entry unless ``key`` was posted already; return ``(entry, created)``.

    ``refs`` are the entry's other columns (``visit_id``, ``ticket_id``, ``description``, ...).
    """
    if type(amount_rials) is not int or amount_rials == 0:
        raise LedgerInput("amount_rials", "must be a non-zero whole number of rials")
    existing = await _by_key(session, key)
    if existing is not None:
        return existing, False
    entry = LedgerEntry(idempotency_key=key, customer_id=customer_id, kind=str(kind), amount_rials=amount_rials,
                        posted_at=now, **refs)
    try:
        async with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        # Someone else posted the same key between our look and our insert: theirs stands.
        if entry in session:
            session.expunge(entry)
        existing = await _by_key(session, key)
        if existing is None:
            raise
        log.info("ledger_post_deduplicated key=%s", key)
        return existing, False
    log.info("ledger_posted key=%s kind=%s customer=%s amount_rials=%s", key, kind, customer_id, amount_rials)
    return entry, True


async def reverse(session: AsyncSession, entry: LedgerEntry, *, now: datetime, reason: str = "",
                  posted_by_id: int | None = None) -> tuple[LedgerEntry, bool]:
    """Post the reversal of ``entry`` (once, however often it is asked)."""
    if entry.kind == EntryKind.REVERSAL:
        raise LedgerInput("entry_id", "a reversal is not reversed; post the original again instead")
    return await post(session, key=f"reversal:{entry.id}", customer_id=entry.customer_id,
                      kind=EntryKind.REVERSAL, amount_rials=-entry.amount_rials, now=now, reverses_id=entry.id,
                      visit_id=entry.visit_id, ticket_id=entry.ticket_id, incident_id=entry.incident_id,
                      install_id=entry.install_id, item_id=entry.item_id, fine_id=entry.fine_id,
                      description=reason, posted_by_id=posted_by_id)


def _reversed_ids():
    return select(LedgerEntry.reverses_id).where(LedgerEntry.reverses_id.is_not(None))


async def live_entries(session: AsyncSession, *conditions) -> list[LedgerEntry]:
    """Entries other than reversals matching ``conditions`` that have not been reversed."""
    stmt = (select(LedgerEntry).where(*conditions, LedgerEntry.kind != EntryKind.REVERSAL,
                                      LedgerEntry.id.not_in(_reversed_ids())).order_by(LedgerEntry.id))
    return list((await session.execute(stmt)).scalars().all())


async def balance(session: AsyncSession, customer_id: int, *, before: datetime | None = None) -> int:
    """What the customer owes in rials (negative: credit), optionally counting only entries before a time."""
    stmt = select(func.coalesce(func.sum(LedgerEntry.amount_rials), 0)).where(
        LedgerEntry.customer_id == customer_id)
    if before is not None:
        stmt = stmt.where(LedgerEntry.posted_at < before)
    return int((await session.execute(stmt)).scalar_one())
