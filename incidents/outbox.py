"""Writing notices into the outbox, always inside the caller's transaction (the one that changes the
incident), so a notice exists exactly when its change was committed."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents.messages import customer_notice, customer_sms, noc_notice, noc_sms, notice_data
from incidents.models import (
    STATEFUL_KINDS,
    Audience,
    Incident,
    IncidentAffected,
    Notification,
    NotificationChannel,
)
from monitor.models import Service

__all__ = ["enqueue", "announce_to_noc", "announce_to_customers", "channels_for"]


async def channels_for(session: AsyncSession, audience: Audience, customer_id: int | None = None,
                       ) -> list[NotificationChannel]:
    stmt = select(NotificationChannel).where(NotificationChannel.audience == audience,
                                             NotificationChannel.enabled.is_(True))
    if customer_id is not None:
        stmt = stmt.where(NotificationChannel.customer_id == customer_id)
    return list((await session.execute(stmt.order_by(NotificationChannel.id))).scalars())


async def enqueue(session: AsyncSession, incident: Incident, kind: str, channels: Iterable[NotificationChannel],
                  now: datetime, subject: str, body: str, short: str = "", customer: bool = False) -> int:
    """Add one notice per channel unless that (incident, kind, channel) notice exists; return how many.
    ``short`` is the notice's compact form (``data["short"]``) for channels that bill per part (SMS); a
    ``customer`` notice's data names no internal thing (``notice_data``)."""
    wanted = {f"incident:{incident.id}:{kind}:{ch.id}": ch for ch in channels}
    if not wanted:
        return 0
    existing = set((await session.execute(
        select(Notification.dedup_key).where(Notification.dedup_key.in_(list(wanted))))).scalars())
    data = notice_data(kind, incident, subject if customer else None) | ({"short": short} if short else {})
    for key, channel in wanted.items():
        if key not in existing:
            session.add(Notification(dedup_key=key, channel_id=channel.id, incident_id=incident.id, kind=kind,
                                     subject=subject, body=body, data=data, created_at=now,
                                     next_attempt_at=now))
    return len(wanted) - len(existing)


async def announce_to_noc(session: AsyncSession, incident: Incident, kind: str, now: datetime,
                          extra: str = "", kinds: frozenset[str] | None = None, stateful: bool = True) -> int:
    """Tell the NOC's channels (only those of ``kinds`` when given), and, unless ``stateful`` is False, every
    stateful channel that already heard of this incident whatever its audience (a PagerDuty service reached
    by an escalation step must see the acknowledgement and the resolution too, or its alert stays open)."""
    subject, body = noc_notice(kind, incident, extra)
    channels = [ch for ch in await channels_for(session, Audience.NOC) if kinds is None or ch.kind in kinds]
    if stateful:
        channels += [ch for ch in await _stateful_that_heard(session, incident.id) if ch not in channels]
    return await enqueue(session, incident, kind, channels, now, subject, body, noc_sms(kind, incident))


async def _stateful_that_heard(session: AsyncSession, incident_id: int) -> list[NotificationChannel]:
    return list((await session.execute(
        select(NotificationChannel).distinct().join(Notification, Notification.channel_id == NotificationChannel.id)
        .where(Notification.incident_id == incident_id, NotificationChannel.kind.in_(list(STATEFUL_KINDS)),
               NotificationChannel.enabled.is_(True)).order_by(NotificationChannel.id))).scalars())


async def announce_to_customers(session: AsyncSession, incident: Incident, kind: str, now: datetime,
                                customer_ids: Iterable[int]) -> int:
    """One notice per affected customer (per channel of that customer), naming that customer's services."""
    sent = 0
    for customer_id in sorted(set(customer_ids)):
        channels = await channels_for(session, Audience.CUSTOMER, customer_id)
        if channels:
            names = await _service_names(session, incident.id, customer_id)
            subject, body = customer_notice(kind, incident, names)
            sent += await enqueue(session, incident, kind, channels, now, subject, body,
                                  customer_sms(kind, incident, names), customer=True)
    return sent


async def _service_names(session: AsyncSession, incident_id: int, customer_id: int) -> list[str]:
    rows = await session.execute(
        select(Service.display_name, Service.name).distinct()
        .join(IncidentAffected, IncidentAffected.service_id == Service.id)
        .where(IncidentAffected.incident_id == incident_id, IncidentAffected.customer_id == customer_id))
    return sorted(display or name for display, name in rows)
