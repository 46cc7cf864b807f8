"""Rule 19: violations recorded on tickets, fines in rials, and the suspension an unpaid fine causes.

While any fine of a customer is unpaid past its due date, the customer's support is suspended: new tickets
are refused except financial ones (so that the fine can be paid). Marking the fine paid lifts it.

The ledger is the source of truth for the money (see ``tickets.ledger.fines``): a fine is posted to the
ledger in the transaction that records it, marking it paid records a payment there, and the suspension
check reads the ledger's unpaid overdue fines, so a payment imported by finance lifts it too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.accounts import STAFF, Principal, Role, require_role
from monitor.errors import NotFound
from tickets.errors import Refusal
from tickets.ledger.fines import pay_fine_entry, post_fine_entry, unpaid_overdue_fines
from tickets.models import Fine, Ticket, Violation

__all__ = ["RULES", "record_violation", "violations_of", "post_fine", "mark_fine_paid", "overdue_fine", "fine_json",
           "FINANCE_ROLES", "suspension_of"]

RULES = range(1, 20)  # the support terms have 19 rules
FINANCE_ROLES = frozenset({Role.FINANCE, Role.ADMIN})


async def _ticket(session: AsyncSession, ticket_id: int) -> Ticket:
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id}")
    return ticket


async def record_violation(sm: async_sessionmaker, principal: Principal, ticket_id: int, *, rule: int,
                           note: str = "", now: datetime) -> Violation:
    require_role(principal, STAFF)
    if rule not in RULES:
        raise Refusal("invalid_rule", "rule", "شمارهٔ قانون باید بین ۱ تا ۱۹ باشد.",
                      draft={"rule": rule, "note": note})
    async with sm.begin() as session:
        await _ticket(session, ticket_id)
        violation = Violation(ticket_id=ticket_id, rule=rule, note=note, recorded_by_id=principal.user_id,
                              recorded_at=now)
        session.add(violation)
    return violation


async def violations_of(sm: async_sessionmaker, principal: Principal, ticket_id: int) -> list[Violation]:
    """The violations recorded on a ticket, oldest first (staff)."""
    require_role(principal, STAFF)
    async with sm() as session:
        return list((await session.execute(select(Violation).where(Violation.ticket_id == ticket_id)
                                            .order_by(Violation.recorded_at, Violation.id))).scalars())


async def post_fine(sm: async_sessionmaker, principal: Principal, ticket_id: int, *, amount_rials: int,
                    due_at: datetime, violation_id: int | None = None, now: datetime) -> Fine:
    """Fine the ticket's customer ``amount_rials`` (a positive whole number), payable by ``due_at``."""
    require_role(principal, FINANCE_ROLES)
    if type(amount_rials) is not int or amount_rials <= 0:
        raise Refusal("invalid_amount", "amount_rials", "مبلغ جریمه باید عددی صحیح و مثبت به ریال باشد.",
                      draft={"amount_rials": amount_rials})
    async with sm.begin() as session:
        ticket = await _ticket(session, ticket_id)
        if violation_id is not None:
            violation = await session.get(Violation, violation_id)
            if violation is None or violation.ticket_id != ticket_id:
                raise Refusal("unknown_violation", "violation_id", "این تخلف روی این تیکت ثبت نشده است.",
                              draft={"violation_id": violation_id})
        fine = Fine(customer_id=ticket.customer_id, ticket_id=ticket_id, violation_id=violation_id,
                    amount_rials=amount_rials, due_at=due_at, recorded_by_id=principal.user_id, created_at=now)
        session.add(fine)
        await session.flush()
        await post_fine_entry(session, fine, now=now, posted_by_id=principal.user_id)
    return fine


async def mark_fine_paid(sm: async_sessionmaker, principal: Principal, fine_id: int, *, now: datetime) -> Fine:
    require_role(principal, FINANCE_ROLES)
    async with sm.begin() as session:
        fine = await session.get(Fine, fine_id)
        if fine is None:
            raise NotFound(f"fine {fine_id}")
        fine.paid_at = fine.paid_at or now
        await pay_fine_entry(session, fine, reference=f"fine-{fine.id}-marked-paid", now=now,
                             posted_by_id=principal.user_id)
    return fine


async def overdue_fine(session: AsyncSession, customer_id: int, now: datetime) -> Fine | None:
    """The oldest fine of ``customer_id`` unpaid past its due date, if any (support is then suspended).

    Read from the ledger: a fine is unpaid while the entries naming it do not net to zero."""
    unpaid = await unpaid_overdue_fines(session, customer_id, now)
    return await session.get(Fine, unpaid[0].fine_id) if unpaid else None


async def suspension_of(sm: async_sessionmaker, principal: Principal, now: datetime) -> Fine | None:
    """The fine that suspends the reader's own support now (rule 19), if any: for a customer, the oldest of
    their fines unpaid past its due date; staff have no support of their own to lose (None)."""
    if principal.customer_id is None:
        return None
    async with sm() as session:
        return await overdue_fine(session, principal.customer_id, now)


def fine_json(f: Fine) -> dict:
    return {"id": f.id, "customer_id": f.customer_id, "ticket_id": f.ticket_id, "amount_rials": f.amount_rials,
            "due_at": f.due_at.isoformat(), "paid_at": f.paid_at.isoformat() if f.paid_at else None}
