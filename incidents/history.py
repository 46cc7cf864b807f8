"""An incident's whole story for staff: what it affects (by name), and one timeline merged from the tables
that already record it: its events (opened, acknowledged, notes, escalations, resolved), the flips of the
monitors it affects while it was open, the notifications sent for it with their delivery state, and the
public updates staff published.

Read-only; staff only (the timeline carries notes, internal names and reason codes). Customers read their
incidents through ``incidents.lifecycle.get_incident``, which hides all of this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidents.lifecycle import OPERATORS, get_incident
from incidents.models import Incident, Notification, NotificationChannel, Status
from incidents.statuspage.models import PublicUpdate
from incidents.statuspage.updates import updates_of
from monitor.accounts import Principal, User, require_role
from monitor.models import Customer, Flip, Location, Monitor, MonitorState, Server, Service

__all__ = ["Entry", "AffectedItem", "IncidentHistory", "incident_history", "usernames", "FAILING_STATES",
           "IncidentLists", "incident_lists"]

FAILING_STATES = frozenset({"DOWN", "DEGRADED", "UNREACHABLE"})


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the timeline. ``source`` is ``event``, ``flip``, ``notification`` or ``update``; ``kind``
    is the event's kind, the flip's new state, the notice's kind or the update's status word."""

    at: datetime
    source: str
    kind: str
    text: str = ""
    who: str | None = None
    state: str = ""  # a flip's "UP -> DOWN"; a notice's delivery state (pending, sent, failed, skipped)
    detail: str = ""  # a notice's channel and its last error


@dataclass(frozen=True, slots=True)
class AffectedItem:
    monitor: str | None
    server: str | None
    service: str | None
    customer: str | None
    customer_id: int | None
    monitor_id: int | None = None  # for the link to the monitor's page


@dataclass(frozen=True, slots=True)
class IncidentHistory:
    incident: Incident
    acknowledged_by: str | None
    assigned_to: str | None
    affected: list[AffectedItem]
    timeline: list[Entry]
    updates: list[PublicUpdate]
    # The root monitor's state now (None for an Alertmanager incident): whether resolving by hand would only
    # open a new incident.
    monitor_state: str | None
    # The locations that saw the failure (a voted monitor's), each as (name, display name), in the order
    # they did.
    locations: list[tuple[str, str]] = ()

    @property
    def still_failing(self) -> bool:
        return self.monitor_state in FAILING_STATES

    @property
    def customers(self) -> list[str]:
        seen: dict[int, str] = {}
        for a in self.affected:
            if a.customer_id is not None:
                seen.setdefault(a.customer_id, a.customer or str(a.customer_id))
        return list(seen.values())


async def usernames(session: AsyncSession, user_ids) -> dict[int, str]:
    """Who a user id is, for pages that say "acknowledged by nora" (a name, not an id)."""
    wanted = {u for u in user_ids if u is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(User.id, User.username, User.display_name).where(User.id.in_(wanted)))
    return {uid: display or name for uid, name, display in rows}


async def _names(session: AsyncSession, model, column, ids) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict((await session.execute(select(model.id, column).where(model.id.in_(wanted)))).all())


async def incident_history(sessionmaker: async_sessionmaker, principal: Principal,
                           incident_id: int) -> IncidentHistory:
    """The incident as staff see it on its page; ``IncidentNotFound`` if there is no such incident."""
    require_role(principal, OPERATORS)
    view = await get_incident(sessionmaker, principal, incident_id)
    incident = view.incident
    async with sessionmaker() as session:
        monitor_ids = {a.monitor_id for a in view.affected if a.monitor_id is not None}
        if incident.monitor_id is not None:
            monitor_ids.add(incident.monitor_id)
        monitors = await _names(session, Monitor, Monitor.name, monitor_ids)
        servers = await _names(session, Server, Server.name, [a.server_id for a in view.affected])
        services = await _names(session, Service, Service.display_name, [a.service_id for a in view.affected])
        customers = await _names(session, Customer, Customer.display_name, [a.customer_id for a in view.affected])
        affected = [AffectedItem(monitors.get(a.monitor_id), servers.get(a.server_id), services.get(a.service_id),
                                 customers.get(a.customer_id), a.customer_id, a.monitor_id)
                    for a in view.affected]

        flips = []
        if monitor_ids:
            stmt = select(Flip).where(Flip.monitor_id.in_(monitor_ids), Flip.at >= incident.opened_at)
            if incident.resolved_at is not None:
                stmt = stmt.where(Flip.at <= incident.resolved_at)
            flips = list((await session.execute(stmt.order_by(Flip.at, Flip.id))).scalars())
        notices = (await session.execute(
            select(Notification, NotificationChannel.name, NotificationChannel.kind)
            .join(NotificationChannel, NotificationChannel.id == Notification.channel_id)
            .where(Notification.incident_id == incident_id).order_by(Notification.created_at, Notification.id)
        )).all()
        updates = (await updates_of(session, [incident_id]))[incident_id]
        names = await usernames(session, [e.user_id for e in view.events] + [u.user_id for u in updates]
                                + [incident.acknowledged_by, incident.assigned_to])
        state = None
        if incident.monitor_id is not None and incident.status != Status.RESOLVED:
            row = await session.get(MonitorState, incident.monitor_id)
            state = row.state if row is not None else None
        shown = dict((await session.execute(select(Location.name, Location.display_name).where(
            Location.name.in_(list(incident.locations or []))))).all()) if incident.locations else {}
    locations = [(loc, shown.get(loc) or loc) for loc in incident.locations or []]

    entries = [Entry(e.at, "event", e.kind, e.text, names.get(e.user_id)) for e in view.events]
    entries += [Entry(f.at, "flip", f.new_state, f.message or f.reason, None, f"{f.old_state} -> {f.new_state}",
                      monitors.get(f.monitor_id, "")) for f in flips]
    entries += [Entry(n.sent_at or n.created_at, "notification", n.kind, n.subject, None, n.status,
                      f"{channel} ({kind})" + (f": {n.last_error}" if n.last_error else ""))
                for n, channel, kind in notices]
    entries += [Entry(u.at, "update", u.status or "", u.text, names.get(u.user_id)) for u in updates]
    order = {"flip": 0, "event": 1, "notification": 2, "update": 3}
    entries.sort(key=lambda e: (e.at, order[e.source]))
    return IncidentHistory(incident, names.get(incident.acknowledged_by), names.get(incident.assigned_to),
                           affected, entries, updates, state, locations)


@dataclass(frozen=True, slots=True)
class IncidentLists:
    open: list[Incident]
    resolved: list[Incident]  # one page, most recently resolved first
    resolved_total: int
    names: dict[int, str]  # who acknowledged or is assigned, by user id


async def incident_lists(sessionmaker: async_sessionmaker, principal: Principal, *, page: int = 1,
                         per_page: int = 50, open_limit: int = 500) -> IncidentLists:
    """Staff's list of incidents: every open one (newest first), then a page of the resolved ones."""
    require_role(principal, OPERATORS)
    async with sessionmaker() as session:
        open_rows = list((await session.execute(
            select(Incident).where(Incident.status != Status.RESOLVED)
            .order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(open_limit))).scalars())
        resolved = select(Incident).where(Incident.status == Status.RESOLVED)
        total = (await session.execute(select(func.count()).select_from(resolved.subquery()))).scalar_one()
        resolved_rows = list((await session.execute(
            resolved.order_by(Incident.resolved_at.desc(), Incident.id.desc())
            .offset((page - 1) * per_page).limit(per_page))).scalars())
        names = await usernames(session, [i.acknowledged_by for i in open_rows + resolved_rows]
                                + [i.assigned_to for i in open_rows])
    return IncidentLists(open_rows, resolved_rows, total, names)
