"""Subscribers' notices, written into the outbox inside the caller's transaction (the one that opens or
resolves the incident, adds the public update, or records the maintenance announcement).

Idempotent per subscriber and event: the notice's ``dedup_key`` is ``status:<event>:<subscription id>``, so a
retried transaction or a second sweep adds nothing. Only active subscriptions whose chosen services (none
chosen: all) meet the event's public services hear of it; a pending one never does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents.models import Incident, IncidentAffected, Notification
from incidents.statuspage.models import PublicUpdate, StatusSubscription, SubscriptionKind, SubscriptionState
from incidents.statuspage.notices import (
    Notice,
    incident_notice,
    maintenance_notice,
    public_name,
    update_notice,
)
from monitor.models import Service

__all__ = ["SUBSCRIBER", "WEBHOOK_KIND", "unsubscribe_url", "public_components", "announce_incident",
           "announce_update", "announce_maintenance", "enqueue_for"]

# The audience and the webhook kind of subscription channels: never chosen by channels_for(NOC/customer),
# and the webhook kind has its own signing notifier (``incidents.statuspage.webhooks``).
SUBSCRIBER = "subscriber"
WEBHOOK_KIND = "status_webhook"


def unsubscribe_url(sub: StatusSubscription) -> str:
    return f"{sub.site_url}/status/unsubscribe/{sub.id}/{sub.manage_token}"


async def public_components(session: AsyncSession, incident: Incident) -> dict[int, str]:
    """The opted-in services an incident touches (its own and those listed as affected): id -> public name."""
    listed = select(IncidentAffected.service_id).where(IncidentAffected.incident_id == incident.id)
    ids = {i for i in (await session.execute(listed)).scalars() if i is not None}
    if incident.service_id is not None:
        ids.add(incident.service_id)
    if not ids:
        return {}
    rows = await session.execute(select(Service.id, Service.display_name)
                                 .where(Service.id.in_(sorted(ids)), Service.public_status.is_(True)))
    return {sid: public_name(name) for sid, name in rows}


async def _subscribers(session: AsyncSession, service_ids: set[int], confirmed_before: datetime | None = None
                       ) -> list[tuple[StatusSubscription, list[int]]]:
    """Active subscriptions that chose one of ``service_ids`` (or all), each with the ids it hears about;
    with ``confirmed_before``, only those confirmed earlier."""
    if not service_ids:
        return []
    stmt = select(StatusSubscription).where(StatusSubscription.state == SubscriptionState.ACTIVE,
                                            StatusSubscription.channel_id.is_not(None))
    if confirmed_before is not None:
        stmt = stmt.where(StatusSubscription.confirmed_at < confirmed_before)
    rows = (await session.execute(stmt.order_by(StatusSubscription.id))).scalars()
    out = []
    for sub in rows:
        chosen = set(sub.service_ids or []) & service_ids if sub.service_ids else service_ids
        if chosen:
            out.append((sub, sorted(chosen)))
    return out


def _data(sub: StatusSubscription, event: str, names: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    data = {"event": event, "subscription_id": sub.id, "components": names, **extra,
            "status_url": f"{sub.site_url}/status", "unsubscribe_url": unsubscribe_url(sub)}
    if sub.kind == SubscriptionKind.EMAIL:
        # RFC 2369 and RFC 8058: a mail client's own unsubscribe button, one POST, no page to read.
        data["mail_headers"] = {"List-Unsubscribe": f"<{unsubscribe_url(sub)}>",
                                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return data


async def enqueue_for(session: AsyncSession, sub: StatusSubscription, event: str, notice: Notice,
                      data: dict[str, Any], now: datetime, incident_id: int | None = None) -> int:
    """Queue one notice for ``sub`` unless this (event, subscriber) notice exists; return 1 if added."""
    key = f"status:{event}:{sub.id}"
    found = (await session.execute(select(Notification.id).where(Notification.dedup_key == key))).first()
    if found is not None or sub.channel_id is None:
        return 0
    session.add(Notification(dedup_key=key, channel_id=sub.channel_id, incident_id=incident_id,
                             kind=data.get("event", "status"), subject=notice.subject, body=notice.body,
                             data=data, created_at=now, next_attempt_at=now))
    return 1


async def announce_incident(session: AsyncSession, incident: Incident, kind: str, now: datetime) -> int:
    """An incident ``opened`` or ``resolved`` on subscribed services."""
    components = await public_components(session, incident)
    sent = 0
    for sub, ids in await _subscribers(session, set(components)):
        names = [components[i] for i in ids]
        notice = incident_notice(kind, incident.severity, names, incident.opened_at, incident.resolved_at,
                                 incident.duration_s, f"{sub.site_url}/status", unsubscribe_url(sub))
        extra = {"incident_id": incident.id, "severity": incident.severity,
                 "opened_at": incident.opened_at.isoformat(),
                 "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None}
        sent += await enqueue_for(session, sub, f"incident:{incident.id}:{kind}", notice,
                                  _data(sub, f"incident.{kind}", names, extra), now, incident.id)
    return sent


async def announce_update(session: AsyncSession, incident: Incident, update: PublicUpdate, now: datetime) -> int:
    components = await public_components(session, incident)
    sent = 0
    for sub, ids in await _subscribers(session, set(components)):
        names = [components[i] for i in ids]
        notice = update_notice(update.status, update.text, update.at, names, f"{sub.site_url}/status",
                               unsubscribe_url(sub))
        extra = {"incident_id": incident.id, "update_id": update.id, "status": update.status,
                 "text": update.text, "at": update.at.isoformat()}
        sent += await enqueue_for(session, sub, f"update:{update.id}", notice,
                                  _data(sub, "incident.update", names, extra), now, incident.id)
    return sent


async def announce_maintenance(session: AsyncSession, window_id: int, kind: str, start: datetime,
                               end: datetime, title: str, components: dict[int, str], now: datetime,
                               channels: list[tuple[str, str]] | None = None) -> int:
    """A maintenance occurrence ``scheduled``, ``starting`` or ``ended`` on ``components`` (id -> public
    name); ``channels`` are the other ways to reach support (rule 18). An end is told only to those who
    subscribed before it (a later subscriber has nothing to hear of)."""
    sent = 0
    for sub, ids in await _subscribers(session, set(components), end if kind == "ended" else None):
        names = [components[i] for i in ids]
        notice = maintenance_notice(kind, title, start, end, names, f"{sub.site_url}/status",
                                    unsubscribe_url(sub), channels)
        extra = {"starts_at": start.isoformat(), "ends_at": end.isoformat()}
        event = f"maintenance:{window_id}:{int(start.timestamp())}:{kind}"
        sent += await enqueue_for(session, sub, event, notice, _data(sub, f"maintenance.{kind}", names, extra),
                                  now)
    return sent
