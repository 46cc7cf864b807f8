"""Response times for reports, from the engine's rollups (hourly slots for recent days, daily slots for
older ones), so a year-long chart reads a few packed rows per monitor instead of every stored result.
Days here are UTC days, the rollups' own unit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from monitor.models import RollupArchive
from monitor.rollups import DAY, HOUR, Bucket, month_index, unpack

__all__ = ["daily_latency_ms", "day_index", "month_days"]


def day_index(at: datetime) -> int:
    return int(at.timestamp()) // DAY


def month_days(period: int) -> list[int]:
    """The epoch days of the slots of a daily rollup row (``period`` = year*12 + month - 1)."""
    year, month0 = divmod(period, 12)
    first = int(datetime(year, month0 + 1, 1, tzinfo=UTC).timestamp()) // DAY
    return [first + i for i in range(31)]


async def daily_latency_ms(sm: async_sessionmaker, monitor_ids: Sequence[int], start: datetime, end: datetime
                           ) -> list[float | None]:
    """Average response time (ms) of each UTC day touching [start, end), over the monitors' checks."""
    first, last = day_index(start), (int(end.timestamp()) - 1) // DAY
    days = {d: Bucket() for d in range(first, last + 1)}
    if not monitor_ids or not days:
        return [None] * len(days)
    async with sm() as s:
        daily = (await s.execute(select(RollupArchive.period, RollupArchive.slots).where(
            RollupArchive.monitor_id.in_(monitor_ids), RollupArchive.resolution == DAY,
            RollupArchive.period >= month_index(first)[0], RollupArchive.period <= month_index(last)[0]))).all()
        hourly = (await s.execute(select(RollupArchive.period, RollupArchive.slots).where(
            RollupArchive.monitor_id.in_(monitor_ids), RollupArchive.resolution == HOUR,
            RollupArchive.period >= first, RollupArchive.period <= last))).all()
    compacted: set[int] = set()
    for period, blob in daily:
        for day, bucket in zip(month_days(period), unpack(blob, DAY), strict=True):
            if day in days and bucket.checks:
                days[day].merge(bucket)
                compacted.add(day)
    for day, blob in hourly:
        if day in days and day not in compacted:  # a day already compacted into its month counts once
            for bucket in unpack(blob, HOUR):
                days[day].merge(bucket)
    return [b.latency_avg * 1000 if b.checks else None for _, b in sorted(days.items())]
