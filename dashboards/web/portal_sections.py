"""Portal sections that read other packages: a service's incidents with durations (incidents) and the
customer's monthly statement (the ledger). Both go through those packages' scoped read functions and hand
the templates plain rows (``_portal.html`` draws them); a customer reads what they lived through, never our
internal names or reason codes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jdatetime

from dashboards.web.fa import duration_fa
from dashboards.web.templating import N_
from incidents.lifecycle import ServiceIncident, incidents_of_service
from monitor.accounts import Principal
from monitor.errors import NotFound
from tickets.calendar import TEHRAN
from tickets.fines import suspension_of
from tickets.ledger.format import jalali_fa, persian_digits, statement_fa, toman_fa
from tickets.ledger.statements import read_statement

__all__ = ["service_incidents", "incident_rows", "IncidentRow", "statement", "suspension", "kind_fa", "INCIDENT_STATUS_WORDS"]

# Message ids (translated by the templates): what the customer is told about an incident's state.
INCIDENT_STATUS_WORDS: Mapping[str, str] = {
    "triggered": N_("Being handled"), "acknowledged": N_("Under investigation"), "resolved": N_("Fixed")}
SEVERITY_FA = {"urgent": "قطعی", "important": "اختلال"}
# A shared outage is named for what the customer lived through, never for our device (rule 4).
SHARED_FA = {"urgent": "قطعی شبکه", "important": "اختلال شبکه"}


async def service_incidents(sm, principal: Principal, service_id: int, start: datetime | None = None,
                            end: datetime | None = None, limit: int = 500) -> list[ServiceIncident]:
    """Incidents that affected one service, the caller's to see, newest first; with a range, those
    overlapping it. Shared outages (a switch in front of the service) are included."""
    return await incidents_of_service(sm, principal, service_id, start=start, end=end, limit=limit)


def kind_fa(incident: ServiceIncident) -> str:
    names = SHARED_FA if incident.shared else SEVERITY_FA
    return names.get(incident.severity, "رخداد")


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """One line of a customer's incident table: only words fit for the customer."""

    kind: str
    opened_at: datetime
    resolved_at: datetime | None
    duration: str
    ongoing: bool
    status: str  # a message id of INCIDENT_STATUS_WORDS, "" when the state has no customer word


def _duration_s(incident, now: datetime) -> float:
    if incident.resolved_at is None:
        return (now - incident.opened_at).total_seconds()
    if incident.duration_s is not None:
        return incident.duration_s
    return (incident.resolved_at - incident.opened_at).total_seconds()


def incident_rows(incidents: list[ServiceIncident], now: datetime) -> list[IncidentRow]:
    return [IncidentRow(kind_fa(i), i.opened_at, i.resolved_at, duration_fa(_duration_s(i, now)),
                        i.resolved_at is None, INCIDENT_STATUS_WORDS.get(i.status, "")) for i in incidents]


async def statement(sm, principal: Principal, jy: int, jm: int) -> Mapping[str, Any] | None:
    """The customer's statement of one Jalali month in Persian words (customers only; staff read statements
    elsewhere); None when there is none to show."""
    if principal.customer_id is None:
        return None
    try:
        return statement_fa(await read_statement(sm, principal, principal.customer_id, jy, jm))
    except NotFound:
        return None


async def suspension(sm, principal: Principal, now: datetime) -> Mapping[str, Any] | None:
    """Why the customer's support is suspended now (rule 19), in Persian words, with the address of the
    statement that shows the fine; None while it is not."""
    fine = await suspension_of(sm, principal, now)
    if fine is None:
        return None
    posted = jdatetime.date.fromgregorian(date=fine.created_at.astimezone(TEHRAN).date())
    return {"amount": toman_fa(fine.amount_rials), "due": jalali_fa(fine.due_at),
            "ticket": persian_digits(fine.ticket_id) if fine.ticket_id else None,
            "statement": f"/portal/statements/{fine.customer_id}/{posted.year}/{posted.month}"}
