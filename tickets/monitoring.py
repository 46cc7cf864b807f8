"""Tickets opened and closed by monitoring: the entry points the incidents stage calls.

These bypass customer intake (the Persian text rules, required fields, suspension and duplicate checks are
about what customers type) but still take the SLA due time from the office calendar. Both are idempotent
per incident: ``tickets.incident_id`` is unique, a second open returns the ticket already there, a second
close changes nothing. They run inside the caller's session and transaction, so the incidents stage can
open the ticket and mark its incident claimed in one commit.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from monitor.errors import NotFound
from monitor.models import Service
from tickets.calendar import load_calendar
from tickets.departments import TECHNICAL
from tickets.models import CLOSED_STATUSES, Priority, Source, Status, Ticket, TicketMessage
from tickets.sla import SlaTargets, first_response_due

__all__ = ["open_monitoring_ticket", "close_monitoring_ticket"]

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
