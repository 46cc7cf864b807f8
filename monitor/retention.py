"""Rollup compaction and retention, run by APScheduler jobs (see ``schedule_housekeeping``).

Compaction is idempotent: an hourly slot is recomputed from the 5-minute rows of that hour and overwritten,
a daily slot from the hourly slots of that day. Each run redoes the last few closed periods, so a late
flush or a missed run is repaired by the next one (after a long stop, ``catch_up`` redoes all 48 h).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.clock import Clock
from monitor.models import ProbeResultRow, RollupArchive, RollupFine
from monitor.rollups import DAY, FINE_S, HOUR, Bucket, hour_slot, month_index, pack, unpack

__all__ = ["Retention", "compact_hours", "compact_days", "purge", "schedule_housekeeping"]

log = logging.getLogger("negahban.retention")
PER_HOUR = HOUR // FINE_S


@dataclass(frozen=True)
class Retention:
    fine_s: float = 48 * 3600
    hourly_s: float = 90 * 86400
    daily_s: float | None = None  # None: kept for ever
    raw_s: float = 7 * 86400


async def _hourly_from_fine(session: AsyncSession, first_hour: int, end_hour: int):
    c = RollupFine.__table__.c
    hour = (c.bucket // PER_HOUR).label("hour")
    stmt = (select(c.monitor_id, hour, func.sum(c.checks), func.sum(c.up), func.sum(c.degraded),
                   func.sum(c.down), func.min(c.latency_min), func.sum(c.latency_sum), func.max(c.latency_max))
            .where(c.bucket >= first_hour * PER_HOUR, c.bucket < end_hour * PER_HOUR)
            .group_by(c.monitor_id, hour))
    for m, h, *vals in (await session.execute(stmt)).all():
        yield m, int(h), Bucket(*vals)


async def _rewrite_slots(session: AsyncSession, resolution: int,
                         updates: dict[tuple[int, int], dict[int, Bucket]]) -> int:
    """Set slots of archive rows (monitor, period) -> {slot: bucket}; one read and one upsert in all."""
    if not updates:
        return 0
    keys = list(updates)
    have = {}
    for i in range(0, len(keys), 500):
        rows = await session.execute(
            select(RollupArchive.monitor_id, RollupArchive.period, RollupArchive.slots)
            .where(RollupArchive.resolution == resolution,
                   tuple_(RollupArchive.monitor_id, RollupArchive.period).in_(keys[i:i + 500])))
        have.update({(m, p): blob for m, p, blob in rows.all()})
    out = []
    for key, slots in updates.items():
        current = unpack(have.get(key), resolution)
        for slot, bucket in slots.items():
            current[slot] = bucket
        out.append({"monitor_id": key[0], "resolution": resolution, "period": key[1], "slots": pack(current)})
    ins = (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(RollupArchive)
    await session.execute(ins.on_conflict_do_update(
        index_elements=["monitor_id", "resolution", "period"], set_={"slots": ins.excluded.slots}), out)
    return len(out)


async def compact_hours(sessionmaker: async_sessionmaker, now: datetime, hours: int = 3) -> int:
    """Recompute the hourly slots of the last ``hours`` closed hours from the 5-minute rows."""
    end_hour = int(now.timestamp()) // HOUR
    updates: dict[tuple[int, int], dict[int, Bucket]] = defaultdict(dict)
    async with sessionmaker() as session, session.begin():
        async for m, h, bucket in _hourly_from_fine(session, end_hour - hours, end_hour):
            period, slot = hour_slot(h)
            updates[(m, period)][slot] = bucket
        return await _rewrite_slots(session, HOUR, updates)


async def compact_days(sessionmaker: async_sessionmaker, now: datetime, days: int = 2) -> int:
    """Recompute the daily slots of the last ``days`` closed UTC days from the hourly slots."""
    end_day = int(now.timestamp()) // DAY
    updates: dict[tuple[int, int], dict[int, Bucket]] = defaultdict(dict)
    async with sessionmaker() as session, session.begin():
        rows = await session.execute(
            select(RollupArchive.monitor_id, RollupArchive.period, RollupArchive.slots)
            .where(RollupArchive.resolution == HOUR, RollupArchive.period >= end_day - days,
                   RollupArchive.period < end_day))
        for m, day, blob in rows.all():
            total = Bucket()
            for b in unpack(blob, HOUR):
                total.merge(b)
            period, slot = month_index(day)
            updates[(m, period)][slot] = total
        return await _rewrite_slots(session, DAY, updates)


async def purge(sessionmaker: async_sessionmaker, now: datetime, keep: Retention) -> dict[str, int]:
    """Delete what has outlived its resolution; returns rows deleted per table."""
    ts = now.timestamp()
    counts = {}
    async with sessionmaker() as session, session.begin():
        r = await session.execute(delete(RollupFine).where(RollupFine.bucket < int(ts - keep.fine_s) // FINE_S))
        counts["rollups_fine"] = r.rowcount
        r = await session.execute(delete(RollupArchive).where(
            RollupArchive.resolution == HOUR, RollupArchive.period < int(ts - keep.hourly_s) // DAY))
        counts["rollups_hourly"] = r.rowcount
        if keep.daily_s is not None:
            period, _ = month_index(int(ts - keep.daily_s) // DAY)
            r = await session.execute(delete(RollupArchive).where(
                RollupArchive.resolution == DAY, RollupArchive.period < period))
            counts["rollups_daily"] = r.rowcount
        r = await session.execute(delete(ProbeResultRow).where(
            ProbeResultRow.at < now - timedelta(seconds=keep.raw_s)))
        counts["probe_results"] = r.rowcount
    log.info("purged %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


async def catch_up(sessionmaker: async_sessionmaker, now: datetime) -> None:
    """After a start: rebuild every hourly slot the 5-minute rows still cover, then the daily ones."""
    await compact_hours(sessionmaker, now, hours=48)
    await compact_days(sessionmaker, now, days=3)


def schedule_housekeeping(scheduler, sessionmaker: async_sessionmaker, clock: Clock, keep: Retention) -> None:
    """Add the compaction and retention jobs to an APScheduler ``AsyncIOScheduler``."""

    async def hourly() -> None:
        await compact_hours(sessionmaker, clock.now())

    async def daily() -> None:
        await compact_days(sessionmaker, clock.now())

    async def retention() -> None:
        await purge(sessionmaker, clock.now(), keep)

    opts = {"replace_existing": True, "max_instances": 1, "coalesce": True, "misfire_grace_time": 3600}
    scheduler.add_job(hourly, "cron", minute=1, second=30, id="rollups-hourly", **opts)
    scheduler.add_job(daily, "cron", hour=0, minute=10, id="rollups-daily", **opts)
    scheduler.add_job(retention, "cron", minute=17, id="retention", **opts)
