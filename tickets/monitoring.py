"""Tickets opened and closed by monitoring: the entry points the incidents stage calls.

These bypass customer intake (the Persian text rules, required fields, suspension and duplicate checks are
about what customers type) but still take the SLA due time from the office calendar. Both are idempotent
per incident: ``tickets.incident_id`` is unique, a second open returns the ticket already there, a second
close changes nothing. They run inside the caller's session and transaction, so the incidents stage can
open the ticket and mark its incident claimed in one commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidents.models import Incident
from incidents.models import Status as IncidentStatus
from monitor.accounts import STAFF, Principal, require_role
from monitor.errors import NotFound
from monitor.models import Monitor, MonitorState, Server, Service, State
from tickets.calendar import load_calendar
from tickets.departments import TECHNICAL
from tickets.models import CLOSED_STATUSES, Priority, Source, Status, Ticket, TicketMessage
from tickets.sla import SlaTargets, first_response_due

__all__ = ["open_monitoring_ticket", "close_monitoring_ticket", "watch_of", "Watch", "WatchedMonitor",
           "WatchedIncident"]

log = logging.getLogger("negahban.tickets")


async def _by_incident(session: AsyncSession, incident_id: int) -> Ticket | None:
    return (await session.execute(select(Ticket).where(Ticket.incident_id == incident_id))).scalar_one_or_none()


async def open_monitoring_ticket(session: AsyncSession, *, service_id: int, priority: str, subject: str,
                                 body: str, incident_id: int, now: datetime,
                                 source: str = Source.MONITORING, targets: SlaTargets = SlaTargets()) -> Ticket:
    """Open (once) the technical ticket for ``incident_id`` on ``service_id``; return it either way."""
    existing = await _by_incident(session, incident_id)
    if existing is not None:
        return existing
    service = await session.get(Service, service_id)
    if service is None:
        raise NotFound(f"service {service_id}")
    band, due = first_response_due(now, await load_calendar(session, now), targets)
    ticket = Ticket(customer_id=service.customer_id, service_id=service_id, department=TECHNICAL,
                    source=Source(source).value, incident_id=incident_id, subject=subject, body=body,
                    status=Status.OPEN, priority=Priority(priority).value, requested_priority=priority,
                    opened_at=now, sla_band=band, first_response_due=due)
    session.add(ticket)
    await session.flush()
    log.info("ticket_opened id=%s incident=%s service=%s band=%s", ticket.id, incident_id, service_id, band)
    return ticket


async def close_monitoring_ticket(session: AsyncSession, *, incident_id: int, body: str, now: datetime
                                  ) -> Ticket | None:
    """Close the ticket of ``incident_id`` with a system message; None if there is none."""
    ticket = await _by_incident(session, incident_id)
    if ticket is None or ticket.status in CLOSED_STATUSES:
        return ticket
    session.add(TicketMessage(ticket_id=ticket.id, author_kind="system", body=body, at=now))
    ticket.status, ticket.closed_at = Status.CLOSED, now
    log.info("ticket_closed id=%s incident=%s", ticket.id, incident_id)
    return ticket


@dataclass(frozen=True)
class WatchedMonitor:
    id: int
    name: str
    state: str
    since: datetime | None


@dataclass(frozen=True)
class WatchedIncident:
    id: int
    title: str
    status: str
    severity: str
    opened_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class Watch:
    """What monitoring sees of a ticket's service: its monitors' current states (worst first) and the
    incident (the ticket's own, else the service's open one)."""

    monitors: tuple[WatchedMonitor, ...] = ()
    incident: WatchedIncident | None = None
    more_monitors: int = 0


_WORST = {State.DOWN: 0, State.UNREACHABLE: 1, State.DEGRADED: 2, State.UNKNOWN: 3, State.MAINTENANCE: 4,
          State.UP: 5}
WATCH_LIMIT = 20


async def watch_of(sm: async_sessionmaker, principal: Principal, *, service_id: int | None,
                   incident_id: int | None, limit: int = WATCH_LIMIT) -> Watch:
    """Staff: the enabled monitors of ``service_id`` (directly or through its servers) with their current
    state, at most ``limit`` of them, worst first, and the linked incident: ``incident_id`` if given, else the
    newest unresolved incident of the service."""
    require_role(principal, STAFF)
    monitors: list[WatchedMonitor] = []
    incident = None
    async with sm() as session:
        if service_id is not None:
            servers = select(Server.id).where(Server.service_id == service_id)
            rows = (await session.execute(
                select(Monitor.id, Monitor.name, MonitorState.state, MonitorState.since)
                .outerjoin(MonitorState, MonitorState.monitor_id == Monitor.id)
                .where(Monitor.enabled.is_(True),
                       or_(Monitor.service_id == service_id, Monitor.server_id.in_(servers))))).all()
            monitors = [WatchedMonitor(r.id, r.name, r.state or State.UNKNOWN, r.since) for r in rows]
            monitors.sort(key=lambda m: (_WORST.get(m.state, 3), m.name))
        row = await session.get(Incident, incident_id) if incident_id is not None else None
        if row is None and service_id is not None:
            row = (await session.execute(
                select(Incident).where(Incident.service_id == service_id,
                                       Incident.status != IncidentStatus.RESOLVED)
                .order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(1))).scalar_one_or_none()
        if row is not None:
            incident = WatchedIncident(row.id, row.title, row.status, row.severity, row.opened_at, row.resolved_at)
    return Watch(tuple(monitors[:limit]), incident, max(0, len(monitors) - limit))
