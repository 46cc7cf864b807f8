"""What people do with incidents: acknowledge, assign, write notes, resolve; and read them.

Every function takes the session factory, the caller's ``Principal`` and ``now``. Changes are for NOC staff;
customers may read incidents that affect them and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidents.errors import IncidentClosed, IncidentNotFound
from incidents.models import STATEFUL_KINDS, Incident, IncidentAffected, IncidentEvent, Source, Status
from incidents.outbox import announce_to_noc
from incidents.store import add_event, resolve_incident
from monitor.accounts import Principal, Role, User, require_role, scope
from monitor.errors import InvalidInput
from monitor.models import Flip, MonitorState, State

__all__ = ["OPERATORS", "acknowledge", "assign", "add_note", "resolve", "get_incident", "list_incidents",
           "timeline", "IncidentView", "ServiceIncident", "incidents_of_service"]

# Who may change an incident.
OPERATORS = frozenset({Role.ADMIN, Role.NOC, Role.TECHNICIAN})


async def _load_open(session: AsyncSession, incident_id: int) -> Incident:
    incident = await session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        raise IncidentNotFound(f"incident {incident_id} does not exist")
    if incident.status == Status.RESOLVED:
        raise IncidentClosed(f"incident {incident_id} is resolved; a new failure opens a new incident")
    return incident


async def acknowledge(sessionmaker: async_sessionmaker, principal: Principal, incident_id: int,
                      now: datetime) -> Incident:
    """triggered -> acknowledged, recording who and when; stops escalation. Idempotent."""
    require_role(principal, OPERATORS)
    async with sessionmaker() as session, session.begin():
        incident = await _load_open(session, incident_id)
        if incident.status == Status.TRIGGERED:
            incident.status = Status.ACKNOWLEDGED
            incident.acknowledged_at, incident.acknowledged_by = now, principal.user_id
            add_event(session, incident.id, now, "acknowledged", principal.username, principal.user_id)
            # PagerDuty keeps the incident's state: its alert is acknowledged too (the others need no notice).
            await announce_to_noc(session, incident, "acknowledged", now, f"by {principal.username}",
                                  kinds=STATEFUL_KINDS)
        return incident


async def assign(sessionmaker: async_sessionmaker, principal: Principal, incident_id: int, user_id: int,
                 now: datetime) -> Incident:
    """Assign to a NOC engineer (an active user with the noc or admin role)."""
    require_role(principal, OPERATORS)
    async with sessionmaker() as session, session.begin():
        incident = await _load_open(session, incident_id)
        user = await session.get(User, user_id)
        if user is None or not user.active or user.role not in (Role.NOC, Role.ADMIN):
            raise InvalidInput("user_id", f"user {user_id} is not an active NOC engineer")
        incident.assigned_to = user.id
        add_event(session, incident.id, now, "assigned", f"{principal.username} -> {user.username}",
                  principal.user_id)
        return incident


async def add_note(sessionmaker: async_sessionmaker, principal: Principal, incident_id: int, text: str,
                   now: datetime) -> None:
    require_role(principal, OPERATORS)
    text = (text or "").strip()
    if not text:
        raise InvalidInput("text", "a note cannot be empty")
    async with sessionmaker() as session, session.begin():
        incident = await session.get(Incident, incident_id)
        if incident is None:
            raise IncidentNotFound(f"incident {incident_id} does not exist")
        # Notes may still be added after resolution (a post-mortem); the incident itself stays closed.
        add_event(session, incident.id, now, "note", text, principal.user_id)


async def resolve(sessionmaker: async_sessionmaker, principal: Principal, incident_id: int, now: datetime,
                  text: str = "") -> Incident:
    """Resolve by hand (e.g. an alert that will never send resolved)."""
    require_role(principal, OPERATORS)
    async with sessionmaker() as session, session.begin():
        incident = await _load_open(session, incident_id)
        await resolve_incident(session, incident, now, now, "manual", text, principal.user_id)
        await _reopen_if_still_failing(session, incident, now)
        return incident


_FAILING = (State.DOWN.value, State.DEGRADED.value, State.UNREACHABLE.value)


async def _reopen_if_still_failing(session: AsyncSession, incident: Incident, now: datetime) -> None:
    """A monitor still failing when its incident is resolved by hand flips no more (its state does not
    change), so no incident would ever open again for that failure. Record a flip to its current state: the
    engine opens a new incident, linked to this one (rules 15 and 16: never reopened, never lost)."""
    if incident.source != Source.MONITOR or incident.monitor_id is None:
        return
    state = await session.get(MonitorState, incident.monitor_id)
    if state is None or state.state not in _FAILING:
        return
    session.add(Flip(monitor_id=incident.monitor_id, at=now, old_state=state.state, new_state=state.state,
                     reason="still_failing", message="still failing after a manual resolve"))
    add_event(session, incident.id, now, "still_failing", f"monitor is still {state.state}: a new incident follows")


@dataclass(frozen=True, slots=True)
class IncidentView:
    incident: Incident
    events: list[IncidentEvent]
    affected: list[IncidentAffected]


def _visible(stmt, principal: Principal):
    """Customers see incidents that list one of their things as affected; staff see all."""
    if principal.role is not Role.CUSTOMER:
        return scope(stmt, principal, Incident.customer_id)
    inner = scope(select(IncidentAffected.id).where(IncidentAffected.incident_id == Incident.id),
                  principal, IncidentAffected.customer_id)
    return stmt.where(exists(inner))


async def list_incidents(sessionmaker: async_sessionmaker, principal: Principal, *, open_only: bool = True,
                         limit: int = 100) -> list[Incident]:
    stmt = select(Incident).order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(limit)
    if open_only:
        stmt = stmt.where(Incident.status != Status.RESOLVED)
    async with sessionmaker() as session:
        return list((await session.execute(_visible(stmt, principal))).scalars())


@dataclass(frozen=True, slots=True)
class ServiceIncident:
    """What a customer may see of an incident that affected one of their services: when, how bad, whether it
    is over, and whether it was shared (another monitor's outage, a network device's, that cut the service
    off). No title, summary, monitor, device, reason or other affected customer."""

    id: int
    severity: str
    status: str
    opened_at: datetime
    resolved_at: datetime | None
    duration_s: float | None
    shared: bool


async def incidents_of_service(sessionmaker: async_sessionmaker, principal: Principal, service_id: int, *,
                               start: datetime | None = None, end: datetime | None = None,
                               limit: int = 500) -> list[ServiceIncident]:
    """Incidents the caller may see that affected ``service_id`` (its own, and shared ones listing it),
    newest first; with a range, those overlapping it."""
    listed = exists(select(IncidentAffected.id).where(IncidentAffected.incident_id == Incident.id,
                                                      IncidentAffected.service_id == service_id))
    stmt = (select(Incident).where(or_(Incident.service_id == service_id, listed))
            .order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(limit))
    if end is not None:
        stmt = stmt.where(Incident.opened_at < end)
    if start is not None:
        stmt = stmt.where(or_(Incident.resolved_at.is_(None), Incident.resolved_at > start))
    async with sessionmaker() as session:
        rows = (await session.execute(_visible(stmt, principal))).scalars()
        return [ServiceIncident(i.id, i.severity, i.status, i.opened_at, i.resolved_at, i.duration_s,
                                i.service_id != service_id) for i in rows]


async def get_incident(sessionmaker: async_sessionmaker, principal: Principal, incident_id: int) -> IncidentView:
    async with sessionmaker() as session:
        incident = (await session.execute(_visible(select(Incident).where(Incident.id == incident_id),
                                                   principal))).scalar_one_or_none()
        if incident is None:
            raise IncidentNotFound(f"incident {incident_id} does not exist")
        # The timeline holds staff notes: it is for staff only.
        events = await timeline(session, incident_id) if principal.is_staff else []
        affected = list((await session.execute(_affected_rows(principal, incident_id))).scalars())
        return IncidentView(incident, events, affected)


def _affected_rows(principal: Principal, incident_id: int):
    stmt = select(IncidentAffected).where(IncidentAffected.incident_id == incident_id).order_by(
        IncidentAffected.id)
    # A customer sees only its own part of a shared outage (rule 4).
    return scope(stmt, principal, IncidentAffected.customer_id)


async def timeline(session: AsyncSession, incident_id: int) -> list[IncidentEvent]:
    return list((await session.execute(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                       .order_by(IncidentEvent.at, IncidentEvent.id))).scalars())
