"""Report response times come from the engine's rollups: daily slots for compacted months, hourly slots for
recent days, each day counted once."""

from __future__ import annotations

from datetime import UTC, datetime

from dashboards.latency import daily_latency_ms, day_index
from monitor.models import Monitor, RollupArchive
from monitor.rollups import DAY, HOUR, Bucket, month_index, pack


def _bucket(checks: int, latency_s: float) -> Bucket:
    b = Bucket()
    for _ in range(checks):
        b.add("up", latency_s)
    return b


async def test_daily_latency_reads_daily_and_hourly_rollups_once_per_day(sessionmaker):
    oct3 = datetime(2026, 10, 3, tzinfo=UTC)
    nov2 = datetime(2026, 11, 2, tzinfo=UTC)
    async with sessionmaker.begin() as s:
        m = Monitor(name="m", kind="http", target="http://127.0.0.1:9/")
        s.add(m)
        await s.flush()
        period, slot = month_index(day_index(oct3))
        daily = [Bucket() for _ in range(31)]
        daily[slot] = _bucket(10, 0.2)
        s.add(RollupArchive(monitor_id=m.id, resolution=DAY, period=period, slots=pack(daily)))
        hours = [Bucket() for _ in range(24)]
        hours[5], hours[6] = _bucket(3, 0.1), _bucket(1, 0.5)
        s.add(RollupArchive(monitor_id=m.id, resolution=HOUR, period=day_index(nov2), slots=pack(hours)))
        # The same October day also still in hourly form: it must not count twice.
        s.add(RollupArchive(monitor_id=m.id, resolution=HOUR, period=day_index(oct3),
                            slots=pack([_bucket(50, 9.0)] + [Bucket() for _ in range(23)])))
        mid = m.id
    values = await daily_latency_ms(sessionmaker, [mid], datetime(2026, 10, 2, tzinfo=UTC),
                                    datetime(2026, 11, 3, tzinfo=UTC))
    assert len(values) == 32
    assert values[0] is None
    assert abs(values[1] - 200.0) < 1e-3                  # 3 October, from the daily row only
    assert abs(values[-1] - 200.0) < 1e-3                 # 2 November: (3*0.1 + 0.5) / 4
