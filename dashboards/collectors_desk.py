"""Desk figures for Prometheus: open tickets by priority and band, overdue first responses, first-response
seconds by band and SLA breaches over the last 30 days (rule 17)."""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dashboards.collectors import histogram
from tickets.models import OPEN_STATUSES, Priority, Ticket
from tickets.sla import BANDS, is_breached

__all__ = ["desk_families", "WINDOW"]

WINDOW = timedelta(days=30)
FIRST_RESPONSE_BUCKETS = (300, 900, 1800, 3600, 5400, 7200, 10800, 14400, 21600, 43200, 86400)


def _zeroed(name: str, doc: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=["priority", "band"])


async def desk_families(session: AsyncSession, now: datetime) -> list[Metric]:
    rows = (await session.execute(
        select(Ticket.status, Ticket.priority, Ticket.sla_band, Ticket.opened_at, Ticket.first_response_due,
               Ticket.first_response_at)
        .where(or_(Ticket.status.in_(OPEN_STATUSES), Ticket.opened_at > now - WINDOW)))).all()
    keys = [(p.value, b) for p in Priority for b in BANDS]
    open_n, overdue = dict.fromkeys(keys, 0), dict.fromkeys(keys, 0)
    response: dict[tuple[str, ...], list[float]] = {(b,): [] for b in BANDS}
    breaches = dict.fromkeys(BANDS, 0)
    for status, priority, band, opened_at, due, answered in rows:
        key = (priority, band)
        if status in OPEN_STATUSES:
            open_n[key] = open_n.get(key, 0) + 1
            if answered is None and due < now:
                overdue[key] = overdue.get(key, 0) + 1
        if opened_at > now - WINDOW:
            if answered is not None:
                response.setdefault((band,), []).append((answered - opened_at).total_seconds())
            if is_breached(due, answered, now):
                breaches[band] = breaches.get(band, 0) + 1
    open_f = _zeroed("negahban_tickets_open", "Open tickets by priority and SLA band")
    over_f = _zeroed("negahban_tickets_first_response_overdue",
                     "Open tickets past their first-response due time without a first response")
    for key in open_n:
        open_f.add_metric(list(key), float(open_n[key]))
        over_f.add_metric(list(key), float(overdue[key]))
    breach_f = GaugeMetricFamily("negahban_sla_breaches_30d",
                                 "Tickets opened in the last 30 days whose first response was late (or is)",
                                 labels=["band"])
    for band, n in breaches.items():
        breach_f.add_metric([band], float(n))
    first = histogram("negahban_first_response_seconds",
                      "Seconds from opening to the first staff response, tickets opened in the last 30 days",
                      response, ["band"], FIRST_RESPONSE_BUCKETS)
    return [open_f, over_f, breach_f, first]
