"""Ledger metrics: visits by datacenter and billing state, billed amounts by kind.

Prometheus collects synchronously and the ledger lives in the database, so the collector renders a snapshot
that ``refresh(session)`` replaces (the dashboards' scheduler calls it, e.g. every minute). Labels carry no
customer names (rule 4).

    negahban_ledger_visits{datacenter, billing}    visits recorded; billing is bill (billable and approved),
                                                   awaiting_approval, blocked_undetermined or not_billable
    negahban_ledger_billed_rials{kind}             rials charged by kind, net of reversals
    negahban_ledger_payments_rials                 rials paid, net of reversals
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from monitor.models import Datacenter
from tickets.ledger.models import CHARGE_KINDS, DatacenterVisit, EntryKind, LedgerEntry
from tickets.ledger.visits import billing_decision

__all__ = ["LedgerCollector", "register_ledger_collector"]


class LedgerCollector(Collector):
    def __init__(self) -> None:
        self.visits: dict[tuple[str, str], int] = {}
        self.by_kind: dict[str, int] = {}

    def collect(self):
        visits = GaugeMetricFamily("negahban_ledger_visits", "Datacenter visits by datacenter and billing state",
                                   labels=("datacenter", "billing"))
        for (dc, billing), n in sorted(self.visits.items()):
            visits.add_metric([dc, billing], n)
        billed = GaugeMetricFamily("negahban_ledger_billed_rials", "Rials charged by kind, net of reversals",
                                   labels=("kind",))
        for kind in CHARGE_KINDS:
            billed.add_metric([kind.value], self.by_kind.get(kind, 0))
        paid = GaugeMetricFamily("negahban_ledger_payments_rials", "Rials paid, net of reversals")
        paid.add_metric([], -self.by_kind.get(EntryKind.PAYMENT, 0))
        yield visits
        yield billed
        yield paid

    async def refresh(self, session: AsyncSession) -> None:
        self.visits = await _visits(session)
        self.by_kind = await _net_by_kind(session)

    async def refresh_with(self, sm: async_sessionmaker) -> None:
        """Refresh in a session of its own (what a periodic job or a pre-scrape hook calls)."""
        async with sm() as session:
            await self.refresh(session)


async def _visits(session: AsyncSession) -> dict[tuple[str, str], int]:
    rows = (await session.execute(
        select(Datacenter.name, DatacenterVisit.cause, DatacenterVisit.approved_at.is_not(None), func.count())
        .join(Datacenter, Datacenter.id == DatacenterVisit.datacenter_id)
        .group_by(Datacenter.name, DatacenterVisit.cause, DatacenterVisit.approved_at.is_not(None)))).all()
    out: dict[tuple[str, str], int] = {}
    for dc, cause, approved, n in rows:
        key = (dc, billing_decision(cause, bool(approved)).value)
        out[key] = out.get(key, 0) + int(n)
    return out


async def _net_by_kind(session: AsyncSession) -> dict[str, int]:
    """Sum by kind, a reversal counted against the kind of the entry it reverses."""
    original = aliased(LedgerEntry)
    kind = func.coalesce(original.kind, LedgerEntry.kind)
    rows = (await session.execute(
        select(kind, func.sum(LedgerEntry.amount_rials))
        .outerjoin(original, original.id == LedgerEntry.reverses_id).group_by(kind))).all()
    return {k: int(v) for k, v in rows}


def register_ledger_collector(registry: CollectorRegistry) -> LedgerCollector:
    collector = LedgerCollector()
    registry.register(collector)
    return collector
