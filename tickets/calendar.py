"""Rule 2: the office calendar.

The office (and phone support) is open Saturday to Wednesday, 09:00-17:00 Asia/Tehran, except on official
Iranian holidays and on closures an admin adds. Holidays are seeded from the ``holidays`` package (country
IR, Persian names, ``language="fa_IR"``; plain ``"fa"`` silently falls back to English in holidays 0.109)
for the current and the next Jalali year; an admin may also remove a seeded date (the office then works
that day). Admin changes are rows of ``calendar_days`` (see :mod:`tickets.calendar_admin`).

:class:`OfficeCalendar` is a plain value; :func:`is_office_hours` and :func:`phone_support_open` are pure.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import jdatetime
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.models import CalendarDay
from tickets.persian import fa_digits

__all__ = ["TEHRAN", "OFFICE_WEEKDAYS", "OPENS", "CLOSES", "OfficeCalendar", "seeded_holidays",
           "jalali_year", "is_office_hours", "phone_support_open", "load_calendar", "CLOSURE", "REMOVED",
           "jalali_text"]

TEHRAN = ZoneInfo("Asia/Tehran")
# Python weekdays: Monday is 0. Saturday, Sunday, Monday, Tuesday, Wednesday.
OFFICE_WEEKDAYS = frozenset({5, 6, 0, 1, 2})
OPENS, CLOSES = time(9, 0), time(17, 0)
CLOSURE, REMOVED = "closure", "removed"


def jalali_year(day: date) -> int:
    return jdatetime.date.fromgregorian(date=day).year


def _jalali_span(jyear: int) -> tuple[date, date]:
    start = jdatetime.date(jyear, 1, 1).togregorian()
    return start, jdatetime.date(jyear + 1, 1, 1).togregorian() - timedelta(days=1)


@functools.lru_cache(maxsize=16)
def _seeded_year(jyear: int) -> tuple[tuple[date, str], ...]:
    start, end = _jalali_span(jyear)
    table = holidays.country_holidays("IR", years=range(start.year, end.year + 1), language="fa_IR")
    return tuple(sorted((d, name) for d, name in table.items() if start <= d <= end))


def seeded_holidays(jalali_years: Iterable[int]) -> dict[date, str]:
    """Official holidays of the given Jalali years, with their Persian names."""
    return {d: name for jy in jalali_years for d, name in _seeded_year(jy)}


@dataclass(frozen=True)
class OfficeCalendar:
    holidays: Mapping[date, str] = field(default_factory=dict)
    closures: Mapping[date, str] = field(default_factory=dict)
    removed: frozenset[date] = frozenset()

    def closed_because(self, day: date) -> str | None:
        """Why the office is closed on ``day`` (a Tehran date), or None if it is a working day."""
        if day in self.closures:
            return self.closures[day] or "closure"
        if day in self.holidays and day not in self.removed:
            return self.holidays[day]
        if day.weekday() not in OFFICE_WEEKDAYS:
            return "weekend"
        return None


def jalali_text(moment: datetime | None) -> str | None:
    """``moment`` as customers read it: Jalali date and Tehran time in Persian digits (۱۴۰۵/۰۹/۰۴ ۱۰:۰۰)."""
    if moment is None:
        return None
    local = jdatetime.datetime.fromgregorian(datetime=moment.astimezone(TEHRAN))
    return fa_digits(local.strftime("%Y/%m/%d %H:%M"))


def is_office_hours(now: datetime, calendar: OfficeCalendar) -> bool:
    """True when ``now`` (aware) falls in 09:00-17:00 Tehran time on a working day. 17:00 itself is closed."""
    local = now.astimezone(TEHRAN)
    return calendar.closed_because(local.date()) is None and OPENS <= local.time() < CLOSES


def phone_support_open(now: datetime, calendar: OfficeCalendar) -> bool:
    """Phone sales advice and support follow the office hours exactly (rule 2)."""
    return is_office_hours(now, calendar)


async def load_calendar(session: AsyncSession, *instants: datetime) -> OfficeCalendar:
    """The calendar covering the Jalali years of ``instants`` and the year after each, with admin changes."""
    years = {jalali_year(i.astimezone(TEHRAN).date()) for i in instants}
    years |= {y + 1 for y in years}
    rows = (await session.execute(select(CalendarDay))).scalars().all()
    return OfficeCalendar(
        holidays=seeded_holidays(sorted(years)),
        closures={r.day: r.name for r in rows if r.kind == CLOSURE},
        removed=frozenset(r.day for r in rows if r.kind == REMOVED),
    )
