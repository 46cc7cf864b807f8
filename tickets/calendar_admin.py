"""Admin changes to the office calendar, and the recomputation of due times they cause.

An admin adds a closure (a day, or a range of days, the office is shut, with a reason) or removes a seeded
holiday (a day it works after all), or withdraws such a change. Each change recomputes, in the same
transaction, the band and first-response due time of every ticket that is not closed, so the staff queue
follows the calendar. A closure is checked before anything is written (:func:`check_closure`: a reason, an
end not before its start, no day before today in Tehran, at most ``MAX_CLOSURE_DAYS`` days), and a range is
written in one transaction: all of its days or none.

:func:`upcoming` is what the admin's calendar page lists: from a day on, every seeded holiday, closure and
removed holiday, one line a day.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.accounts import Principal, Role, require_role
from tickets.calendar import CLOSURE, REMOVED, TEHRAN, load_calendar
from tickets.errors import Refusal
from tickets.models import OPEN_STATUSES, CalendarDay, Ticket
from tickets.sla import SlaTargets, first_response_due

__all__ = ["add_closure", "remove_seeded_date", "withdraw_change", "recompute_open_tickets", "list_changes",
           "ADMINS", "check_closure", "upcoming", "CalendarLine", "MAX_CLOSURE_DAYS", "MAX_REASON", "HOLIDAY"]

log = logging.getLogger("negahban.tickets")
ADMINS = frozenset({Role.ADMIN})
MAX_CLOSURE_DAYS = 31
MAX_REASON = 200  # the length of ``calendar_days.name``
HOLIDAY = "holiday"


def check_closure(first: date, last: date, reason: str, today: date) -> str:
    """The closure's reason, stripped, if a closure from ``first`` to ``last`` (inclusive) may be added on
    ``today`` (a Tehran date); else a :class:`Refusal` naming the field, in Persian."""
    reason = (reason or "").strip()
    draft = {"day": first.isoformat(), "until": last.isoformat(), "name": reason}
    if not reason:
        raise Refusal("closure_reason_required", "name", "دلیل تعطیلی را بنویسید.", draft=draft)
    if len(reason) > MAX_REASON:
        raise Refusal("closure_reason_too_long", "name", "دلیل تعطیلی حداکثر ۲۰۰ نویسه است.", draft=draft)
    if first < today:
        raise Refusal("closure_in_the_past", "day",
                      "روز آغاز تعطیلی گذشته است؛ فقط امروز و روزهای آینده را می‌توان تعطیل کرد.", draft=draft)
    if last < first:
        raise Refusal("closure_ends_before_start", "until", "روز پایان تعطیلی پیش از روز آغاز آن است.",
                      draft=draft)
    if (last - first).days >= MAX_CLOSURE_DAYS:
        raise Refusal("closure_too_long", "until", "یک تعطیلی حداکثر ۳۱ روز است.", draft=draft)
    return reason


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


async def _change(sm: async_sessionmaker, principal: Principal, days: list[date], kind: str, name: str,
                  now: datetime, targets: SlaTargets) -> int:
    """Write the change for each of ``days`` (a day already changed so is kept as it is) and recompute, all
    in one transaction."""
    require_role(principal, ADMINS)
    async with sm.begin() as session:
        present = set((await session.execute(select(CalendarDay.day).where(
            CalendarDay.day.in_(days), CalendarDay.kind == kind))).scalars())
        session.add_all([CalendarDay(day=d, kind=kind, name=name, created_by_id=principal.user_id,
                                     created_at=now) for d in days if d not in present])
        await session.flush()
        return await recompute_open_tickets(session, targets, now)


async def add_closure(sm: async_sessionmaker, principal: Principal, day: date, *, name: str, now: datetime,
                      until: date | None = None, targets: SlaTargets = SlaTargets()) -> int:
    """Close the office from ``day`` to ``until`` (inclusive; ``day`` alone without it) for ``name`` (the
    reason); refused (nothing written) as :func:`check_closure` says. Return how many open tickets changed."""
    require_role(principal, ADMINS)
    last = until or day
    reason = check_closure(day, last, name, now.astimezone(TEHRAN).date())
    days = [day + timedelta(days=i) for i in range((last - day).days + 1)]
    return await _change(sm, principal, days, CLOSURE, reason, now, targets)


async def remove_seeded_date(sm: async_sessionmaker, principal: Principal, day: date, *, now: datetime,
                             targets: SlaTargets = SlaTargets()) -> int:
    async with sm() as session:
        calendar = await load_calendar(session, now, datetime.combine(day, datetime.min.time(), now.tzinfo))
    if day not in calendar.holidays:
        raise Refusal("not_a_seeded_holiday", "day", "این روز در فهرست تعطیلات رسمی نیست.",
                      draft={"day": day.isoformat()})
    return await _change(sm, principal, [day], REMOVED, calendar.holidays[day], now, targets)


async def withdraw_change(sm: async_sessionmaker, principal: Principal, day: date, kind: str, *,
                          now: datetime, targets: SlaTargets = SlaTargets()) -> int:
    require_role(principal, ADMINS)
    async with sm.begin() as session:
        await session.execute(delete(CalendarDay).where(CalendarDay.day == day, CalendarDay.kind == kind))
        return await recompute_open_tickets(session, targets, now)


async def list_changes(sm: async_sessionmaker) -> list[CalendarDay]:
    async with sm() as session:
        return list((await session.execute(select(CalendarDay).order_by(CalendarDay.day))).scalars())


@dataclass(frozen=True, slots=True)
class CalendarLine:
    """One day of the admin's calendar: a seeded ``holiday`` (``removed`` when the office works it after all)
    or a ``closure`` an admin added, with its name or reason."""

    day: date
    kind: str
    name: str


async def upcoming(sm: async_sessionmaker, today: date, *, days: int = 366) -> list[CalendarLine]:
    """Seeded holidays, closures and removed holidays from ``today`` for ``days`` days, by day."""
    horizon = today + timedelta(days=days)
    moment = datetime.combine(today, datetime.min.time(), TEHRAN)
    async with sm() as session:
        calendar = await load_calendar(session, moment)
    lines = [CalendarLine(d, REMOVED if d in calendar.removed else HOLIDAY, n)
             for d, n in calendar.holidays.items()]
    lines += [CalendarLine(d, CLOSURE, n) for d, n in calendar.closures.items()]
    return sorted((ln for ln in lines if today <= ln.day < horizon), key=lambda ln: (ln.day, ln.kind))
