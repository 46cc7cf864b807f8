"""Rule 17: the first-response target and the monthly report.

A ticket's band is chosen by the moment it opens: ``office`` when :func:`tickets.calendar.is_office_hours`
holds (target 1 h), ``outside`` otherwise (evenings, Thursday, Friday, holidays, admin closures; target
3 h). The due time is ``opened_at + target`` on the wall clock (not counted in office hours) and is stored
in UTC. A breach is a first staff response after the due time.

The monthly report groups the tickets opened in one Jalali month (Tehran time) by band. Over the tickets
that have a first response it gives the count, the average, p50 and p90 (nearest-rank: the
``ceil(p * n)``-th smallest value) of the first-response time, whether the average met the band's target,
and the number of breaches; tickets still waiting for a first response are counted apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jdatetime

from monitor.errors import InvalidInput
from tickets.calendar import TEHRAN, OfficeCalendar, is_office_hours

__all__ = ["OFFICE", "OUTSIDE", "BANDS", "SlaTargets", "first_response_due", "is_breached", "BandReport",
           "nearest_rank", "band_report", "jalali_month_span"]

OFFICE, OUTSIDE = "office", "outside"
BANDS = (OFFICE, OUTSIDE)


@dataclass(frozen=True)
class SlaTargets:
    """First-response targets per band (configurable; the support terms say 1 h and 3 h)."""

    office: timedelta = timedelta(hours=1)
    outside: timedelta = timedelta(hours=3)

    def of(self, band: str) -> timedelta:
        return self.office if band == OFFICE else self.outside


def first_response_due(opened_at: datetime, calendar: OfficeCalendar,
                       targets: SlaTargets = SlaTargets()) -> tuple[str, datetime]:
    """The band and the first-response due time (aware UTC) of a ticket opened at ``opened_at``."""
    band = OFFICE if is_office_hours(opened_at, calendar) else OUTSIDE
    return band, (opened_at + targets.of(band)).astimezone(UTC)


def is_breached(due: datetime, first_response_at: datetime | None, now: datetime) -> bool:
    """A first response after ``due`` (or none yet, and ``now`` is past it) breaches the target."""
    return (first_response_at or now) > due


@dataclass(frozen=True)
class BandReport:
    band: str
    target: timedelta
    count: int
    average: timedelta | None
    p50: timedelta | None
    p90: timedelta | None
    met_target: bool | None
    breaches: int
    unanswered: int

    def as_json(self) -> dict:
        return {"band": self.band, "target_minutes": _minutes(self.target), "count": self.count,
                "average_minutes": _minutes(self.average), "p50_minutes": _minutes(self.p50),
                "p90_minutes": _minutes(self.p90), "met_target": self.met_target, "breaches": self.breaches,
                "unanswered": self.unanswered}


def _minutes(v: timedelta | None) -> float | None:
    return None if v is None else round(v.total_seconds() / 60, 2)


def nearest_rank(ordered: list[timedelta], p: float) -> timedelta | None:
    if not ordered:
        return None
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def band_report(band: str, rows: Iterable[tuple[datetime, datetime, datetime | None]],
                targets: SlaTargets) -> BandReport:
    """Report one band from ``(opened_at, due, first_response_at)`` rows of tickets in that band."""
    rows = list(rows)
    times = sorted(first - opened for opened, _due, first in rows if first is not None)
    average = sum(times, timedelta()) / len(times) if times else None
    breaches = sum(1 for _o, due, first in rows if first is not None and first > due)
    return BandReport(
        band=band, target=targets.of(band), count=len(times), average=average,
        p50=nearest_rank(times, 0.5), p90=nearest_rank(times, 0.9),
        met_target=None if average is None else average <= targets.of(band),
        breaches=breaches, unanswered=len(rows) - len(times),
    )


def jalali_month_span(jyear: int, jmonth: int) -> tuple[datetime, datetime]:
    """The UTC instants where the Jalali month starts (inclusive) and ends (exclusive), Tehran time."""
    if not (1 <= jmonth <= 12 and 1300 <= jyear <= 1600):  # jdatetime cannot go far past year 1600
        raise InvalidInput("month", f"{jyear}/{jmonth} is not a Jalali month (years 1300-1600)")
    nxt = (jyear + 1, 1) if jmonth == 12 else (jyear, jmonth + 1)
    start, end = (datetime.combine(jdatetime.date(y, m, 1).togregorian(), datetime.min.time(), TEHRAN)
                  for y, m in ((jyear, jmonth), nxt))
    return start.astimezone(UTC), end.astimezone(UTC)
