"""Scheduler designs measured side by side: one APScheduler job per monitor, or a few APScheduler ticks
feeding our due-queue (monitor.scheduler). The check itself is an empty coroutine, so the figures are the
scheduling cost alone.

    PYTHONPATH=. /work/venv/bin/python bench/scheduler_designs.py [--monitors 10000] [--interval 10] [--seconds 30]

Prints, per design: runs, CPU-ms per run (this process, time.process_time), average CPU (cores), p50/p99
lateness (actual minus planned start), and the ratio of per-run CPU (per-job / due-queue).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry

from monitor.clock import SystemClock
from monitor.scheduler import DueQueue, next_start, phase_of


class Stats:
    def __init__(self) -> None:
        self.lateness: list[float] = []
        self.active = False

    def record(self, planned: float) -> None:
        if self.active:
            self.lateness.append(time.time() - planned)


def planned_slot(mid: int, interval: float, now: float) -> float:
    phase = phase_of(mid, interval)
    return phase + math.floor((now - phase) / interval) * interval


async def per_job(n: int, interval: float, stats: Stats) -> AsyncIOScheduler:
    aps = AsyncIOScheduler(timezone="UTC")

    async def check(mid: int) -> None:
        stats.record(planned_slot(mid, interval, time.time()))

    epoch = datetime(2020, 1, 1, tzinfo=UTC)
    for mid in range(1, n + 1):
        aps.add_job(check, IntervalTrigger(seconds=interval, start_date=epoch + timedelta(
            seconds=phase_of(mid, interval))), args=[mid], id=f"m{mid}", max_instances=1, coalesce=True,
            misfire_grace_time=int(interval))
    aps.start()
    return aps


async def due_queue(n: int, interval: float, stats: Stats) -> AsyncIOScheduler:
    """The shape of monitor.scheduler.Scheduler.tick/_launch/_requeue, without the database."""
    queue, clock, loop = DueQueue(), SystemClock(), asyncio.get_running_loop()
    tick_s = 1.0
    now = time.time()
    for mid in range(1, n + 1):
        queue.put(mid, next_start(mid, interval, now))

    async def run(mid: int, planned: float) -> None:
        stats.record(planned)
        queue.put(mid, next_start(mid, interval, clock.now().timestamp()))

    def launch(mid: int, planned: float) -> None:
        asyncio.create_task(run(mid, planned))

    async def tick() -> None:
        t, base = clock.now().timestamp(), loop.time()
        for at, mid, _gen in queue.pop_until(t + 2 * tick_s):
            loop.call_at(base + (at - t), launch, mid, at)

    aps = AsyncIOScheduler(timezone="UTC")
    aps.add_job(tick, IntervalTrigger(seconds=tick_s), id="tick", max_instances=1, coalesce=True)
    aps.start()
    await tick()
    return aps


async def measure(name: str, design, n: int, interval: float, seconds: float) -> dict:
    stats = Stats()
    aps = await design(n, interval, stats)
    await asyncio.sleep(interval)  # warm up: every monitor has run once
    stats.active = True
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    stats.active = False
    aps.shutdown(wait=False)
    lat = sorted(stats.lateness)
    runs = len(lat)
    return {"design": name, "runs": runs, "cpu_ms_per_run": 1000 * cpu / max(runs, 1), "cores": cpu / wall,
            "p50_ms": 1000 * statistics.median(lat), "p99_ms": 1000 * lat[int(0.99 * (runs - 1))],
            "expected_runs": n * seconds / interval}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--monitors", type=int, default=10000)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    a = ap.parse_args()
    CollectorRegistry()
    rows = [await measure("apscheduler job per monitor", per_job, a.monitors, a.interval, a.seconds),
            await measure("apscheduler tick + due-queue", due_queue, a.monitors, a.interval, a.seconds)]
    print(f"{a.monitors} monitors every {a.interval:g} s, measured {a.seconds:g} s each")
    print(f"{'design':32} {'runs':>7} {'expected':>8} {'CPU-ms/run':>10} {'cores':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for r in rows:
        print(f"{r['design']:32} {r['runs']:7d} {r['expected_runs']:8.0f} {r['cpu_ms_per_run']:10.3f} "
              f"{r['cores']:6.3f} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f}")
    print(f"per-run CPU ratio (job per monitor / due-queue): {rows[0]['cpu_ms_per_run'] / rows[1]['cpu_ms_per_run']:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
