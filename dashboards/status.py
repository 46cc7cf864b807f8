"""What the status page announces: maintenance from the engine's windows, and incidents staff wrote public
updates about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from incidents.models import Incident, Status
from incidents.statuspage.models import PublicUpdate
from incidents.statuspage.updates import updates_of
from monitor.maintenance import load_calendar, occurrences, scope_keys
from monitor.models import MaintenanceWindow

__all__ = ["Announcement", "announcements", "PublicIncident", "public_incidents"]


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
    """What a visitor may read of an incident: how bad, since when, whether over, and what staff published.
    No title, monitor, device, customer or reason code (rule 4)."""

    id: int
    severity: str
    opened_at: datetime
    resolved_at: datetime | None
    updates: list[PublicUpdate]  # newest first


async def public_incidents(sm: async_sessionmaker, now: datetime, recent: timedelta,
                           limit: int = 20) -> list[PublicIncident]:
    """Incidents with at least one public update that are open or were resolved within ``recent``; open
    ones first, newest first."""
    published = exists(select(PublicUpdate.id).where(PublicUpdate.incident_id == Incident.id))
    stmt = (select(Incident).where(published, or_(Incident.status != Status.RESOLVED,
                                                  Incident.resolved_at >= now - recent))
            .order_by(Incident.resolved_at.is_not(None), Incident.opened_at.desc(), Incident.id.desc())
            .limit(limit))
    async with sm() as s:
        rows = list((await s.execute(stmt)).scalars())
        updates = await updates_of(s, [i.id for i in rows])
    return [PublicIncident(i.id, i.severity, i.opened_at, i.resolved_at, updates[i.id]) for i in rows]
