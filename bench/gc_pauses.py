"""Full garbage collections of the running service at 10,000-100,000 monitors, and what shortens them.

    PYTHONPATH=. python bench/gc_pauses.py --monitors 10000 --interval 30 --mode none
    PYTHONPATH=. python bench/gc_pauses.py --monitors 50000 --interval 60 --mode freeze [--seconds 90]

The real service (``build_service`` + ``start``: catalog, runner, scheduler, incident workers, web) in this
process on a fresh SQLite database, probing the loopback targets of ``bench/targets.py`` (a process of its own)
with HTTP, TCP and ICMP monitors mixed evenly, as ``bench/engine_bench.py`` does. After a warm-up of one interval
plus 10 s (every monitor checked once, so ``runner.latest`` and ``memories`` are full) it records over
``--seconds``: every garbage collection by generation (``gc.callbacks``, the same timing as
``negahban_gc_pause_seconds``), every wake of the service's own 100 ms loop-lag timer (``monitor.looplag``), every
check's lateness, and the RSS. One mode per process (``gc.freeze`` is process-wide):

- ``none``: what the code did before (the service's start-up freeze undone with ``gc.unfreeze()``, the default
  thresholds ``(700, 10, 10)`` put back);
- ``freeze``: ``gc.collect(); gc.freeze()`` after start-up only, default thresholds;
- ``threshold``: no freeze, ``gc.set_threshold(700, 10, 100)`` (full collections ten times rarer by count;
  CPython 3.11 still waits until the survivors since the last full one exceed 25 % of the long-lived);
- ``freeze+threshold``: both: what the service does now (``Service.start``).

At the end: the number of objects the collector tracks (what a full collection walks) and the most common types
among them per monitor, so "fewer tracked objects" can be aimed where they are.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_bench import free_port, fresh_db, populate, rss_mb  # noqa: E402
from monitor.looplag import freeze_long_lived  # noqa: E402
from monitor.settings import load_settings  # noqa: E402
from negahban.service import build_service, run_loop  # noqa: E402
from probes import PROBERS  # noqa: E402


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Recorder:
    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.cpu: dict[int, list[float]] = {0: [], 1: [], 2: []}  # CPU of the collection: what load cannot inflate
        self.collected: list[int] = []  # garbage objects freed by each full collection
        self.lags: list[float] = []
        self.lateness: list[float] = []
        self.on = False
        self._t = self._c = 0.0
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t, self._c = time.perf_counter(), time.thread_time()
        elif self.on:
            self.pauses[info["generation"]].append((time.perf_counter() - self._t) * 1000)
            self.cpu[info["generation"]].append((time.thread_time() - self._c) * 1000)
            if info["generation"] == 2:
                self.collected.append(info["collected"])


def census(n: int) -> tuple[int, list[tuple[str, float]]]:
    objs = gc.get_objects()
    counts = collections.Counter(type(o).__qualname__ for o in objs)
    total = len(objs)
    del objs
    return total, [(name, c / n) for name, c in counts.most_common(12)]


async def run(args) -> None:
    logging.basicConfig(level=logging.WARNING)
    kinds = [k for k in ("http", "tcp", "icmp") if k in PROBERS]
    rec = Recorder()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        targets = subprocess.Popen([sys.executable, "bench/targets.py"], cwd=ROOT,  # noqa: ASYNC220 - once
                                   stdout=subprocess.PIPE, text=True)
        try:
            http_port, tcp_port = map(int, targets.stdout.readline().split())
            url = await fresh_db("sqlite", tmp, "gc")
            await populate(url, args.monitors, kinds, {"http": http_port, "tcp": tcp_port}, args.interval)
            settings = load_settings({}, database_url=url, listen_port=free_port(), cookie_secure=False,
                                     log_level="WARNING")
            t0 = time.monotonic()
            service = await build_service(settings)
            await service.start()
            started_s = time.monotonic() - t0
            frozen_by_service = gc.get_freeze_count()
            if args.mode in ("none", "threshold"):
                gc.unfreeze()
            elif gc.get_freeze_count() == 0:
                gc.collect()
                gc.freeze()
            gc.set_threshold(700, 10, 100 if "threshold" in args.mode else 10)
            lag = service.extras["loop_lag"]
            record_lag, observe = lag.record, service.scheduler.lateness.observe

            def on_lag(value: float) -> None:
                if rec.on:
                    rec.lags.append(value * 1000)
                record_lag(value)

            def on_late(value: float) -> None:
                if rec.on:
                    rec.lateness.append(value * 1000)
                observe(value)

            lag.record, service.scheduler.lateness.observe = on_lag, on_late
            try:
                await asyncio.sleep(args.interval + 10)  # every monitor checked once
                rec.on = True
                rss0 = rss_mb(os.getpid())
                await asyncio.sleep(args.seconds)
                rec.on = False
                rss1 = rss_mb(os.getpid())
                walk = time.thread_time()
                gc.collect()  # an explicit one in the same state: the walk alone, next to no garbage to free
                walk = (time.thread_time() - walk) * 1000
                tracked, top = census(args.monitors)
                reload_freeze = time.thread_time()
                freeze_long_lived()  # what a reload that changed the catalog costs (unfreeze, full collect, freeze)
                reload_freeze = (time.thread_time() - reload_freeze) * 1000
            finally:
                await service.stop()
        finally:
            targets.terminate()
            targets.wait(10)
    full = rec.pauses[2]
    print(f"== {args.monitors} monitors every {args.interval:g} s, mode {args.mode}, {args.seconds:g} s measured, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"start-up {started_s:.1f} s; objects frozen by the service at start {frozen_by_service}; "
          f"frozen now {gc.get_freeze_count()}; thresholds {gc.get_threshold()}")
    print(f"gen-2 collections {len(full)}; max {max(full, default=0):.1f} ms; p99 {pct(full, 0.99):.1f} ms; "
          f"median {statistics.median(full) if full else 0:.1f} ms; CPU max {max(rec.cpu[2], default=0):.1f} ms, "
          f"median {statistics.median(rec.cpu[2]) if full else 0:.1f} ms")
    print(f"garbage freed per full collection: median {statistics.median(rec.collected) if full else 0:.0f}; "
          f"an explicit gc.collect() after the window: {walk:.1f} ms CPU; freeze_long_lived() (a changing reload): "
          f"{reload_freeze:.1f} ms CPU")
    for g in (0, 1):
        p = rec.pauses[g]
        print(f"gen-{g} collections {len(p)}; max {max(p, default=0):.1f} ms; p99 {pct(p, 0.99):.2f} ms")
    print(f"loop lag (100 ms timer, {len(rec.lags)} wakes): max {max(rec.lags, default=0):.1f} ms; "
          f"p99 {pct(rec.lags, 0.99):.1f} ms")
    print(f"check lateness ({len(rec.lateness)} checks): p50 {pct(rec.lateness, 0.5):.1f} ms; "
          f"p99 {pct(rec.lateness, 0.99):.1f} ms; max {max(rec.lateness, default=0):.1f} ms")
    print(f"RSS {rss0:.0f} -> {rss1:.0f} MB; objects tracked (not frozen) {tracked} "
          f"({tracked / args.monitors:.1f} per monitor)")
    print("most common tracked types per monitor: " + ", ".join(f"{n} {c:.2f}" for n, c in top))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--monitors", type=int, default=10000)
    ap.add_argument("--interval", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--mode", choices=["none", "freeze", "threshold", "freeze+threshold"], default="freeze")
    args = ap.parse_args()
    run_loop(run(args), "uvloop")  # as `negahban serve` runs by default


if __name__ == "__main__":
    main()
