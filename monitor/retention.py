"""Rollup compaction and retention, run by APScheduler jobs (see ``housekeeping_loops``).

Each is a ``Loop`` of the service (``housekeeping_loops``) and isolates its items: a monitor whose archive row is
corrupt, a table whose delete fails, is recorded and counted while the others are compacted and purged.

Compaction is idempotent: an hourly slot is recomputed from the 5-minute rows of that hour and overwritten,
a daily slot from the hourly slots of that day. Each run redoes the last few closed periods, so a late
flush or a missed run is repaired by the next one (after a long stop, ``catch_up`` redoes all 48 h).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Delete, and_, delete, func, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.clock import Clock
from monitor.models import (
    AgentBatch,
    FailingLocation,
    LocationResult,
    ProbeResultRow,
    RollupArchive,
    RollupFine,
)
from monitor.rollups import DAY, FINE_S, HOUR, Bucket, hour_slot, month_index, pack, unpack
from monitor.work import Loop, WorkerFailures, isolate

__all__ = ["Retention", "compact_hours", "compact_days", "purge", "housekeeping_loops", "catch_up"]

log = logging.getLogger("negahban.retention")
PER_HOUR = HOUR // FINE_S


@dataclass(frozen=True)
class Retention:
    fine_s: float = 48 * 3600
    hourly_s: float = 90 * 86400
    daily_s: float | None = None  # None: kept for ever
    raw_s: float = 7 * 86400
    # Each location's checks of a voted monitor: the failed ones as long as raw results, the others an hour
    # (other engine nodes vote them within seconds; rollups keep the uptime). At 10,000 monitors x 3 locations
    # every 30 s that is 3.6 million rows an hour, so they go in chunks, not in one long transaction.
    located_up_s: float = 3600


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


def _item(monitor_id: int) -> str:
    return f"monitor:{monitor_id}"


async def _write_slots(sessionmaker: async_sessionmaker, resolution: int,
                       updates: dict[tuple[int, int], dict[int, Bucket]]) -> int:
    async with sessionmaker() as session, session.begin():
        return await _rewrite_slots(session, resolution, updates)


async def _compact(sessionmaker: async_sessionmaker, resolution: int, sources: dict[int, list],
                   build: Callable[[dict[int, list]], dict], worker: str, failures: WorkerFailures) -> int:
    """Write the slots built from ``sources`` (monitor -> its rows) in one transaction; if that fails, monitor by
    monitor, so one monitor's corrupt archive row costs only its own rollups (set aside after
    ``MAX_ITEM_ATTEMPTS``). Monitors already set aside are left out."""
    noted = await failures.noted(worker)
    wanted = {m: rows for m, rows in sources.items() if not noted.get(_item(m))}
    try:
        written = await _write_slots(sessionmaker, resolution, build(wanted))
    except Exception as exc:  # noqa: BLE001 - any failure of the batch falls back to one monitor at a time
        log.warning("compaction_batch_failed worker=%s monitors=%s error=%r", worker, len(wanted), str(exc)[:300])
    else:
        await failures.succeeded(worker, [_item(m) for m in wanted if _item(m) in noted])
        return written

    def step(m: int, rows: list):
        return lambda: _write_slots(sessionmaker, resolution, build({m: rows}))

    return (await isolate(worker, ((_item(m), step(m, rows)) for m, rows in wanted.items()), failures)).done


def _hour_slots(sources: dict[int, list]) -> dict[tuple[int, int], dict[int, Bucket]]:
    updates: dict[tuple[int, int], dict[int, Bucket]] = defaultdict(dict)
    for m, rows in sources.items():
        for h, bucket in rows:
            period, slot = hour_slot(h)
            updates[(m, period)][slot] = bucket
    return updates


def _day_slots(sources: dict[int, list]) -> dict[tuple[int, int], dict[int, Bucket]]:
    updates: dict[tuple[int, int], dict[int, Bucket]] = defaultdict(dict)
    for m, rows in sources.items():
        for day, blob in rows:
            total = Bucket()
            for b in unpack(blob, HOUR):
                total.merge(b)
            period, slot = month_index(day)
            updates[(m, period)][slot] = total
    return updates


async def compact_hours(sessionmaker: async_sessionmaker, now: datetime, hours: int = 3,
                        failures: WorkerFailures | None = None) -> int:
    """Recompute the hourly slots of the last ``hours`` closed hours from the 5-minute rows."""
    end_hour = int(now.timestamp()) // HOUR
    sources: dict[int, list] = defaultdict(list)
    async with sessionmaker() as session:
        async for m, h, bucket in _hourly_from_fine(session, end_hour - hours, end_hour):
            sources[m].append((h, bucket))
    return await _compact(sessionmaker, HOUR, sources, _hour_slots, "rollups_hourly",
                          failures or WorkerFailures())


async def compact_days(sessionmaker: async_sessionmaker, now: datetime, days: int = 2,
                       failures: WorkerFailures | None = None) -> int:
    """Recompute the daily slots of the last ``days`` closed UTC days from the hourly slots."""
    end_day = int(now.timestamp()) // DAY
    sources: dict[int, list] = defaultdict(list)
    async with sessionmaker() as session:
        rows = await session.execute(
            select(RollupArchive.monitor_id, RollupArchive.period, RollupArchive.slots)
            .where(RollupArchive.resolution == HOUR, RollupArchive.period >= end_day - days,
                   RollupArchive.period < end_day))
        for m, day, blob in rows.all():
            sources[m].append((day, blob))
    return await _compact(sessionmaker, DAY, sources, _day_slots, "rollups_daily", failures or WorkerFailures())


def _deletes(now: datetime, keep: Retention) -> dict[str, Delete]:
    """What has outlived its resolution, per table (each deleted in a transaction of its own)."""
    ts = now.timestamp()
    out = {
        "rollups_fine": delete(RollupFine).where(RollupFine.bucket < int(ts - keep.fine_s) // FINE_S),
        "rollups_hourly": delete(RollupArchive).where(
            RollupArchive.resolution == HOUR, RollupArchive.period < int(ts - keep.hourly_s) // DAY),
    }
    if keep.daily_s is not None:
        period, _ = month_index(int(ts - keep.daily_s) // DAY)
        out["rollups_daily"] = delete(RollupArchive).where(RollupArchive.resolution == DAY,
                                                           RollupArchive.period < period)
    out["probe_results"] = delete(ProbeResultRow).where(ProbeResultRow.at < now - timedelta(seconds=keep.raw_s))
    # Taken by the incident engine, they live on in the incidents that name them.
    out["failing_locations"] = delete(FailingLocation).where(
        FailingLocation.processed_at.is_not(None), FailingLocation.at < now - timedelta(seconds=keep.raw_s))
    return out


CHUNK = 20_000


def _chunked(now: datetime, keep: Retention) -> dict[str, tuple]:
    """Tables purged a chunk per transaction: (model, what has outlived its time)."""
    raw = now - timedelta(seconds=keep.raw_s)
    return {
        "location_results": (LocationResult, or_(LocationResult.at < raw, and_(
            LocationResult.outcome == "up", LocationResult.at < now - timedelta(seconds=keep.located_up_s)))),
        # A batch is deduplicated (exactly-once) as long as raw results are kept; an agent holds its unsent
        # results for a day.
        "agent_batches": (AgentBatch, AgentBatch.received_at < raw),
    }


async def _purge_chunks(sessionmaker: async_sessionmaker, model, where) -> int:
    total = 0
    while True:
        async with sessionmaker() as session, session.begin():
            ids = select(model.id).where(where).limit(CHUNK).scalar_subquery()
            n = (await session.execute(delete(model).where(model.id.in_(ids)))).rowcount
        total += n
        if n < CHUNK:
            return total


async def purge(sessionmaker: async_sessionmaker, now: datetime, keep: Retention,
                failures: WorkerFailures | None = None) -> dict[str, int]:
    """Delete what has outlived its resolution; returns rows deleted per table. A table whose delete fails is
    counted (and set aside after ``MAX_ITEM_ATTEMPTS``); the other tables are still purged."""
    counts: dict[str, int] = {}

    def step(name: str, stmt: Delete):
        async def run() -> int:
            async with sessionmaker() as session, session.begin():
                counts[name] = (await session.execute(stmt)).rowcount
            return 1
        return run

    def chunks(name: str, model, where):
        async def run() -> int:
            counts[name] = await _purge_chunks(sessionmaker, model, where)
            return 1
        return run

    steps = [(f"table:{name}", step(name, stmt)) for name, stmt in _deletes(now, keep).items()]
    steps += [(f"table:{name}", chunks(name, model, where)) for name, (model, where) in _chunked(now, keep).items()]
    await isolate("retention", steps, failures or WorkerFailures())
    log.info("purged %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


async def catch_up(sessionmaker: async_sessionmaker, now: datetime, failures: WorkerFailures | None = None) -> None:
    """After a start: rebuild every hourly slot the 5-minute rows still cover, then the daily ones."""
    await compact_hours(sessionmaker, now, hours=48, failures=failures)
    await compact_days(sessionmaker, now, days=3, failures=failures)


def housekeeping_loops(sessionmaker: async_sessionmaker, clock: Clock, keep: Retention,
                       failures: WorkerFailures) -> list[Loop]:
    """The compaction and retention jobs (APScheduler cron jobs of the service's scheduler)."""

    async def hourly() -> int:
        return await compact_hours(sessionmaker, clock.now(), failures=failures)

    async def daily() -> int:
        return await compact_days(sessionmaker, clock.now(), failures=failures)

    async def retention() -> dict[str, int]:
        return await purge(sessionmaker, clock.now(), keep, failures)

    return [Loop("rollups_hourly", hourly, cron={"minute": 1, "second": 30}, misfire_grace_s=3600),
            Loop("rollups_daily", daily, cron={"hour": 0, "minute": 10}, misfire_grace_s=3600),
            Loop("retention", retention, cron={"minute": 17}, misfire_grace_s=3600)]
