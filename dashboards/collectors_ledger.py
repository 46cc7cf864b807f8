"""Money and visits for Prometheus: what was billed this Jalali month by kind, and datacenter visits."""

from __future__ import annotations

from datetime import datetime, timedelta

import jdatetime
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dashboards.web.html import TEHRAN
from monitor.models import Datacenter
from tickets.ledger.models import CHARGE_KINDS, DatacenterVisit, LedgerEntry

__all__ = ["ledger_families", "month_start"]


def month_start(now: datetime) -> datetime:
    """The first instant of the current Jalali month in Tehran."""
    today = jdatetime.date.fromgregorian(date=now.astimezone(TEHRAN).date())
    first = jdatetime.date(today.year, today.month, 1).togregorian()
    return datetime(first.year, first.month, first.day, tzinfo=TEHRAN)


async def ledger_families(session: AsyncSession, now: datetime) -> list[Metric]:
    billed = dict((await session.execute(
        select(LedgerEntry.kind, func.sum(LedgerEntry.amount_rials))
        .where(LedgerEntry.kind.in_([k.value for k in CHARGE_KINDS]), LedgerEntry.posted_at >= month_start(now),
               LedgerEntry.posted_at <= now).group_by(LedgerEntry.kind))).all())
    visits = dict((await session.execute(
        select(Datacenter.name, func.count(DatacenterVisit.id))
        .outerjoin(DatacenterVisit, (DatacenterVisit.datacenter_id == Datacenter.id)
                   & (DatacenterVisit.departed_at > now - timedelta(days=30)))
        .group_by(Datacenter.name))).all())
    money = GaugeMetricFamily("negahban_billed_rials_month", "Charges posted this Jalali month, in rials",
                              labels=["kind"])
    for kind in CHARGE_KINDS:
        money.add_metric([kind.value], float(billed.get(kind.value) or 0))
    visit_f = GaugeMetricFamily("negahban_datacenter_visits_30d", "Datacenter visits in the last 30 days",
                                labels=["datacenter"])
    for name, n in sorted(visits.items()):
        visit_f.add_metric([name], float(n))
    if not visits:
        visit_f.add_metric([""], 0.0)
    return [money, visit_f]
