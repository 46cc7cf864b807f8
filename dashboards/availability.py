"""Uptime of a customer's services for the portal and the reports, from the engine's time-weighted uptime.

The engine (``monitor.uptime.uptime_from``) weighs every second between flips and leaves maintenance out.
Here a service's monitors' flips are read once for the whole range and cut into days (or months), so a
90-day bar or a year-long report is a few queries, not one per bucket. A service's figure adds up its
monitors' available and unavailable seconds.

A shared outage (a switch in front of the service's server, see ``incidents.shared``) counts for each of the
service's monitors it cut off as UNREACHABLE time, from the switch's confirmed failure to its recovery, even
where the monitor's own checks confirmed it later: the figure and the outage the portal lists agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from incidents.shared import cut_off_intervals
from monitor.maintenance import Calendar, Interval, load_calendar, scope_keys
from monitor.models import Flip, State
from monitor.uptime import uptime_from

__all__ = ["Span", "MonitorHistory", "load_histories", "spans_uptime", "day_spans", "SpanUptime",
           "total"]


@dataclass(frozen=True, slots=True)
class Span:
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class SpanUptime:
    span: Span
    available_s: float
    unavailable_s: float
    maintenance_s: float

    @property
    def ratio(self) -> float | None:
        known = self.available_s + self.unavailable_s
        return self.available_s / known if known > 0 else None


@dataclass(slots=True)
class MonitorHistory:
    monitor_id: int
    initial: State                        # the state at the start of the range
    flips: list[tuple[datetime, State]]   # inside the range, in order
    maintenance: list[tuple[datetime, datetime]]
    cut_off: list[Interval] = field(default_factory=list)  # cut off by another monitor's incident


# A dict lookup: calling the enum for each of a year's flips costs more than the arithmetic.
_STATES = {s.value: s for s in State}


def total(span: Span, parts: Sequence[SpanUptime]) -> SpanUptime:
    """The figure of ``span`` from the figures of spans that cut it without overlap."""
    return SpanUptime(span, sum(p.available_s for p in parts), sum(p.unavailable_s for p in parts),
                      sum(p.maintenance_s for p in parts))


def _epoch(column, dialect: str):
    """Seconds since the epoch, computed by the database: a year of flips parsed as datetimes by the driver
    costs more than the whole uptime arithmetic (SQLite keeps them as text)."""
    if dialect == "sqlite":
        return (func.julianday(column) - 2440587.5) * 86400.0
    return func.extract("epoch", column)


def _from_epoch(value) -> datetime:
    # SQLite keeps julianday to the millisecond, which is fine for uptime; rounding drops float noise.
    return datetime.fromtimestamp(round(float(value), 6), UTC)


def day_spans(first_day_start: datetime, days: int) -> list[Span]:
    return [Span(first_day_start + timedelta(days=i), first_day_start + timedelta(days=i + 1))
            for i in range(days)]


async def load_histories(sm: async_sessionmaker, monitor_ids: Sequence[int], start: datetime, end: datetime,
                         calendar: Calendar | None = None) -> list[MonitorHistory]:
    """Each monitor's state at ``start``, its flips in [start, end), its maintenance intervals and the spans
    another monitor's incident cut it off."""
    if not monitor_ids:
        return []
    calendar = calendar if calendar is not None else await load_calendar(sm)
    async with sm() as s:
        last_before = (select(Flip.monitor_id, func.max(Flip.id).label("fid"))
                       .where(Flip.monitor_id.in_(monitor_ids), Flip.at < start).group_by(Flip.monitor_id)
                       .subquery())
        initial = dict((await s.execute(select(Flip.monitor_id, Flip.new_state)
                                        .join(last_before, Flip.id == last_before.c.fid))).all())
        conn = await s.connection()
        rows = (await conn.execute(select(Flip.monitor_id, _epoch(Flip.at, conn.dialect.name), Flip.new_state)
                                   .where(Flip.monitor_id.in_(monitor_ids), Flip.at >= start, Flip.at < end)
                                   .order_by(Flip.at, Flip.id))).all()
        cut_off = await cut_off_intervals(s, monitor_ids, start, end)
    flips: dict[int, list[tuple[datetime, State]]] = {m: [] for m in monitor_ids}
    for mid, epoch, state in rows:
        flips[mid].append((_from_epoch(epoch), _STATES[state]))
    out = []
    for mid in monitor_ids:
        windows = calendar.intervals(await scope_keys(sm, mid), start, end) if calendar else []
        out.append(MonitorHistory(mid, _STATES[initial.get(mid, State.UNKNOWN.value)], flips[mid], windows,
                                  cut_off.get(mid, [])))
    return out


def _one(h: MonitorHistory, spans: Sequence[Span], now: datetime) -> list[tuple[float, float, float]]:
    """Spans in time order; the flips are walked once, the state carried from one span to the next."""
    out, state, i, n = [], h.initial, 0, len(h.flips)
    for span in spans:
        while i < n and h.flips[i][0] < span.start:
            state = h.flips[i][1]
            i += 1
        j = i
        while j < n and h.flips[j][0] < span.end:
            j += 1
        up = uptime_from(state, h.flips[i:j], h.maintenance, span.start, span.end, now, h.cut_off)
        out.append((up.available_s, up.unavailable_s, up.seconds[State.MAINTENANCE.value]))
    return out


def spans_uptime(histories: Sequence[MonitorHistory], spans: Sequence[Span], now: datetime) -> list[SpanUptime]:
    """Pure: per span, the monitors' available, unavailable and maintenance seconds added up."""
    totals = [[0.0, 0.0, 0.0] for _ in spans]
    for h in histories:
        for t, (a, u, m) in zip(totals, _one(h, spans, now), strict=True):
            t[0] += a
            t[1] += u
            t[2] += m
    return [SpanUptime(span, *t) for span, t in zip(spans, totals, strict=True)]
