"""Auto-ticketing: every incident opens exactly one ticket for the owning customer's service, and the ticket
closes with the incident's summary when the incident is resolved.

The desk claims incidents (``incidents`` never imports ``tickets``) with a conditional UPDATE on the
incident's ``ticket_opened_at`` / ``ticket_closed_at`` whose row count must be 1, in the same transaction
that opens or closes the ticket: several processes can share the work, and a crash loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidents.messages import jalali, persian_digits, persian_duration
from incidents.models import Incident, Source, Status
from incidents.wakeloop import run_woken
from monitor.clock import Clock
from monitor.work import MAX_ITEM_ATTEMPTS, WorkerFailures, error_text
from tickets.models import Source as TicketSource
from tickets.monitoring import close_monitoring_ticket, open_monitoring_ticket

__all__ = ["AutoTicketer", "ticket_subject", "ticket_body", "closing_summary"]

log = logging.getLogger("negahban.tickets")

_SEVERITY_FA = {"urgent": "ضروری", "important": "مهم"}


def ticket_subject(incident: Incident) -> str:
    return f"رخداد {persian_digits(str(incident.id))}: {incident.title}"[:300]


def ticket_body(incident: Incident) -> str:
    return (f"این تیکت را سامانهٔ پایش به‌طور خودکار باز کرده است. اختلال ({_SEVERITY_FA[incident.severity]}) "
            f"از {jalali(incident.opened_at)} شناسایی شد.\n{incident.summary}").strip()


def closing_summary(incident: Incident) -> str:
    return (f"رخداد {persian_digits(str(incident.id))} در {jalali(incident.resolved_at)} برطرف شد. "
            f"مدت اختلال: {persian_duration(incident.duration_s or 0)}.")


class AutoTicketer:
    name = "auto_ticketing"  # its loop's name and the worker label of its failures

    def __init__(self, sessionmaker: async_sessionmaker, clock: Clock, *, batch: int = 200,
                 sweep_interval_s: float = 5.0, failures: WorkerFailures | None = None) -> None:
        self.sessionmaker, self.clock = sessionmaker, clock
        self.failures = failures or WorkerFailures()
        self.batch, self.sweep_interval_s = batch, sweep_interval_s
        # Set by the incident stage after it commits; the sweep covers other processes.
        self.wake = asyncio.Event()
        # Set after every pass (for whoever waits on this stage's work, e.g. a test).
        self.passed = asyncio.Event()
        self._stopping = False

    async def run_once(self) -> int:
        """Open due tickets, then close those of resolved incidents. Return how many changed."""
        return await self._each(self._to_open(), self._open_one) + await self._each(self._to_close(),
                                                                                     self._close_one)

    def _to_open(self):
        return select(Incident.id).where(Incident.ticket_opened_at.is_(None),
                                         Incident.desk_attempts < MAX_ITEM_ATTEMPTS).order_by(Incident.id)

    def _to_close(self):
        return select(Incident.id).where(Incident.status == Status.RESOLVED, Incident.ticket_opened_at.is_not(None),
                                         Incident.ticket_closed_at.is_(None),
                                         Incident.desk_attempts < MAX_ITEM_ATTEMPTS).order_by(Incident.id)

    async def _each(self, stmt, step) -> int:
        async with self.sessionmaker() as session:
            ids = list((await session.execute(stmt.limit(self.batch))).scalars())
        done = 0
        for incident_id in ids:
            try:
                done += await step(incident_id)
            except Exception as exc:  # recorded on the incident; the incidents behind it still get tickets
                await self._failed(incident_id, exc)
        return done

    async def _failed(self, incident_id: int, exc: Exception) -> None:
        async with self.sessionmaker() as session, session.begin():
            incident = await session.get(Incident, incident_id)
            incident.desk_attempts += 1
            incident.desk_error = error_text(exc)
            gave_up = incident.desk_attempts >= MAX_ITEM_ATTEMPTS
        self.failures.record(self.name, f"incident:{incident_id}", exc, gave_up=gave_up)

    async def _claim(self, session: AsyncSession, incident_id: int, column, now: datetime) -> Incident | None:
        claimed = await session.execute(update(Incident).where(Incident.id == incident_id, column.is_(None))
                                        .values({column.key: now}))
        return await session.get(Incident, incident_id) if claimed.rowcount == 1 else None

    async def _open_one(self, incident_id: int) -> bool:
        now = self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            incident = await self._claim(session, incident_id, Incident.ticket_opened_at, now)
            if incident is None:
                return False
            if incident.service_id is None:
                # Company infrastructure with no owning service: the NOC works it as an incident; every
                # affected customer was already told through the notification outbox.
                log.info("ticket_not_needed incident=%s reason=no_service", incident.id)
                return True
            source = TicketSource.ALERTMANAGER if incident.source == Source.ALERTMANAGER else TicketSource.MONITORING
            await open_monitoring_ticket(session, service_id=incident.service_id, priority=incident.severity,
                                         subject=ticket_subject(incident), body=ticket_body(incident),
                                         incident_id=incident.id, now=now, source=source)
            return True

    async def _close_one(self, incident_id: int) -> bool:
        now = self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            incident = await self._claim(session, incident_id, Incident.ticket_closed_at, now)
            if incident is None:
                return False
            await close_monitoring_ticket(session, incident_id=incident.id, body=closing_summary(incident),
                                          now=now)
            return True

    async def run(self) -> None:
        """Open and close tickets when woken and at least every ``sweep_interval_s``, until ``stop``."""
        await run_woken(self.run_once, self.wake, self.sweep_interval_s, lambda: self._stopping, log,
                        "auto_ticketing_pass_failed", passed=self.passed)

    def stop(self) -> None:
        self._stopping = True
        self.wake.set()
