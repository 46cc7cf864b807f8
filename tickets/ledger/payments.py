"""Payments, recorded by hand or imported from a bank CSV, and corrections by reversal.

A payment's bank reference is its identity: the idempotency key is ``payment:<reference>``, so a file
imported twice, or a payment typed in after it was imported, posts once. A CSV is checked row by row before
anything is written; if any row is bad, the error names every bad row's line and field and nothing of the
file is imported.

CSV columns (header row required, UTF-8): ``customer_id``, ``amount_rials``, ``reference``, and optionally
``fine_id`` (the payment settles that fine) and ``note``. Amounts are whole rials; Persian or Arabic-Indic
digits and thousands separators are accepted, decimals are not.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.accounts import Principal, Role, require_role
from monitor.errors import NotFound
from monitor.models import Customer
from tickets.ledger.entries import post, require_rials, reverse
from tickets.ledger.errors import LedgerInput, PaymentFileError, RowError
from tickets.ledger.models import EntryKind, LedgerEntry
from tickets.models import Fine

__all__ = ["PaymentRow", "ImportResult", "record_payment", "parse_payments_csv", "import_payments_csv",
           "reverse_entry", "FINANCE_ROLES"]

log = logging.getLogger("negahban.ledger")

FINANCE_ROLES = frozenset({Role.FINANCE, Role.ADMIN})
REQUIRED = ("customer_id", "amount_rials", "reference")
DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
SEPARATORS = (",", "٬", "_", " ")
MAX_REFERENCE = 100


@dataclass(frozen=True, slots=True)
class PaymentRow:
    line: int
    customer_id: int
    amount_rials: int
    reference: str
    fine_id: int | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class ImportResult:
    imported: int
    already_imported: int
    total_rials: int


class _BadRow(Exception):
    def __init__(self, line: int, field: str, reason: str) -> None:
        self.error = RowError(line, field, reason)


def _whole(text: str, field: str, line: int) -> int:
    raw = (text or "").strip().translate(DIGITS)
    for sep in SEPARATORS:
        raw = raw.replace(sep, "")
    if not raw.isdigit():
        raise _BadRow(line, field, f"{text!r} is not a whole number" + (" of rials" if "amount" in field else ""))
    return int(raw)


def _row(line: int, rec: dict) -> PaymentRow:
    customer_id = _whole(rec.get("customer_id"), "customer_id", line)
    amount = _whole(rec.get("amount_rials"), "amount_rials", line)
    if amount <= 0:
        raise _BadRow(line, "amount_rials", "must be greater than zero")
    reference = (rec.get("reference") or "").strip()
    if not reference or len(reference) > MAX_REFERENCE:
        raise _BadRow(line, "reference", f"must be 1 to {MAX_REFERENCE} characters")
    fine = (rec.get("fine_id") or "").strip()
    return PaymentRow(line, customer_id, amount, reference, _whole(fine, "fine_id", line) if fine else None,
                      (rec.get("note") or "").strip())


def parse_payments_csv(text: str) -> tuple[list[PaymentRow], list[RowError]]:
    """Parse every row (line numbers as in the file, the header being line 1); collect every error."""
    try:
        return _parse_rows(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    except csv.Error as exc:  # e.g. a field over the csv module's limit (128 KB): a bad file, not a crash
        return [], [RowError(0, "<file>", f"not a readable CSV: {exc}")]


def _parse_rows(reader: csv.DictReader) -> tuple[list[PaymentRow], list[RowError]]:
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        return [], [RowError(1, missing[0], "missing column in the header")]
    rows, errors, seen = [], [], {}
    for rec in reader:
        line = reader.line_num
        if None in rec or any(v is None for v in rec.values()):
            errors.append(RowError(line, "<row>", "wrong number of columns"))
            continue
        try:
            row = _row(line, rec)
        except _BadRow as bad:
            errors.append(bad.error)
            continue
        if row.reference in seen:
            errors.append(RowError(line, "reference", f"repeats line {seen[row.reference]}"))
            continue
        seen[row.reference] = line
        rows.append(row)
    if not rows and not errors:
        errors.append(RowError(1, "<file>", "no payment rows"))
    return rows, errors


async def _existing(session: AsyncSession, reference: str) -> LedgerEntry | None:
    return (await session.execute(select(LedgerEntry).where(
        LedgerEntry.idempotency_key == f"payment:{reference}"))).scalar_one_or_none()


async def _check_row(session: AsyncSession, row: PaymentRow) -> RowError | str | None:
    """A database problem with ``row`` (a RowError), "posted" if it was imported before, else None."""
    if await session.get(Customer, row.customer_id) is None:
        return RowError(row.line, "customer_id", f"no such customer {row.customer_id}")
    if row.fine_id is not None:
        fine = await session.get(Fine, row.fine_id)
        if fine is None or fine.customer_id != row.customer_id:
            return RowError(row.line, "fine_id", f"fine {row.fine_id} is not this customer's")
    prior = await _existing(session, row.reference)
    if prior is None:
        return await _overpays(session, row)
    if (prior.customer_id, prior.amount_rials) != (row.customer_id, -row.amount_rials):
        return RowError(row.line, "reference", "was already used for a different payment")
    return "posted"  # a replay: checked before the fine's balance, which this payment already settled


async def fine_paid_rials(session: AsyncSession, fine_id: int) -> int:
    """What has been paid towards a fine (payments naming it, reversals included)."""
    paid = await session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_rials), 0)).where(
        LedgerEntry.fine_id == fine_id, LedgerEntry.kind.in_((EntryKind.PAYMENT, EntryKind.REVERSAL))))
    return -int(paid)


async def _overpays(session: AsyncSession, row: PaymentRow) -> RowError | None:
    if row.fine_id is None:
        return None
    fine = await session.get(Fine, row.fine_id)
    unpaid = fine.amount_rials - await fine_paid_rials(session, fine.id)
    if row.amount_rials > unpaid:
        return RowError(row.line, "amount_rials", f"more than the fine's unpaid {max(unpaid, 0)} rials")
    return None


async def _post_payment(session: AsyncSession, row: PaymentRow, principal: Principal, now: datetime) -> bool:
    _, created = await post(session, key=f"payment:{row.reference}", customer_id=row.customer_id,
                            kind=EntryKind.PAYMENT, amount_rials=-row.amount_rials, now=now, fine_id=row.fine_id,
                            reference=row.reference, posted_by_id=principal.user_id, description=row.note)
    if created and row.fine_id is not None:
        await session.flush()
        fine = await session.get(Fine, row.fine_id)
        if fine.paid_at is None and await fine_paid_rials(session, fine.id) >= fine.amount_rials:
            fine.paid_at = now  # rule 19: a paid fine lifts the suspension of support
    return created


async def import_payments_csv(sm: async_sessionmaker, principal: Principal, text: str, *,
                              now: datetime) -> ImportResult:
    """Import a bank file: all rows or none (``PaymentFileError`` lists every bad row)."""
    require_role(principal, FINANCE_ROLES)
    rows, errors = parse_payments_csv(text)
    if errors:
        raise PaymentFileError(errors)
    async with sm.begin() as session:
        checks = [await _check_row(session, row) for row in rows]
        bad = [c for c in checks if isinstance(c, RowError)]
        if bad:
            raise PaymentFileError(bad)
        fresh = [row for row, c in zip(rows, checks, strict=True) if c is None]
        created = [await _post_payment(session, row, principal, now) for row in fresh]
    result = ImportResult(sum(created), len(rows) - sum(created),
                          sum(r.amount_rials for r, c in zip(fresh, created, strict=True) if c))
    log.info("payments_imported imported=%s already=%s total_rials=%s", *(result.imported,
             result.already_imported, result.total_rials))
    return result


async def record_payment(sm: async_sessionmaker, principal: Principal, *, customer_id: int, amount_rials: int,
                         reference: str, fine_id: int | None = None, note: str = "",
                         now: datetime) -> tuple[LedgerEntry, bool]:
    """Record one payment typed in by finance; ``(entry, created)`` (False: that reference was posted)."""
    require_role(principal, FINANCE_ROLES)
    require_rials(amount_rials, "amount_rials")
    reference = (reference or "").strip()
    if not reference or len(reference) > MAX_REFERENCE:
        raise LedgerInput("reference", f"must be 1 to {MAX_REFERENCE} characters")
    row = PaymentRow(0, customer_id, amount_rials, reference, fine_id, note)
    async with sm.begin() as session:
        problem = await _check_row(session, row)
        if isinstance(problem, RowError):
            raise LedgerInput(problem.field, problem.reason)
        await _post_payment(session, row, principal, now)
        entry = await _existing(session, reference)
    return entry, problem is None


async def reverse_entry(sm: async_sessionmaker, principal: Principal, entry_id: int, *, reason: str,
                        now: datetime) -> LedgerEntry:
    """Finance corrects a posted entry by reversing it (a visit is corrected by changing its cause)."""
    require_role(principal, FINANCE_ROLES)
    if not reason.strip():
        raise LedgerInput("reason", "say why the entry is reversed")
    async with sm.begin() as session:
        entry = await session.get(LedgerEntry, entry_id)
        if entry is None:
            raise NotFound(f"ledger entry {entry_id}")
        if entry.kind == EntryKind.VISIT:
            raise LedgerInput("entry_id", "a visit's charge is corrected by changing the visit's cause")
        reversal, _ = await reverse(session, entry, now=now, reason=reason, posted_by_id=principal.user_id)
    return reversal
