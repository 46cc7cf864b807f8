"""Uptime, time-weighted from flips (not by counting checks), with maintenance left out.

Between two flips a monitor was in the state the first one entered, for every second of it. Over a range:

* time before the monitor's first flip (before it existed or before its first check) is UNKNOWN and counts
  for nothing;
* time inside a maintenance window, or in the MAINTENANCE state, is left out of both sides;
* time after ``now`` has not happened yet;
* UP and DEGRADED are available; DOWN and UNREACHABLE are not (a customer behind a dead switch was still cut
  off, even though the outage is the switch's);
* time the monitor was *cut off* (a parent's outage that lists it, e.g. the incident of the switch in front
  of its server, while that parent was confirmed DOWN) counts as UNREACHABLE even where the monitor's own
  flips still say UP or DEGRADED: its own checks confirm the outage a few checks later than the switch's do,
  and a customer is told of the outage from the switch's start. Maintenance still comes first.

``ratio`` is available / (available + unavailable), or None when nothing in the range was known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from monitor.maintenance import Calendar, Interval, load_calendar, scope_keys
from monitor.models import Flip, State

__all__ = ["Uptime", "uptime_from", "monitor_uptime"]

AVAILABLE = (State.UP, State.DEGRADED)
UNAVAILABLE = (State.DOWN, State.UNREACHABLE)
# Copied for each figure: building it from the enum costs more than a day's arithmetic (the status page makes
# 18,000 figures per render).
_ZERO = {s.value: 0.0 for s in State}


@dataclass
class Uptime:
    seconds: dict[str, float] = field(default_factory=_ZERO.copy)

    @property
    def available_s(self) -> float:
        return sum(self.seconds[s] for s in AVAILABLE)

    @property
    def unavailable_s(self) -> float:
        return sum(self.seconds[s] for s in UNAVAILABLE)

    @property
    def ratio(self) -> float | None:
        known = self.available_s + self.unavailable_s
        return self.available_s / known if known > 0 else None


def _overlap(s: datetime, e: datetime, windows: Sequence[Interval]) -> float:
    total = 0.0
    for ws, we in windows:
        if we <= s:
            continue
        if ws >= e:
            break
        total += (min(e, we) - max(s, ws)).total_seconds()
    return total


def _subtract(intervals: Sequence[Interval], holes: Sequence[Interval]) -> list[Interval]:
    """``intervals`` minus ``holes``; both merged and sorted."""
    out: list[Interval] = []
    for s, e in intervals:
        for hs, he in holes:
            if he <= s or hs >= e:
                continue
            if hs > s:
                out.append((s, hs))
            s = max(s, he)
        if s < e:
            out.append((s, e))
    return out


def uptime_from(initial: State, flips: Sequence[tuple[datetime, State]], maintenance: Sequence[Interval],
                start: datetime, end: datetime, now: datetime, cut_off: Sequence[Interval] = ()) -> Uptime:
    """Pure: ``initial`` is the state at ``start`` (from the last flip before it), ``flips`` the (at,
    new_state) pairs inside [start, end) in order, ``maintenance`` and ``cut_off`` merged, sorted intervals."""
    end = min(end, now)
    out = Uptime()
    cut = _subtract(cut_off, maintenance) if cut_off else []
    marks = [(start, initial)] + [(at, st) for at, st in flips if start <= at < end] + [(end, initial)]
    for (s, state), (e, _) in zip(marks, marks[1:], strict=False):
        if e <= s:
            continue
        span = (e - s).total_seconds()
        in_window = _overlap(s, e, maintenance) if state is not State.MAINTENANCE else span
        out.seconds[State.MAINTENANCE.value] += in_window
        if state is not State.MAINTENANCE:
            # UNKNOWN stays unknown: before its first check the monitor was not there to be cut off.
            moved = _overlap(s, e, cut) if cut and state in AVAILABLE else 0.0
            out.seconds[state.value] += span - in_window - moved
            out.seconds[State.UNREACHABLE.value] += moved
    return out


async def monitor_uptime(sessionmaker: async_sessionmaker, monitor_id: int, start: datetime, end: datetime,
                         now: datetime, calendar: Calendar | None = None) -> Uptime:
    """Uptime of one monitor over [start, end), read from its flips and the maintenance windows."""
    async with sessionmaker() as session:
        before = (await session.execute(
            select(Flip.new_state).where(Flip.monitor_id == monitor_id, Flip.at < start)
            .order_by(Flip.at.desc(), Flip.id.desc()).limit(1))).scalar()
        rows = (await session.execute(
            select(Flip.at, Flip.new_state).where(Flip.monitor_id == monitor_id, Flip.at >= start,
                                                  Flip.at < end).order_by(Flip.at, Flip.id))).all()
    calendar = calendar if calendar is not None else await load_calendar(sessionmaker)
    windows = calendar.intervals(await scope_keys(sessionmaker, monitor_id), start, min(end, now)) \
        if calendar else []
    initial = State(before) if before else State.UNKNOWN
    return uptime_from(initial, [(at, State(s)) for at, s in rows], windows, start, end, now)
