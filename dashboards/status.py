"""Maintenance announcements for the status page, from the engine's maintenance windows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from monitor.maintenance import load_calendar, occurrences, scope_keys
from monitor.models import MaintenanceWindow

__all__ = ["Announcement", "announcements"]


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
