"""The incident changes every source shares (engine, Alertmanager receiver, NOC staff): open, raise,
resolve, timeline. Each runs inside the caller's transaction and writes its notices to the outbox there."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents.affected import Affected, add_affected, affected_customers
from incidents.models import ChannelKind, Incident, IncidentEvent, Severity, Source, Status
from incidents.outbox import announce_to_customers, announce_to_noc
from incidents.statuspage.fanout import announce_incident

__all__ = ["add_event", "find_open", "previous_of", "open_incident", "raise_severity", "resolve_incident",
           "absorb", "name_location"]


def add_event(session: AsyncSession, incident_id: int, at: datetime, kind: str, text: str = "",
              user_id: int | None = None) -> None:
    session.add(IncidentEvent(incident_id=incident_id, at=at, kind=kind, text=text, user_id=user_id))


async def find_open(session: AsyncSession, key: str) -> Incident | None:
    """The open incident for ``key``, locked (on PostgreSQL) until the transaction ends."""
    stmt = select(Incident).where(Incident.open_key == key).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def previous_of(session: AsyncSession, key: str) -> int | None:
    """The latest resolved incident of the same cause: a new failure links to it, never reopens it."""
    return (await session.execute(
        select(Incident.id).where(Incident.dedup_key == key, Incident.status == Status.RESOLVED)
        .order_by(Incident.id.desc()).limit(1))).scalar()


async def open_incident(session: AsyncSession, *, key: str, source: Source, severity: Severity, title: str,
                        opened_at: datetime, now: datetime, affected: Sequence[Affected] = (),
                        summary: str = "", monitor_id: int | None = None, service_id: int | None = None,
                        customer_id: int | None = None, **alert: Any) -> Incident:
    incident = Incident(
        dedup_key=key, open_key=key, source=source, severity=severity, status=Status.TRIGGERED,
        title=title[:300], summary=summary, monitor_id=monitor_id, service_id=service_id,
        customer_id=customer_id, opened_at=opened_at, previous_incident_id=await previous_of(session, key),
        **alert)
    session.add(incident)
    await session.flush()
    add_event(session, incident.id, opened_at, "opened", summary)
    customers = await add_affected(session, incident.id, affected, now)
    await announce_to_noc(session, incident, "opened", now)
    await announce_to_customers(session, incident, "opened", now, customers)
    await announce_incident(session, incident, "opened", now)
    return incident


async def absorb(session: AsyncSession, incident: Incident, rows: Sequence[Affected], at: datetime,
                 now: datetime) -> None:
    """List more affected things; a customer affected for the first time gets its one opening notice."""
    new_customers = await add_affected(session, incident.id, rows, now)
    add_event(session, incident.id, at, "affected", ", ".join(r.key for r in rows))
    await announce_to_customers(session, incident, "opened", now, new_customers)
    await session.flush()
    # A status-page subscriber of a service affected only now hears of the incident now (once).
    await announce_incident(session, incident, "opened", now)


# Channels a person reads when they look (mail, chat, webhooks), as against those that page (SMS, PagerDuty).
READ_NOT_PAGED = frozenset({ChannelKind.EMAIL.value, ChannelKind.WEBHOOK.value, ChannelKind.TELEGRAM.value,
                            ChannelKind.BALE.value})


async def name_location(session: AsyncSession, incident: Incident, location: str, at: datetime, now: datetime,
                        message: str = "") -> bool:
    """One more location saw the incident's failure: listed on the incident, one timeline entry, one notice to
    the NOC. False (nothing written) if the incident already names it: a repeat changes nothing."""
    if location in (incident.locations or []):
        return False
    incident.locations = [*(incident.locations or []), location]  # a new list: the JSON column is rewritten
    add_event(session, incident.id, at, "location", f"{location}: {message}" if message else location)
    # One notice per location (its position makes the outbox's key), never a second for the same one; and
    # only to the channels one reads, not those that page: the outage already paged once.
    await announce_to_noc(session, incident, f"location-{len(incident.locations)}", now,
                          f"also failing from: {location}", kinds=READ_NOT_PAGED, stateful=False)
    return True


async def raise_severity(session: AsyncSession, incident: Incident, severity: Severity, at: datetime,
                         now: datetime, why: str = "") -> None:
    """Important -> urgent. Never the other way: a lowering is a timeline note, not a change."""
    if Severity(incident.severity).rank >= severity.rank:
        return
    old, incident.severity = incident.severity, severity
    add_event(session, incident.id, at, "upgraded", f"{old} -> {severity} {why}".strip())
    await announce_to_noc(session, incident, "upgraded", now, why)


async def resolve_incident(session: AsyncSession, incident: Incident, at: datetime, now: datetime,
                           resolution: str, text: str = "", user_id: int | None = None) -> None:
    """Resolve for good: ``open_key`` is cleared so the next failure opens a new incident."""
    incident.status, incident.open_key = Status.RESOLVED, None
    incident.resolved_at, incident.recovering_since = at, None
    incident.duration_s = max(0.0, (at - incident.opened_at).total_seconds())
    incident.resolution = resolution
    add_event(session, incident.id, at, "resolved", f"{resolution} {text}".strip(), user_id)
    await session.flush()
    await announce_to_noc(session, incident, "resolved", now)
    await announce_to_customers(session, incident, "resolved", now,
                                await affected_customers(session, incident.id))
    await announce_incident(session, incident, "resolved", now)
