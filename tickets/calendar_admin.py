"""Admin changes to the office calendar, and the recomputation of due times they cause.

An admin adds a closure (a day the office is shut) or removes a seeded holiday (a day it works after all),
or withdraws such a change. Each change recomputes, in the same transaction, the band and first-response
due time of every ticket that is not closed, so the staff queue follows the calendar.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.accounts import Principal, Role, require_role
from tickets.calendar import CLOSURE, REMOVED, load_calendar
from tickets.errors import Refusal
from tickets.models import OPEN_STATUSES, CalendarDay, Ticket
from tickets.sla import SlaTargets, first_response_due

__all__ = ["add_closure", "remove_seeded_date", "withdraw_change", "recompute_open_tickets", "list_changes",
           "ADMINS"]

log = logging.getLogger("negahban.tickets")
ADMINS = frozenset({Role.ADMIN})


async def recompute_open_tickets(session: AsyncSession, targets: SlaTargets, now: datetime) -> int:
    """Recompute band and due time of every ticket not closed; return how many changed."""
    tickets = (await session.execute(select(Ticket).where(Ticket.status.in_(OPEN_STATUSES)))).scalars().all()
    calendar = await load_calendar(session, now, *(t.opened_at for t in tickets))
    changed = 0
    for ticket in tickets:
        band, due = first_response_due(ticket.opened_at, calendar, targets)
        if (band, due) != (ticket.sla_band, ticket.first_response_due):
            ticket.sla_band, ticket.first_response_due = band, due
            changed += 1
    log.info("sla_recomputed tickets=%s changed=%s", len(tickets), changed)
    return changed


async def _change(sm: async_sessionmaker, principal: Principal, day: date, kind: str, name: str,
                  now: datetime, targets: SlaTargets) -> int:
    require_role(principal, ADMINS)
    async with sm.begin() as session:
        exists = (await session.execute(select(CalendarDay.id).where(
            CalendarDay.day == day, CalendarDay.kind == kind))).scalar_one_or_none()
        if exists is None:
            session.add(CalendarDay(day=day, kind=kind, name=name, created_by_id=principal.user_id,
                                    created_at=now))
            await session.flush()
        return await recompute_open_tickets(session, targets, now)


async def add_closure(sm: async_sessionmaker, principal: Principal, day: date, *, name: str, now: datetime,
                      targets: SlaTargets = SlaTargets()) -> int:
    return await _change(sm, principal, day, CLOSURE, name, now, targets)


async def remove_seeded_date(sm: async_sessionmaker, principal: Principal, day: date, *, now: datetime,
                             targets: SlaTargets = SlaTargets()) -> int:
    async with sm() as session:
        calendar = await load_calendar(session, now, datetime.combine(day, datetime.min.time(), now.tzinfo))
    if day not in calendar.holidays:
        raise Refusal("not_a_seeded_holiday", "day", "این روز در فهرست تعطیلات رسمی نیست.",
                      draft={"day": day.isoformat()})
    return await _change(sm, principal, day, REMOVED, calendar.holidays[day], now, targets)


async def withdraw_change(sm: async_sessionmaker, principal: Principal, day: date, kind: str, *,
                          now: datetime, targets: SlaTargets = SlaTargets()) -> int:
    require_role(principal, ADMINS)
    async with sm.begin() as session:
        await session.execute(delete(CalendarDay).where(CalendarDay.day == day, CalendarDay.kind == kind))
        return await recompute_open_tickets(session, targets, now)


async def list_changes(sm: async_sessionmaker) -> list[CalendarDay]:
    async with sm() as session:
        return list((await session.execute(select(CalendarDay).order_by(CalendarDay.day))).scalars())
