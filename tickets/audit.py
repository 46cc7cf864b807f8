"""Rule 4: the audit log of who read or exported whose data, and disclosures to third parties.

Staff reads and exports of a customer's tickets, reports and statements are recorded by the services that
serve them (this package's desk and reports; the ledger and the dashboards call :func:`record` too). A
disclosure to a third party is only recorded, and so only allowed, with the judicial letter's reference.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.accounts import Principal, Role, require_role
from monitor.errors import InvalidInput
from monitor.models import Customer
from tickets.errors import Refusal
from tickets.models import AuditEntry

__all__ = ["record", "disclose", "list_entries", "entry_json", "READ_TICKET", "EXPORT_TICKETS",
           "READ_REPORT", "READ_STATEMENT", "DISCLOSURE", "ACTIONS"]

READ_TICKET, EXPORT_TICKETS = "read_ticket", "export_tickets"
READ_REPORT, READ_STATEMENT, DISCLOSURE = "read_report", "read_statement", "disclosure"
ACTIONS = (READ_TICKET, EXPORT_TICKETS, READ_REPORT, READ_STATEMENT, DISCLOSURE)


async def record(session: AsyncSession, principal: Principal, action: str, *, customer_id: int | None,
                 subject: str = "", now: datetime, detail: dict[str, Any] | None = None) -> None:
    """Record a staff read or export of ``customer_id``'s data; a customer reading their own is not logged."""
    if not principal.is_staff:
        return
    session.add(AuditEntry(at=now, user_id=principal.user_id, customer_id=customer_id, action=action,
                           subject=subject, detail=detail or {}))


async def disclose(sm: async_sessionmaker, principal: Principal, *, customer_id: int, recipient: str,
                   letter_reference: str, subject: str, now: datetime) -> AuditEntry:
    """Record a disclosure of ``customer_id``'s data to ``recipient``; refused without a judicial letter."""
    require_role(principal, {Role.ADMIN})
    draft = {"customer_id": customer_id, "recipient": recipient, "letter_reference": letter_reference,
             "subject": subject}
    if not (letter_reference or "").strip():
        raise Refusal("letter_reference_required", "letter_reference",
                      "اطلاعات مشتری فقط با نامهٔ مرجع قضایی افشا می‌شود؛ شمارهٔ نامه را وارد کنید.", draft=draft)
    if not (recipient or "").strip():
        raise Refusal("recipient_required", "recipient", "گیرندهٔ اطلاعات را مشخص کنید.", draft=draft)
    entry = AuditEntry(at=now, user_id=principal.user_id, customer_id=customer_id, action=DISCLOSURE,
                       subject=subject, letter_reference=letter_reference.strip(), recipient=recipient.strip())
    async with sm.begin() as session:
        if await session.get(Customer, customer_id) is None:  # was an IntegrityError (500), found by schemathesis
            raise InvalidInput("customer_id", f"no such customer {customer_id}")
        session.add(entry)
    return entry


async def list_entries(sm: async_sessionmaker, principal: Principal, *, customer_id: int | None = None,
                       action: str | None = None, limit: int = 200, offset: int = 0) -> list[AuditEntry]:
    """Entries newest first, of one customer and one action when given."""
    require_role(principal, {Role.ADMIN})
    stmt = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit).offset(offset)
    if customer_id is not None:
        stmt = stmt.where(AuditEntry.customer_id == customer_id)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    async with sm() as session:
        return list((await session.execute(stmt)).scalars())


def entry_json(e: AuditEntry) -> dict:
    return {"id": e.id, "at": e.at.isoformat(), "user_id": e.user_id, "customer_id": e.customer_id,
            "action": e.action, "subject": e.subject, "letter_reference": e.letter_reference,
            "recipient": e.recipient, "detail": e.detail}
