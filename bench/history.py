"""A simulated year of history on a fresh database: storage per monitor and a year-long uptime query.

Per monitor, what a year at a 30 s interval leaves behind once retention has done its work: its flips
(a 10-minute outage every week and a 30-minute degradation every two weeks: 157 flips), the raw failures of
the last 7 days (the week's outage and 0.2 % scattered failures, with messages), 48 h of 5-minute rollups,
90 days of hourly slots and a year of daily slots (packed as ``monitor.rollups`` packs them), its state row,
and a weekly maintenance window on its customer.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text

from monitor.db import make_engine, make_sessionmaker
from monitor.models import (
    Customer,
    Flip,
    MaintenanceWindow,
    Monitor,
    MonitorState,
    ProbeResultRow,
    RollupArchive,
    RollupFine,
    Service,
)
from monitor.rollups import DAY, HOUR, Bucket, month_index, pack
from monitor.uptime import monitor_uptime

NOW = datetime(2027, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)
TABLES = ("flips", "probe_results", "rollups_fine", "rollups_archive", "monitor_states", "monitors")
MESSAGE = "connect to 127.40.3.17:443: timed out after 5s (no SYN-ACK)"


def _flips(mid: int) -> list[dict]:
    start = NOW - YEAR
    rows = [{"monitor_id": mid, "at": start, "old_state": "UNKNOWN", "new_state": "UP", "reason": "first_check"}]
    for week in range(52):
        t = start + timedelta(weeks=week, hours=random.uniform(1, 160))
        rows += [{"monitor_id": mid, "at": t, "old_state": "UP", "new_state": "DOWN", "reason": "timeout",
                  "message": MESSAGE, "processed_at": t},
                 {"monitor_id": mid, "at": t + timedelta(minutes=10), "old_state": "DOWN", "new_state": "UP",
                  "reason": "recovered", "message": "status 200", "processed_at": t}]
        if week % 2 == 0:
            d = t + timedelta(days=3)
            rows += [{"monitor_id": mid, "at": d, "old_state": "UP", "new_state": "DEGRADED",
                      "reason": "latency", "message": "1.912s > 1s", "processed_at": d},
                     {"monitor_id": mid, "at": d + timedelta(minutes=30), "old_state": "DEGRADED",
                      "new_state": "UP", "reason": "recovered", "message": "status 200", "processed_at": d}]
    return sorted(rows, key=lambda r: r["at"])


def _raw(mid: int) -> list[dict]:
    week_ago = NOW - timedelta(days=7)
    outage = week_ago + timedelta(days=random.uniform(0, 6))
    times = [outage + timedelta(seconds=30 * i) for i in range(22)]
    times += [week_ago + timedelta(seconds=random.uniform(0, 7 * 86400)) for _ in range(40)]
    return [{"monitor_id": mid, "at": t, "outcome": "down", "reason": "timeout", "message": MESSAGE,
             "latency_s": 5.0, "details": {}} for t in times]


def _bucket(checks: int) -> Bucket:
    b = Bucket()
    for _ in range(min(checks, 3)):
        b.add("up", random.uniform(0.001, 0.05))
    b.checks, b.up = checks, checks - 1
    b.down = 1
    return b


def _rollups(mid: int) -> tuple[list[dict], list[dict]]:
    now_s = int(NOW.timestamp())
    fine = [{"monitor_id": mid, "bucket": now_s // 300 - k, "checks": 10, "up": 10, "degraded": 0, "down": 0,
             "latency_min": 0.001, "latency_sum": 0.05, "latency_max": 0.02} for k in range(576)]
    today = now_s // DAY
    archive = [{"monitor_id": mid, "resolution": HOUR, "period": today - d,
                "slots": pack([_bucket(120) for _ in range(24)])} for d in range(90)]
    months = sorted({month_index(today - d)[0] for d in range(365)})
    archive += [{"monitor_id": mid, "resolution": DAY, "period": p, "slots": pack([_bucket(2880)] * 31)}
                for p in months]
    return fine, archive


async def _size(engine) -> int:
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            await conn.exec_driver_sql("VACUUM")
            pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar()
            return pages * (await conn.exec_driver_sql("PRAGMA page_size")).scalar()
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("VACUUM ANALYZE")
        q = " + ".join(f"pg_total_relation_size('{t}')" for t in TABLES)
        return (await conn.execute(text(f"SELECT {q}"))).scalar()


async def _populate(sm, monitors: int) -> list[int]:
    async with sm() as s, s.begin():
        cust = Customer(name="bench-customer")
        s.add(cust)
        await s.flush()
        svc = Service(name="bench-service", customer_id=cust.id)
        s.add(svc)
        await s.flush()
        s.add(MaintenanceWindow(title="weekly", starts_at=NOW - YEAR, rrule="FREQ=WEEKLY;BYDAY=FR",
                                duration_s=7200, timezone="Asia/Tehran", customer_id=cust.id))
        ids = []
        for i in range(monitors):
            m = Monitor(name=f"year-{i}", kind="http", target=f"http://127.40.0.{i % 250}/", interval_s=30,
                        service_id=svc.id)
            s.add(m)
            await s.flush()
            ids.append(m.id)
    for mid in ids:
        fine, archive = _rollups(mid)
        async with sm() as s, s.begin():
            await s.execute(insert(Flip), _flips(mid))
            await s.execute(insert(ProbeResultRow), _raw(mid))
            await s.execute(insert(RollupFine), fine)
            await s.execute(insert(RollupArchive), archive)
            await s.execute(insert(MonitorState), [{"monitor_id": mid, "state": "UP", "since": NOW,
                                                    "last_check_at": NOW, "data": {"up": 40, "history": "U" * 21}}])
    return ids


async def simulate_year(url: str, monitors: int = 200, reps: int = 20) -> dict:
    random.seed(7)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    try:
        empty = await _size(engine)
        ids = await _populate(sm, monitors)
        full = await _size(engine)
        times = []
        for _ in range(reps + 1):
            t = time.perf_counter()
            up = await monitor_uptime(sm, ids[len(ids) // 2], NOW - YEAR, NOW, NOW)
            times.append(time.perf_counter() - t)
    finally:
        await engine.dispose()
    return {"bytes_per_monitor": (full - empty) / monitors, "uptime_ms": 1000 * statistics.median(times[1:]),
            "reps": reps, "detail": f"uptime {100 * (up.ratio or 0):.3f}%, {int(up.seconds['MAINTENANCE'])} s "
                                    f"maintenance left out"}
