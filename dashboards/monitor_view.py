"""What the staff monitor page shows, read in one place: the monitor and what it belongs to, its state now,
its latest check, uptime over 24 h / 7 d / 30 d, its recent flips, its open incident, its parents with their
states and, for a voted monitor, each location's latest check.

State, latest check, parents and locations come from the running service's runner when there is one (its
``memories``, ``latest``, ``topology`` and ``board`` are what the engine decides with); without it (a web
node that runs no checks) they are read from the database: ``monitor_states``, the newest ``probe_results``
and ``location_results`` rows, and a topology built from the inventory. Uptime is ``monitor_uptime``'s,
from the flips: this module adds no arithmetic of its own. Read only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidents.models import Incident, Status
from monitor.catalog import load_links
from monitor.errors import NotFound
from monitor.maintenance import load_calendar
from monitor.models import (
    CENTRAL,
    Customer,
    Flip,
    Location,
    LocationResult,
    Monitor,
    MonitorState,
    NetworkDevice,
    ProbeResultRow,
    Server,
    Service,
)
from monitor.topology import Node, build_topology
from monitor.uptime import Uptime, monitor_uptime

__all__ = ["MonitorPage", "Check", "LocationCheck", "Parent", "monitor_page", "monitor_list", "ListRow",
           "UPTIME_RANGES", "FLIPS_SHOWN"]

UPTIME_RANGES: tuple[tuple[str, timedelta], ...] = (
    ("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30)))
FLIPS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class Check:
    """A check: the runner's latest in memory (``live``) or the newest stored result."""

    at: datetime | None
    outcome: str
    reason: str
    message: str
    latency_s: float
    phases: Mapping[str, float] = field(default_factory=dict)
    live: bool = False


@dataclass(frozen=True, slots=True)
class LocationCheck:
    location: str
    display_name: str
    check: Check | None  # None: this location has sent nothing for the monitor yet
    streak: int = 0
    blind: bool = False


@dataclass(frozen=True, slots=True)
class Parent:
    level: int  # 1: nearest (the host check, or the first device up the chain)
    id: int
    name: str
    kind: str
    state: str


@dataclass
class MonitorPage:
    monitor: Monitor
    server: str | None
    device: str | None
    service: str | None
    customer: str | None
    state: str
    since: datetime | None
    last_check_at: datetime | None
    flapping: bool
    live: bool  # state and latest check from the running service's memory
    latest: Check | None
    uptime: list[tuple[str, Uptime]]
    flips: list[Flip]
    incident: Incident | None
    parents: list[Parent]
    locations: list[LocationCheck]

    @property
    def blind(self) -> list[str]:
        return [x.location for x in self.locations if x.blind]


@dataclass(frozen=True, slots=True)
class ListRow:
    id: int
    name: str
    kind: str
    target: str
    state: str
    since: datetime | None
    customer: str | None


def _runner(services: Mapping[str, Any]):
    """The running service's runner, when this node runs one (something holding ``memories``)."""
    runner = services.get("runner")
    return runner if hasattr(runner, "memories") else None


async def _name(session: AsyncSession, column, row_id: int | None) -> str | None:
    if row_id is None:
        return None
    model = column.class_
    return (await session.execute(select(column).where(model.id == row_id))).scalar()


async def _belongs(session: AsyncSession, m: Monitor) -> tuple[str | None, str | None, str | None, str | None]:
    """The monitor's server, device, service and customer (a server's service when the monitor names none)."""
    service_id = m.service_id
    if service_id is None and m.server_id is not None:
        service_id = (await session.execute(select(Server.service_id).where(Server.id == m.server_id))).scalar()
    customer_id = None
    if service_id is not None:
        customer_id = (await session.execute(
            select(Service.customer_id).where(Service.id == service_id))).scalar()
    customer = await _name(session, Customer.display_name, customer_id) or await _name(
        session, Customer.name, customer_id)
    service = await _name(session, Service.display_name, service_id) or await _name(
        session, Service.name, service_id)
    return (await _name(session, Server.name, m.server_id), await _name(session, NetworkDevice.name, m.device_id),
            service, customer)


def _stored_check(row: ProbeResultRow | None) -> Check | None:
    if row is None:
        return None
    details = row.details or {}
    phases = details.get("phases") if isinstance(details.get("phases"), dict) else {}
    return Check(row.at, row.outcome, row.reason, row.message, row.latency_s, phases)


def _live_check(latest, at: datetime | None) -> Check | None:
    if latest is None:
        return None
    r = latest.result
    return Check(at, str(r.outcome), r.reason, r.message, r.latency_s, dict(r.phases), live=True)


async def _state(session: AsyncSession, runner, mid: int) -> tuple[str, datetime | None, datetime | None, bool,
                                                                  bool, Check | None]:
    memory = runner.memories.get(mid) if runner is not None else None
    if memory is not None:
        latest = _live_check(getattr(runner, "latest", {}).get(mid), memory.last_check_at)
        if latest is None:  # restarted since the last check: the stored one is still the latest
            latest = await _newest_result(session, mid)
        return memory.state.value, memory.since, memory.last_check_at, memory.flapping, True, latest
    row = await session.get(MonitorState, mid)
    latest = await _newest_result(session, mid)
    if row is None:
        return "UNKNOWN", None, None, False, False, latest
    return row.state, row.since, row.last_check_at, bool((row.data or {}).get("flapping")), False, latest


async def _newest_result(session: AsyncSession, mid: int) -> Check | None:
    row = (await session.execute(select(ProbeResultRow).where(ProbeResultRow.monitor_id == mid)
                                 .order_by(ProbeResultRow.at.desc(), ProbeResultRow.id.desc()).limit(1))).scalar()
    return _stored_check(row)


async def _db_topology(sessionmaker: async_sessionmaker, session: AsyncSession):
    rows = (await session.execute(select(Monitor.id, Monitor.kind, Monitor.server_id, Monitor.device_id))).all()
    servers, devices = await load_links(sessionmaker)
    return build_topology((Node(i, k, s, d) for i, k, s, d in rows), servers, devices)


async def _parents(sessionmaker: async_sessionmaker, session: AsyncSession, runner, mid: int) -> list[Parent]:
    live = getattr(runner, "topology", None)
    topology = live if live is not None and live.parents else await _db_topology(
        sessionmaker, session)
    levels = topology.parents.get(mid, [])
    wanted = {p for level in levels for p in level}
    if not wanted:
        return []
    rows = {i: (n, k) for i, n, k in (await session.execute(
        select(Monitor.id, Monitor.name, Monitor.kind).where(Monitor.id.in_(wanted)))).all()}
    stored = dict((await session.execute(
        select(MonitorState.monitor_id, MonitorState.state).where(MonitorState.monitor_id.in_(wanted)))).all())
    out = []
    for depth, level in enumerate(levels, start=1):
        for p in level:
            memory = runner.memories.get(p) if runner is not None else None
            state = memory.state.value if memory is not None else stored.get(p, "UNKNOWN")
            name, kind = rows.get(p, (str(p), ""))
            out.append(Parent(depth, p, name, kind, state))
    return out


def _seen_check(seen) -> Check:
    return Check(seen.at, seen.outcome, seen.reason, seen.message, seen.latency_s, live=True)


async def _locations(session: AsyncSession, runner, m: Monitor) -> list[LocationCheck]:
    assigned = list(m.locations or [])
    if not assigned:
        return []
    names = dict((await session.execute(
        select(Location.name, Location.display_name).where(Location.name.in_(assigned)))).all())
    board = getattr(runner, "board", None)
    if board is not None:
        seen, blind = board.seen.get(m.id, {}), board.blind()
        return [LocationCheck(loc, names.get(loc) or loc, _seen_check(seen[loc]) if loc in seen else None,
                              seen[loc].streak if loc in seen else 0, loc in blind) for loc in assigned]
    newest = (select(LocationResult.location, func.max(LocationResult.at).label("at"))
              .where(LocationResult.monitor_id == m.id).group_by(LocationResult.location).subquery())
    rows = (await session.execute(select(LocationResult).join(
        newest, (LocationResult.location == newest.c.location) & (LocationResult.at == newest.c.at))
        .where(LocationResult.monitor_id == m.id))).scalars()
    by_loc = {r.location: Check(r.at, r.outcome, r.reason, r.message, r.latency_s) for r in rows}
    return [LocationCheck(loc, names.get(loc) or loc, by_loc.get(loc)) for loc in assigned]


async def _uptime(sessionmaker: async_sessionmaker, runner, mid: int, now: datetime) -> list[tuple[str, Uptime]]:
    calendar = getattr(runner, "calendar", None) if runner is not None else None
    if calendar is None:
        calendar = await load_calendar(sessionmaker)
    return [(label, await monitor_uptime(sessionmaker, mid, now - span, now, now, calendar))
            for label, span in UPTIME_RANGES]


async def monitor_page(sessionmaker: async_sessionmaker, services: Mapping[str, Any], monitor_id: int,
                       now: datetime) -> MonitorPage:
    """Everything the monitor page shows; ``NotFound`` when there is no such monitor."""
    runner = _runner(services)
    async with sessionmaker() as session:
        m = await session.get(Monitor, monitor_id)
        if m is None:
            raise NotFound(f"monitor {monitor_id}")
        server, device, service, customer = await _belongs(session, m)
        state, since, last_at, flapping, live, latest = await _state(session, runner, m.id)
        flips = list((await session.execute(select(Flip).where(Flip.monitor_id == m.id)
                                            .order_by(Flip.at.desc(), Flip.id.desc()).limit(FLIPS_SHOWN))).scalars())
        incident = (await session.execute(select(Incident).where(
            Incident.monitor_id == m.id, Incident.status != Status.RESOLVED)
            .order_by(Incident.opened_at.desc()).limit(1))).scalar()
        parents = await _parents(sessionmaker, session, runner, m.id)
        locations = await _locations(session, runner, m)
    if m.locations and CENTRAL not in m.locations and latest is not None and not latest.live:
        latest = None  # a voted monitor's stored central result would be stale: its vote is in memory only
    uptime = await _uptime(sessionmaker, runner, m.id, now)
    return MonitorPage(m, server, device, service, customer, state, since, last_at, flapping, live, latest,
                       uptime, flips, incident, parents, locations)


async def monitor_list(sessionmaker: async_sessionmaker, services: Mapping[str, Any], *, state: str = "",
                       kind: str = "") -> list[ListRow]:
    """Every monitor by name, with its state now (the runner's when it runs), filtered by state and kind."""
    runner = _runner(services)
    async with sessionmaker() as session:
        stmt = (select(Monitor.id, Monitor.name, Monitor.kind, Monitor.target, MonitorState.state,
                       MonitorState.since, Customer.display_name, Customer.name)
                .outerjoin(MonitorState, MonitorState.monitor_id == Monitor.id)
                .outerjoin(Service, Service.id == Monitor.service_id)
                .outerjoin(Customer, Customer.id == Service.customer_id).order_by(Monitor.name))
        if kind:
            stmt = stmt.where(Monitor.kind == kind)
        rows = (await session.execute(stmt)).all()
    out = []
    for mid, name, k, target, st, since, cdisplay, cname in rows:
        memory = runner.memories.get(mid) if runner is not None else None
        if memory is not None:
            st, since = memory.state.value, memory.since
        out.append(ListRow(mid, name, k, target, st or "UNKNOWN", since, cdisplay or cname))
    return [r for r in out if not state or r.state == state]
