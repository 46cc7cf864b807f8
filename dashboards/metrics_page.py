"""The whole /metrics body, rendered off the event loop at most once per ``ttl_s`` however many scrape.

A render is: refresh the database-backed collectors that are stale (``MetricsHub``, awaited on the loop: it is
I/O), take a snapshot of the runner's latest results (on the loop: a list of references, about 1 ms at 10,000
monitors), then format the per-monitor series and ``generate_latest`` of the registry in a worker thread.
Concurrent scrapes wait on one lock for that one render and all get its bytes; later scrapes get the same bytes
until ``ttl_s`` has passed on the clock's monotonic reading.

What the worker thread reads, and why that is safe while the loop goes on:

- the snapshot is a dict copied on the loop, so the runner adding or replacing monitors in its dict during the
  render cannot break the iteration. Its ``Latest`` objects are never changed after the runner stores them
  (``monitor.runner`` replaces a monitor's entry with a new one on every check), so each is read whole.
- the exposition's own caches (labels and lines per monitor) are touched only by renders, and renders run one at
  a time under this page's lock.
- ``generate_latest`` calls each registered collector's ``collect``: prometheus_client's own metrics take their
  locks; ``DbCollector`` and the ledger's collector hold families or dicts that a refresh replaces whole (never
  changes in place), and refreshes run on the loop before the thread starts, under the same lock; the loop-lag
  maximum is read and reset under a lock of its own (``monitor.looplag``).

Copying every result on the loop instead would cost the loop what the thread is there to save. The thread still
holds the GIL while it formats, but gives it up every few milliseconds (the interpreter's switch interval), so
the loop waits about that long at a time instead of the whole render, as long as no single C call is long: hence
the body in pieces (``dashboards.metrics.CHUNK_LINES``), which the route writes one by one. What no thread
avoids is a full garbage collection falling inside the render (see bench/README.md and
``negahban_gc_pause_seconds``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from monitor.clock import Clock

__all__ = ["MetricsPage"]


class MetricsPage:
    def __init__(self, registry: CollectorRegistry, clock: Clock, exposition: Any = None, hub: Any = None,
                 ttl_s: float = 2.0) -> None:
        self._registry, self._clock, self._exposition, self._hub = registry, clock, exposition, hub
        self.ttl_s = ttl_s
        self._cached: tuple[float, tuple[bytes, ...]] | None = None
        self._lock = asyncio.Lock()
        self.renders = 0

    def _fresh(self) -> tuple[bytes, ...] | None:
        if self._cached is not None and self._clock.monotonic() - self._cached[0] < self.ttl_s:
            return self._cached[1]
        return None

    async def chunks(self) -> tuple[bytes, ...]:
        """The exposition text in pieces (the route writes them one by one, so no 20 MB copy is made on the
        loop): the cached ones if younger than ``ttl_s``, else one fresh render."""
        body = self._fresh()
        if body is not None:
            return body
        async with self._lock:
            body = self._fresh()  # rendered by the scrape this one waited for
            if body is None:
                if self._hub is not None:
                    await self._hub.refresh()
                items = self._exposition.snapshot() if self._exposition is not None else None
                body = await asyncio.to_thread(self._render, items)
                self.renders += 1
                self._cached = (self._clock.monotonic(), body)
            return body

    async def body(self) -> bytes:
        """The exposition text in one piece (tests, the bench)."""
        return b"".join(await self.chunks())

    def _render(self, items) -> tuple[bytes, ...]:
        # In the worker thread (see the module docstring for what it may read).
        registry_text = generate_latest(self._registry)
        if items is None:
            return (registry_text,)
        return (*self._exposition.render_chunks(items), registry_text)
