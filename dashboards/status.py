"""What the status page shows, as plain data: the overall banner, the public services grouped with their
90-day bars, the incidents a visitor may read (open ones and those of the last 14 days) with their public
updates, maintenance from the engine's windows, and the entries of the Atom feed.

Public, so it carries names a customer chose to show (a service's display name, its status-page group) and
states; never a monitor, device, customer, incident title or reason code (rule 4)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from dashboards.availability import Span, load_histories, spans_uptime, total
from dashboards.portal import last_days, public_services
from dashboards.svg import uptime_level
from incidents.models import Incident, IncidentAffected, Status
from incidents.statuspage.models import PublicUpdate
from incidents.statuspage.updates import updates_of
from monitor.maintenance import load_calendar, occurrences, scope_keys
from monitor.models import MaintenanceWindow, Service, State

__all__ = ["Announcement", "announcements", "PublicIncident", "public_incidents", "overall", "Overall",
           "DayCell", "PublicService", "ServiceGroup", "StatusView", "status_view", "FeedEntry", "feed_entries",
           "BAR_DAYS", "HISTORY_DAYS"]

BAR_DAYS = 90
HISTORY_DAYS = 14


@dataclass(frozen=True, slots=True)
class Announcement:
    title: str
    start: datetime
    end: datetime
    active: bool


async def announcements(sm: async_sessionmaker, monitor_ids: list[int], now: datetime,
                        ahead: timedelta) -> list[Announcement]:
    """Windows touching any of ``monitor_ids`` that are under way or start within ``ahead``."""
    calendar = await load_calendar(sm)
    if not calendar or not monitor_ids:
        return []
    keys = {k for mid in monitor_ids for k in await scope_keys(sm, mid)}
    windows = calendar.windows_for(keys)
    async with sm() as s:
        titles = dict((await s.execute(select(MaintenanceWindow.id, MaintenanceWindow.title)
                                       .where(MaintenanceWindow.id.in_([w.id for w in windows])))).all())
    seen: dict[tuple[datetime, datetime], str] = {}
    for w in windows:
        for start, end in occurrences(w, now, now + ahead):
            seen.setdefault((start, end), titles.get(w.id, ""))
    return [Announcement(t, s, e, s <= now < e) for (s, e), t in sorted(seen.items())]


@dataclass(frozen=True, slots=True)
class PublicIncident:
    """What a visitor may read of an incident: how bad, since when, whether over, the public services it
    touched (their display names) and what staff published. No title, monitor, device, customer or reason
    code (rule 4)."""

    id: int
    severity: str
    opened_at: datetime
    resolved_at: datetime | None
    updates: list[PublicUpdate]  # newest first
    services: tuple[str, ...] = ()


async def public_incidents(sm: async_sessionmaker, now: datetime, recent: timedelta, limit: int = 20,
                           services: dict[int, str] | None = None) -> list[PublicIncident]:
    """Incidents a visitor may read that are open or were resolved within ``recent``, open ones first,
    newest first: those staff published an update about, and those touching one of ``services`` (public
    service id -> display name; a customer opted them in, so their outages are public)."""
    services = services or {}
    published = exists(select(PublicUpdate.id).where(PublicUpdate.incident_id == Incident.id))
    public = [published]
    if services:
        touched = select(IncidentAffected.incident_id).where(IncidentAffected.service_id.in_(list(services)))
        public += [Incident.service_id.in_(list(services)), Incident.id.in_(touched)]
    stmt = (select(Incident).where(or_(*public), or_(Incident.status != Status.RESOLVED,
                                                     Incident.resolved_at >= now - recent))
            .order_by(Incident.resolved_at.is_not(None), Incident.opened_at.desc(), Incident.id.desc())
            .limit(limit))
    async with sm() as s:
        rows = list((await s.execute(stmt)).scalars())
        ids = [i.id for i in rows]
        updates = await updates_of(s, ids)
        hit: dict[int, set[int]] = {i.id: ({i.service_id} if i.service_id in services else set()) for i in rows}
        if ids and services:
            for iid, sid in (await s.execute(select(IncidentAffected.incident_id, IncidentAffected.service_id)
                                             .where(IncidentAffected.incident_id.in_(ids),
                                                    IncidentAffected.service_id.in_(list(services))))).all():
                hit[iid].add(sid)
    return [PublicIncident(i.id, i.severity, i.opened_at, i.resolved_at, updates[i.id],
                           tuple(sorted(services[x] for x in hit[i.id] if services[x]))) for i in rows]


class Overall:
    """The banner's three answers (and one for a page with nothing to show)."""

    OPERATIONAL, PARTIAL, MAJOR, EMPTY = "operational", "partial", "major", "empty"


_OUT = {State.DOWN.value, State.UNREACHABLE.value}


def overall(states: Sequence[str]) -> str:
    """Pure: the banner from the public services' current states. More than half of them out (DOWN or
    UNREACHABLE) is a major outage; any out or DEGRADED is a partial one; otherwise all is operational
    (MAINTENANCE is announced, UNKNOWN is not an outage)."""
    if not states:
        return Overall.EMPTY
    out = sum(1 for s in states if s in _OUT)
    if out * 2 > len(states):
        return Overall.MAJOR
    if out or State.DEGRADED.value in states:
        return Overall.PARTIAL
    return Overall.OPERATIONAL


@dataclass(frozen=True, slots=True)
class DayCell:
    start: datetime             # the Tehran day's midnight
    ratio: float | None         # available / known, None when nothing of the day was known
    level: str                  # good / warn / bad / none (``dashboards.svg.uptime_level``)


@dataclass(frozen=True, slots=True)
class PublicService:
    id: int
    title: str                  # the display name; "" when the customer gave none (the internal name is not shown)
    state: str
    days: list[DayCell]         # oldest first
    ratio: float | None         # over the whole bar


@dataclass(frozen=True, slots=True)
class ServiceGroup:
    title: str                  # "" for services in no group
    services: list[PublicService]


@dataclass(frozen=True, slots=True)
class StatusView:
    generated_at: datetime
    days: list[datetime]        # the bars' days (Tehran midnights), oldest first, the same for every service
    overall: str
    groups: list[ServiceGroup]
    current: list[PublicIncident]
    past: list[PublicIncident]
    maintenance: list[Announcement]


async def _groups(sm: async_sessionmaker, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    async with sm() as s:
        return dict((await s.execute(select(Service.id, Service.status_group).where(Service.id.in_(ids)))).all())


def _grouped_bars(services, by_monitor, group_of, spans, whole, now) -> list[ServiceGroup]:
    grouped: dict[str, list[PublicService]] = {}
    for svc in services:
        bars = spans_uptime([by_monitor[m] for m in svc.monitor_ids], spans, now)
        cells = [DayCell(b.span.start, b.ratio, uptime_level(b.ratio)) for b in bars]
        grouped.setdefault(group_of.get(svc.id) or "", []).append(
            PublicService(svc.id, svc.display_name, svc.state, cells, total(whole, bars).ratio))
    # Named groups in name order, the services in no group last.
    return [ServiceGroup(g, grouped[g]) for g in sorted(grouped, key=lambda g: (g == "", g))]


async def status_view(sm: async_sessionmaker, now: datetime, *, days: int = BAR_DAYS,
                      history: timedelta = timedelta(days=HISTORY_DAYS)) -> StatusView:
    """Everything the public status page shows, read once: one query for the services, one read of all
    their monitors' flips for the bars (``dashboards.availability``, the portal's arithmetic)."""
    services = await public_services(sm)
    spans = last_days(days, now)
    whole = Span(spans[0].start, spans[-1].end)
    histories = await load_histories(sm, [m for s in services for m in s.monitor_ids], whole.start, whole.end)
    by_monitor = {h.monitor_id: h for h in histories}
    group_of = await _groups(sm, [s.id for s in services])
    # The arithmetic (hundreds of milliseconds at 200 services) runs in a thread: the loop keeps answering,
    # the cached page among others, while the page is being made again.
    groups = await asyncio.to_thread(_grouped_bars, services, by_monitor, group_of, spans, whole, now)
    titles = {s.id: s.display_name for s in services}
    incidents = await public_incidents(sm, now, history, limit=50, services=titles)
    maintenance = await announcements(sm, [m for s in services for m in s.monitor_ids], now, history)
    return StatusView(now, [d.start for d in spans], overall([s.state for s in services]), groups,
                      [i for i in incidents if i.resolved_at is None],
                      [i for i in incidents if i.resolved_at is not None], maintenance)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One public update, for the Atom feed."""

    id: int
    incident_id: int
    severity: str
    status: str | None
    text: str
    at: datetime
    resolved: bool


async def feed_entries(sm: async_sessionmaker, limit: int = 50) -> list[FeedEntry]:
    """The newest ``limit`` public updates, newest first (anything published is public)."""
    stmt = (select(PublicUpdate, Incident.severity, Incident.resolved_at)
            .join(Incident, Incident.id == PublicUpdate.incident_id)
            .order_by(PublicUpdate.at.desc(), PublicUpdate.id.desc()).limit(limit))
    async with sm() as s:
        rows = (await s.execute(stmt)).all()
    return [FeedEntry(u.id, u.incident_id, sev, u.status, u.text, u.at, resolved is not None)
            for u, sev, resolved in rows]
