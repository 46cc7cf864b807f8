"""Subscribers hear of planned maintenance (rule 18): when an occurrence is planned, when it starts and when it
ends, on the public services it covers, through the same outbox as incident notices.

``monitor`` owns the windows and may not know of incidents, so nothing is announced where a window is
written; a sweep reads the windows instead (:func:`announce_maintenance_due`, run by the incident workers
every few seconds and once right after the NOC plans a window). Each occurrence's events are idempotent per
subscriber (``status:maintenance:<window>:<start>:<kind>:<subscription>``, a unique key of the outbox), so
repeated or concurrent sweeps add nothing: a sweep that loses the race on one window rolls that window's
transaction back and runs it again, finding the rows written.

Which services a window covers: those opted in to the status page whose enabled monitors it reaches
(``monitor.maintenance.scope_keys_in``: the monitor, its server, the devices in front of it, its customer),
the same reading as the status page's own maintenance list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidents.statuspage.fanout import announce_maintenance
from incidents.statuspage.notices import public_name
from monitor.maintenance import WindowSpec, occurrences, scope_keys_in
from monitor.models import MaintenanceWindow, Monitor, Service
from monitor.work import WorkerFailures, isolate

__all__ = ["MaintenanceNotices", "covered_services", "due_events", "announce_maintenance_due"]

log = logging.getLogger("negahban.incidents")


@dataclass(frozen=True, slots=True)
class MaintenanceNotices:
    """How far ahead an occurrence is announced as planned, and how long after its end the end still is (a
    sweep that was down longer than ``grace`` does not tell of an end long past)."""

    ahead: timedelta = timedelta(days=14)
    grace: timedelta = timedelta(hours=6)
    channels: tuple[tuple[str, str], ...] = ()  # other ways to reach support, "label: value" (rule 18)


def due_events(w: WindowSpec, now: datetime, config: MaintenanceNotices) -> list[tuple[str, datetime, datetime]]:
    """Pure: the (kind, start, end) events of ``w`` that are due at ``now``: ``scheduled`` for an occurrence
    that starts within ``ahead``, ``starting`` for one under way, ``ended`` for one that ended within
    ``grace``. A window written after its start is never announced as planned."""
    out = []
    for start, end in _whole_occurrences(w, now - config.grace, now + config.ahead):
        if now < start:
            out.append(("scheduled", start, end))
        elif now < end:
            out.append(("starting", start, end))
        else:
            out.append(("ended", start, end))
    return out


def _whole_occurrences(w: WindowSpec, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    """Occurrences overlapping [lo, hi), unclipped (the notice tells the real start and end)."""
    if not w.rrule:
        return [(w.starts_at, w.ends_at)] if w.ends_at and w.starts_at < hi and w.ends_at > lo else []
    length = timedelta(seconds=w.duration_s or 0)
    return [(s, s + length) for s, _e in occurrences(w, lo - length, hi) if s + length > lo]


async def covered_services(session: AsyncSession) -> dict[tuple[str, int], dict[int, str]]:
    """Every scope key that reaches a public service's enabled monitor -> those services (id -> public name)."""
    services = dict((await session.execute(select(Service.id, Service.display_name)
                                           .where(Service.public_status.is_(True)))).all())
    if not services:
        return {}
    monitors = (await session.execute(select(Monitor.id, Monitor.service_id).where(
        Monitor.service_id.in_(list(services)), Monitor.enabled.is_(True)))).all()
    out: dict[tuple[str, int], dict[int, str]] = {}
    for monitor_id, service_id in monitors:
        for key in await scope_keys_in(session, monitor_id):
            out.setdefault(key, {})[service_id] = public_name(services[service_id])
    return out


async def _announce_window(sm: async_sessionmaker, row_id: int, now: datetime, config: MaintenanceNotices,
                           covered: dict[tuple[str, int], dict[int, str]]) -> int:
    async with sm() as session, session.begin():
        row = await session.get(MaintenanceWindow, row_id)
        if row is None:
            return 0
        spec = WindowSpec.of(row)
        components = covered.get(spec.scope, {})
        sent = 0
        for kind, start, end in due_events(spec, now, config) if components else []:
            sent += await announce_maintenance(session, row.id, kind, start, end, row.title, components, now,
                                               list(config.channels))
        return sent


def _maybe_due(row: MaintenanceWindow, now: datetime, config: MaintenanceNotices) -> bool:
    try:
        return bool(due_events(WindowSpec.of(row), now, config))
    except Exception:  # a window the calendar cannot read: its own step fails, is noted and set aside
        return True


async def announce_maintenance_due(sm: async_sessionmaker, now: datetime,
                                   config: MaintenanceNotices = MaintenanceNotices(),
                                   failures: WorkerFailures | None = None) -> int:
    """Queue the maintenance notices due at ``now``, one window per transaction (a window that fails is
    noted and set aside after a few passes; the others go on); return how many were queued. A window that
    loses a race (a concurrent sweep wrote the same notice first) is run again at once, and finds the rows
    written; failing again, it is a failure of its own."""
    async with sm() as session:
        rows = (await session.execute(select(MaintenanceWindow).order_by(MaintenanceWindow.id))).scalars().all()
        # Most sweeps find nothing due: the services' scopes are read only when some window has an event.
        ids = [r.id for r in rows if _maybe_due(r, now, config)]
        covered = await covered_services(session) if ids else {}

    def step(row_id: int):
        async def run() -> int:
            try:
                return await _announce_window(sm, row_id, now, config, covered)
            except IntegrityError:  # a concurrent sweep wrote one of these notices first: once more, at once
                log.info("maintenance_notice_raced window=%s", row_id)
                return await _announce_window(sm, row_id, now, config, covered)
        return run

    done = await isolate("maintenance_notices", ((f"window:{i}", step(i)) for i in ids),
                         failures or WorkerFailures())
    if done.done:
        log.info("maintenance_notices_queued count=%s", done.done)
    return done.done
