"""Collectors of figures that live in the database (incidents, tickets, money, the outbox, flips).

A scrape must not wait on a slow query nor run one per scraper: each ``DbCollector`` holds the families its
async ``gather(session, now)`` produced, and ``MetricsHub.refresh()`` (awaited by the /metrics route before
rendering) re-runs the gathers older than ``ttl_s``, one at a time under a lock. ``collect()`` itself only
yields what is held, so prometheus_client's synchronous rendering never touches the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.clock import Clock
from monitor.models import Flip, State

__all__ = ["DbCollector", "MetricsHub", "Gather", "histogram", "flip_latency_families", "DURATION_BUCKETS",
           "refreshing"]

log = logging.getLogger("negahban.metrics")
Gather = Callable[[AsyncSession, datetime], Awaitable[list[Metric]]]
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)


class DbCollector(Collector):
    def __init__(self, registry: CollectorRegistry, name: str, gather: Gather, ttl_s: float = 10.0) -> None:
        self.name, self._gather, self.ttl_s = name, gather, ttl_s
        self._families: list[Metric] = []
        self.refreshed_at: float | None = None
        registry.register(self)

    def describe(self) -> list[Metric]:
        return []  # nothing gathered yet at registration; names are checked when families arrive

    def collect(self) -> Iterable[Metric]:
        return list(self._families)

    def stale(self, monotonic: float) -> bool:
        return self.refreshed_at is None or monotonic - self.refreshed_at >= self.ttl_s

    async def refresh(self, session: AsyncSession, now: datetime, monotonic: float) -> None:
        self._families = await self._gather(session, now)
        self.refreshed_at = monotonic


class MetricsHub:
    """The database-backed collectors of one registry, refreshed before a scrape when stale."""

    def __init__(self, registry: CollectorRegistry, sessionmaker: async_sessionmaker, clock: Clock) -> None:
        self.registry, self._sm, self._clock = registry, sessionmaker, clock
        self.collectors: list[DbCollector] = []
        self._lock = asyncio.Lock()

    def add(self, name: str, gather: Gather, ttl_s: float = 10.0) -> DbCollector:
        collector = DbCollector(self.registry, name, gather, ttl_s)
        self.collectors.append(collector)
        return collector

    async def refresh(self) -> None:
        async with self._lock:
            mono = self._clock.monotonic()
            stale = [c for c in self.collectors if c.stale(mono)]
            if not stale:
                return
            async with self._sm() as session:
                for c in stale:
                    try:
                        await c.refresh(session, self._clock.now(), mono)
                    except Exception:  # a broken gather keeps its old figures, it must not break /metrics
                        log.exception("collector_failed name=%s", c.name)


def refreshing(collector) -> Gather:
    """A gather for a collector another package registered itself, holding a snapshot that its
    ``refresh(session)`` replaces (the ledger's): the hub refreshes it before scrapes like its own."""

    async def gather(session: AsyncSession, now: datetime) -> list[Metric]:
        await collector.refresh(session)
        return []

    return gather


def histogram(name: str, doc: str, values_by_labels: dict[tuple[str, ...], Sequence[float]],
              labels: Sequence[str], buckets: Sequence[float] = DURATION_BUCKETS) -> HistogramMetricFamily:
    """A histogram family from raw observations grouped by label values."""
    fam = HistogramMetricFamily(name, doc, labels=list(labels))
    for label_values, values in values_by_labels.items():
        ordered = sorted(values)
        counts, i = [], 0
        for b in buckets:
            while i < len(ordered) and ordered[i] <= b:
                i += 1
            counts.append((str(float(b)), float(i)))
        counts.append(("+Inf", float(len(ordered))))
        fam.add_metric(list(label_values), counts, sum_value=float(sum(ordered)))
    return fam


async def flip_latency_families(session: AsyncSession, now: datetime,
                                window: timedelta = timedelta(hours=24)) -> list[Metric]:
    """Detection latency: from a confirmed flip to the incident stage consuming it, over ``window``;
    and the flips still waiting (a stuck incident engine shows here before customers notice)."""
    rows = (await session.execute(select(Flip.at, Flip.processed_at, Flip.new_state)
                                  .where(Flip.at > now - window))).all()
    # Every state gets its series from the start, so a dashboard shows zero rather than "no data".
    done: dict[tuple[str, ...], list[float]] = {(s.value,): [] for s in State if s is not State.UNKNOWN}
    waiting = 0
    oldest = 0.0
    for at, processed_at, state in rows:
        if processed_at is None:
            waiting += 1
            oldest = max(oldest, (now - at).total_seconds())
        else:
            done.setdefault((state,), []).append(max(0.0, (processed_at - at).total_seconds()))
    pending = GaugeMetricFamily("negahban_flips_unprocessed", "Flips not yet consumed by the incident engine")
    pending.add_metric([], float(waiting))
    age = GaugeMetricFamily("negahban_flips_oldest_unprocessed_seconds", "Age of the oldest unconsumed flip")
    age.add_metric([], oldest)
    return [histogram("negahban_detection_latency_seconds",
                      "Seconds from a confirmed flip to the incident engine acting on it (last 24 h)",
                      done, ["state"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)),
            pending, age]
