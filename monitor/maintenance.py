"""Maintenance windows: when they occur, whom they cover, and creating them with validation.

A window covers a scope: one monitor, one server (its monitors), one network device (its monitors and
everything behind it: child devices, their servers and monitors) or one customer (the monitors of the
customer's services and servers). ``ScopeKeys`` of a monitor lists every scope that reaches it, so asking
"is monitor M in maintenance at t" is a set intersection plus the occurrence arithmetic here.

Recurring windows use an RFC 5545 RRULE (``FREQ=WEEKLY;BYDAY=FR;INTERVAL=2``, ``FREQ=MONTHLY;BYMONTHDAY=1``,
...) expanded with dateutil from ``starts_at`` in the window's own time zone, so a weekly 02:00 Tehran
window stays at 02:00 Tehran time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.errors import InvalidInput
from monitor.models import Customer, MaintenanceWindow, Monitor, NetworkDevice, Server, Service

__all__ = ["WindowSpec", "occurrences", "merge", "Calendar", "create_window", "scope_keys", "scope_keys_in",
           "load_calendar", "in_maintenance", "Timing", "timing", "WindowLine", "list_windows", "SCOPES"]

MAX_OCCURRENCES = 5000
Interval = tuple[datetime, datetime]
SCOPES = ("monitor", "server", "device", "customer")
SCOPE_MODELS = {"monitor": Monitor, "server": Server, "device": NetworkDevice, "customer": Customer}
MAX_TITLE = 200  # the column's length


@dataclass(frozen=True, slots=True)
class WindowSpec:
    id: int
    scope: tuple[str, int]
    starts_at: datetime
    ends_at: datetime | None
    rrule: str | None = None
    duration_s: int | None = None
    timezone: str = "Asia/Tehran"

    @classmethod
    def of(cls, row: MaintenanceWindow) -> WindowSpec:
        kind = next(k for k in SCOPES if getattr(row, f"{k}_id") is not None)
        return cls(row.id, (kind, getattr(row, f"{kind}_id")), row.starts_at, row.ends_at, row.rrule,
                   row.duration_s, row.timezone)


def _recurring(w: WindowSpec, start: datetime, end: datetime) -> list[Interval]:
    zone = ZoneInfo(w.timezone)
    length = timedelta(seconds=w.duration_s or 0)
    local = w.starts_at.astimezone(zone).replace(tzinfo=None)
    rule = rrulestr(w.rrule, dtstart=local, cache=False)
    lo = (start - length).astimezone(zone).replace(tzinfo=None)
    hi = end.astimezone(zone).replace(tzinfo=None)
    out = []
    for occ in rule.xafter(lo, count=MAX_OCCURRENCES, inc=True):
        if occ >= hi:
            break
        s = occ.replace(tzinfo=zone).astimezone(UTC)
        if w.ends_at is not None and s >= w.ends_at:
            break
        out.append((s, s + length))
    return out


def occurrences(w: WindowSpec, start: datetime, end: datetime) -> list[Interval]:
    """The window's occurrences that overlap [start, end), clipped to it."""
    if w.rrule:
        raw = _recurring(w, start, end)
    else:
        raw = [(w.starts_at, w.ends_at)] if w.ends_at is not None else []
    return [(max(s, start), min(e, end)) for s, e in raw if s < end and e > start]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[list[datetime]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


class Calendar:
    """The windows in force, indexed by scope, for the runner (is M in maintenance now?) and for uptime."""

    def __init__(self, windows: Iterable[WindowSpec]) -> None:
        self._by_scope: dict[tuple[str, int], list[WindowSpec]] = {}
        for w in windows:
            self._by_scope.setdefault(w.scope, []).append(w)

    def windows_for(self, keys: Iterable[tuple[str, int]]) -> list[WindowSpec]:
        return [w for k in keys for w in self._by_scope.get(k, ())]

    def intervals(self, keys: Iterable[tuple[str, int]], start: datetime, end: datetime) -> list[Interval]:
        return merge(i for w in self.windows_for(keys) for i in occurrences(w, start, end))

    def active(self, keys: Iterable[tuple[str, int]], now: datetime) -> bool:
        return bool(self.intervals(keys, now, now + timedelta(microseconds=1)))

    def __bool__(self) -> bool:
        return bool(self._by_scope)


def _validate(starts_at: datetime, ends_at: datetime | None, rrule: str | None, duration_s: int | None,
              timezone: str, scope: dict[str, int | None]) -> None:
    if sum(v is not None for v in scope.values()) != 1:
        raise InvalidInput("scope", "give exactly one of monitor_id, server_id, device_id, customer_id")
    if starts_at.tzinfo is None or (ends_at is not None and ends_at.tzinfo is None):
        raise InvalidInput("starts_at", "must carry a time zone")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("timezone", f"unknown time zone {timezone!r}") from None
    if rrule is None:
        if ends_at is None or ends_at <= starts_at:
            raise InvalidInput("ends_at", "a one-off window needs ends_at after starts_at")
        return
    if not duration_s or duration_s <= 0:
        raise InvalidInput("duration_s", "a recurring window needs a positive duration_s")
    try:
        rrulestr(rrule, dtstart=starts_at.replace(tzinfo=None))
    except (ValueError, TypeError) as exc:
        raise InvalidInput("rrule", f"not a valid RRULE: {exc}") from None


async def create_window(sessionmaker: async_sessionmaker, *, starts_at: datetime, now: datetime,
                        ends_at: datetime | None = None, rrule: str | None = None,
                        duration_s: int | None = None, timezone: str = "Asia/Tehran", title: str = "",
                        **scope: int | None) -> MaintenanceWindow:
    """Validate and store a window; raises ``InvalidInput`` naming the field (nothing is written then)."""
    unknown = set(scope) - {f"{k}_id" for k in SCOPES}
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "unknown scope")
    _validate(starts_at, ends_at, rrule, duration_s, timezone, scope)
    if len(title) > MAX_TITLE:
        raise InvalidInput("title", f"at most {MAX_TITLE} characters")
    row = MaintenanceWindow(title=title, starts_at=starts_at, ends_at=ends_at, rrule=rrule,
                            duration_s=duration_s, timezone=timezone, created_at=now, **scope)
    field, ident = next((k, v) for k, v in scope.items() if v is not None)
    async with sessionmaker() as session, session.begin():
        # A window on a row that does not exist would cover nothing (or fail on the foreign key): refused.
        if await session.get(SCOPE_MODELS[field.removesuffix("_id")], ident) is None:
            raise InvalidInput(field, f"no such {field.removesuffix('_id')} {ident}")
        session.add(row)
    return row


@dataclass(frozen=True, slots=True)
class Timing:
    """Where a window stands at ``now``: ``current`` (an occurrence covers now), ``upcoming`` (the next
    occurrence starts later) or ``past`` (no occurrence is left); ``start``/``end`` is the occurrence in
    force or next, or for a past window its last known end (``start`` None for a recurring series)."""

    when: str
    start: datetime | None
    end: datetime | None


HORIZON = timedelta(days=400)  # a recurring window's next occurrence is looked for this far ahead


def timing(w: WindowSpec, now: datetime) -> Timing:
    """The window's standing at ``now`` (a pure function of the window and the time)."""
    if not w.rrule:
        if w.ends_at is not None and w.starts_at <= now < w.ends_at:
            return Timing("current", w.starts_at, w.ends_at)
        return Timing("upcoming" if w.starts_at > now else "past", w.starts_at, w.ends_at)
    length = timedelta(seconds=w.duration_s or 0)
    for s, _e in _recurring(w, now, now + HORIZON):
        if s + length > now:  # the first occurrence not yet over (its start may be before now)
            return Timing("current" if s <= now else "upcoming", s, s + length)
    return Timing("past", None, w.ends_at)


@dataclass(frozen=True, slots=True)
class WindowLine:
    window: MaintenanceWindow
    scope: str  # monitor, server, device or customer
    scope_id: int
    scope_name: str
    timing: Timing


ORDER = {"current": 0, "upcoming": 1, "past": 2}


async def list_windows(sessionmaker: async_sessionmaker, now: datetime) -> list[WindowLine]:
    """Every window with its scope's name and its standing at ``now``: current ones first (ending soonest),
    then upcoming (starting soonest), then past (most recent first)."""
    async with sessionmaker() as session:
        rows = (await session.execute(select(MaintenanceWindow))).scalars().all()
        specs = [WindowSpec.of(r) for r in rows]
        names: dict[tuple[str, int], str] = {}
        for kind, model in SCOPE_MODELS.items():
            wanted = {sp.scope[1] for sp in specs if sp.scope[0] == kind}
            if not wanted:
                continue
            label = (model.display_name if kind == "customer" else model.name)
            for ident, name, shown in (await session.execute(
                    select(model.id, model.name, label).where(model.id.in_(wanted)))).all():
                names[(kind, ident)] = shown or name
    lines = [WindowLine(r, sp.scope[0], sp.scope[1], names.get(sp.scope, ""), timing(sp, now))
             for r, sp in zip(rows, specs, strict=True)]

    def key(ln: WindowLine):
        t = ln.timing
        at = (t.end if t.when == "current" else t.start if t.when == "upcoming" else t.end or t.start) or now
        stamp = at.timestamp()
        return ORDER[t.when], -stamp if t.when == "past" else stamp, ln.window.id

    return sorted(lines, key=key)


async def load_calendar(sessionmaker: async_sessionmaker) -> Calendar:
    async with sessionmaker() as session:
        rows = (await session.execute(select(MaintenanceWindow))).scalars().all()
    return Calendar(WindowSpec.of(r) for r in rows)


def device_chain(device_id: int | None, parents: dict[int, int | None]) -> list[int]:
    """The device and its ancestors, nearest first (a cycle in bad data ends the walk)."""
    chain: list[int] = []
    while device_id is not None and device_id not in chain:
        chain.append(device_id)
        device_id = parents.get(device_id)
    return chain


async def scope_keys(sessionmaker: async_sessionmaker, monitor_id: int) -> list[tuple[str, int]]:
    """Every scope that reaches one monitor (for a one-off question such as an uptime query)."""
    async with sessionmaker() as session:
        return await scope_keys_in(session, monitor_id)


async def scope_keys_in(session: AsyncSession, monitor_id: int) -> list[tuple[str, int]]:
    mon = await session.get(Monitor, monitor_id)
    if mon is None:
        return []
    server = await session.get(Server, mon.server_id) if mon.server_id else None
    service_id = mon.service_id or (server.service_id if server else None)
    service = await session.get(Service, service_id) if service_id else None
    parents = dict((await session.execute(select(NetworkDevice.id, NetworkDevice.parent_id))).all())
    first_device = mon.device_id or (server.parent_device_id if server else None)
    keys = [("monitor", mon.id)] + [("device", d) for d in device_chain(first_device, parents)]
    if server:
        keys.append(("server", server.id))
    if service:
        keys.append(("customer", service.customer_id))
    return keys


async def in_maintenance(session: AsyncSession, monitor_id: int, at: datetime) -> bool:
    """Whether a window covers the monitor at ``at`` (the incident engine's ``in_maintenance`` hook)."""
    keys = await scope_keys_in(session, monitor_id)
    clauses = [getattr(MaintenanceWindow, f"{kind}_id") == ident for kind, ident in keys]
    if not clauses:
        return False
    rows = (await session.execute(select(MaintenanceWindow).where(or_(*clauses)))).scalars().all()
    return Calendar(WindowSpec.of(r) for r in rows).active(keys, at)
