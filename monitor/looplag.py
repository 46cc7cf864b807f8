"""How late the event loop runs what is due: the lag every probe, flush and scrape sharing the loop feels.

``LoopLag`` sleeps ``every_s`` (100 ms) again and again and records how much later than asked it woke. Anything
that holds the loop (a long render, a big synchronous write, a full garbage collection) shows as one late wake
of about its length. Exported on the service's registry:

- ``negahban_event_loop_lag_seconds``: histogram of every wake's lateness (p99 by ``histogram_quantile``);
- ``negahban_event_loop_lag_max_seconds``: the worst lateness since the previous scrape (reset by each
  collection, so a stall between two scrapes is never averaged away), and
- ``negahban_gc_pause_seconds{generation}``: how long each garbage collection held the interpreter. A
  collection of the oldest generation walks every live container object and cannot be interrupted, so it stalls
  the loop (and any thread) for its whole length: at 10,000 monitors about 90 ms (bench/README.md).

The lag is read from the loop's own clock (``loop.time()``), not the service ``Clock``: it measures the real
loop, and a ``ManualClock`` does not move by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["LoopLag", "LAG_BUCKETS", "freeze_long_lived"]

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_GC_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def freeze_long_lived() -> int:
    """Move every live container object into the collector's permanent generation, so that full collections
    stop walking the catalog, the probe context, the modules and the web app again and again; returns how many
    objects are frozen now.

    Called by the service after start-up and after each catalog reload that changed something. Measured with
    bench/gc_pauses.py (bench/README.md): at 10,000 monitors 33.7 tracked objects per monitor of which 29 are
    long-lived (configs, specs, policies, labels, topology); frozen, a full collection walks ~4.5 per monitor
    (the latest result and memory of each, replaced every check). Figures are in bench/README.md.

    Frozen objects are still freed by reference counting (a removed monitor's config goes as soon as nothing
    refers to it), but a cycle among them would never be collected. So the previous freeze is undone first and
    one full collection runs over everything (it costs what one full collection cost before, once per start or
    changing reload): garbage cycles made of frozen objects (e.g. a check task in flight at the previous
    freeze) live until the next freeze, never forever.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class _MaxSinceScrape(Collector):
    """The worst lag since the last collection. ``collect`` may run in a worker thread (the /metrics render
    does, see dashboards.metrics_page) while the loop records: a lock makes read-and-reset one step, so a wake
    recorded between the two is never lost."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._max = 0.0

    def record(self, lag: float) -> None:
        with self._lock:
            if lag > self._max:
                self._max = lag

    def peek(self) -> float:
        return self._max

    def collect(self):
        with self._lock:
            value, self._max = self._max, 0.0
        family = GaugeMetricFamily("negahban_event_loop_lag_max_seconds",
                                   "Worst event-loop lag seen since the previous scrape")
        family.add_metric([], value)
        yield family


class LoopLag:
    """Measures the running loop's lag from ``start()`` until ``stop()``."""

    def __init__(self, registry: CollectorRegistry, every_s: float = 0.1) -> None:
        self.every_s = every_s
        self.histogram = Histogram("negahban_event_loop_lag_seconds",
                                   f"How much later than planned a {every_s:g} s timer on the event loop fired",
                                   buckets=LAG_BUCKETS, registry=registry)
        self.window = _MaxSinceScrape()
        registry.register(self.window)
        self.gc_pauses = Histogram("negahban_gc_pause_seconds", "Garbage collections by generation and length",
                                   ["generation"], buckets=_GC_BUCKETS, registry=registry)
        self._gc_by = {g: self.gc_pauses.labels(str(g)) for g in range(3)}
        self._gc_started: float | None = None
        self._task: asyncio.Task | None = None
        self._waiters: list[asyncio.Future] = []
        self.wakes = 0

    def record(self, lag: float) -> None:
        lag = max(0.0, lag)
        self.histogram.observe(lag)
        self.window.record(lag)
        self.wakes += 1
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(lag)

    async def next_wake(self) -> float:
        """The lag of the next wake (what a test or the bench waits on instead of sleeping)."""
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        return await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            planned = loop.time() + self.every_s
            await asyncio.sleep(self.every_s)
            self.record(loop.time() - planned)

    def _on_gc(self, phase: str, info: dict) -> None:
        # Runs inside the interpreter's collection, in whichever thread triggered it: only clock reads here.
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started is not None:
            self._gc_by[info["generation"]].observe(time.perf_counter() - self._gc_started)
            self._gc_started = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="event_loop_lag")
            gc.callbacks.append(self._on_gc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            with contextlib.suppress(ValueError):
                gc.callbacks.remove(self._on_gc)
