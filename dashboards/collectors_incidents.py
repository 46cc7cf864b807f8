"""Incident and outbox figures for Prometheus: open incidents by severity, unacknowledged age, durations of
resolved incidents, and the notification outbox's depth and oldest waiting notice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dashboards.collectors import DURATION_BUCKETS, histogram
from incidents.models import Incident, NoticeStatus, Notification, Severity, Status

__all__ = ["incident_families", "outbox_families", "WINDOW"]

WINDOW = timedelta(days=30)


async def incident_families(session: AsyncSession, now: datetime) -> list[Metric]:
    rows = (await session.execute(
        select(Incident.severity, Incident.status, Incident.opened_at, Incident.duration_s)
        .where(or_(Incident.status != Status.RESOLVED, Incident.resolved_at > now - WINDOW)))).all()
    severities = [s.value for s in Severity]
    open_n, unacked = dict.fromkeys(severities, 0), dict.fromkeys(severities, 0.0)
    durations: dict[tuple[str, ...], list[float]] = {(s,): [] for s in severities}
    for severity, status, opened_at, duration_s in rows:
        if status == Status.RESOLVED:
            durations.setdefault((severity,), []).append(float(duration_s or 0.0))
            continue
        open_n[severity] = open_n.get(severity, 0) + 1
        if status == Status.TRIGGERED:
            unacked[severity] = max(unacked.get(severity, 0.0), (now - opened_at).total_seconds())
    open_f = GaugeMetricFamily("negahban_incidents_open", "Open incidents by severity", labels=["severity"])
    age_f = GaugeMetricFamily("negahban_incidents_unacknowledged_seconds",
                              "Age of the oldest open incident nobody acknowledged, by severity",
                              labels=["severity"])
    for s in open_n:
        open_f.add_metric([s], float(open_n[s]))
        age_f.add_metric([s], unacked.get(s, 0.0))
    return [open_f, age_f, histogram("negahban_incident_duration_seconds",
                                     "Durations of incidents resolved in the last 30 days", durations,
                                     ["severity"], DURATION_BUCKETS)]


async def outbox_families(session: AsyncSession, now: datetime) -> list[Metric]:
    counts = dict((await session.execute(
        select(Notification.status, func.count()).where(Notification.status.in_(
            [NoticeStatus.PENDING, NoticeStatus.FAILED])).group_by(Notification.status))).all())
    oldest = (await session.execute(select(func.min(Notification.created_at))
                                    .where(Notification.status == NoticeStatus.PENDING))).scalar()
    depth = GaugeMetricFamily("negahban_outbox_depth", "Notifications waiting (pending) or given up (failed)",
                              labels=["status"])
    for status in (NoticeStatus.PENDING, NoticeStatus.FAILED):
        depth.add_metric([status.value], float(counts.get(status.value, 0)))
    age = GaugeMetricFamily("negahban_outbox_oldest_pending_seconds", "Age of the oldest pending notification")
    age.add_metric([], _age(oldest, now))
    return [depth, age]


def _age(oldest: datetime | None, now: datetime) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # an aggregate may come back without the column type's conversion
        oldest = oldest.replace(tzinfo=UTC)
    return max(0.0, (now - oldest).total_seconds())
