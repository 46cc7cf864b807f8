"""The scheduler: wakes the runner for each monitor that is due.

Each monitor has a start phase derived from its id, so that load is spread evenly and the same monitor
starts at the same offset after every restart. The catalog is reloaded periodically, so monitors added,
changed, paused or removed take effect without a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry, Histogram
from sqlalchemy.ext.asyncio import async_sessionmaker

from monitor.catalog import MonitorConfig, load_catalog
from monitor.clock import Clock
from monitor.runner import Runner

__all__ = ["Scheduler", "phase_of"]

log = logging.getLogger("negahban.scheduler")

EPOCH = datetime(2020, 1, 1).astimezone()


def phase_of(monitor_id: int, interval_s: float) -> float:
    """A deterministic offset in [0, interval) for ``monitor_id``."""
    digest = hashlib.blake2b(str(monitor_id).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") % 1_000_000) / 1_000_000 * interval_s


class Scheduler:
    def __init__(self, sessionmaker: async_sessionmaker, runner: Runner, clock: Clock,
                 registry: CollectorRegistry, reload_every_s: float = 10.0) -> None:
        self._sm = sessionmaker
        self._runner = runner
        self._clock = clock
        self._reload_every_s = reload_every_s
        self._aps = AsyncIOScheduler(timezone="UTC")
        self.catalog: dict[int, MonitorConfig] = {}
        self.lateness = Histogram("negahban_schedule_lateness_seconds",
                                  "Actual minus planned start of a check",
                                  buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10), registry=registry)

    async def start(self) -> None:
        await self._runner.load_states()
        await self.reload()
        self._aps.add_job(self.reload, IntervalTrigger(seconds=self._reload_every_s), id="reload",
                          max_instances=1, coalesce=True)
        self._aps.start()

    async def shutdown(self) -> None:
        self._aps.shutdown(wait=False)

    async def reload(self) -> None:
        """Bring the jobs in line with the enabled monitors in the database."""
        fresh = await load_catalog(self._sm)
        for mid in set(self.catalog) - set(fresh):
            self._remove(mid)
        for mid, cfg in fresh.items():
            old = self.catalog.get(mid)
            if old is None or not old.same_schedule(cfg):
                self._add(cfg)
            elif old != cfg:
                self._aps.modify_job(f"m{mid}", args=[mid])
        self.catalog = fresh

    def _add(self, cfg: MonitorConfig) -> None:
        phase = phase_of(cfg.id, cfg.interval_s)
        trigger = IntervalTrigger(seconds=cfg.interval_s, start_date=EPOCH + timedelta(seconds=phase))
        self._aps.add_job(self._run, trigger, args=[cfg.id], id=f"m{cfg.id}", replace_existing=True,
                          max_instances=1, coalesce=True, misfire_grace_time=max(1, int(cfg.interval_s)),
                          next_run_time=self._clock.now() + timedelta(seconds=phase % min(cfg.interval_s, 5)))

    def _remove(self, mid: int) -> None:
        for job_id in (f"m{mid}", f"r{mid}"):
            if self._aps.get_job(job_id):
                self._aps.remove_job(job_id)
        self._runner.forget(mid)

    async def _run(self, mid: int, planned: datetime | None = None) -> None:
        cfg = self.catalog.get(mid)
        if cfg is None:
            return
        if planned is not None:
            self.lateness.observe(max(0.0, (self._clock.now() - planned).total_seconds()))
        # Shielded: shutting the scheduler down cancels its jobs, but a check in flight finishes (within its
        # timeout) and is stored; the service drains the runner before closing the database.
        ev = await asyncio.shield(self._runner.check(cfg))
        if ev is not None and ev.retry_soon:
            when = self._clock.now() + timedelta(seconds=cfg.policy.retry_interval_s)
            self._aps.add_job(self._run, "date", run_date=when, args=[mid, when], id=f"r{mid}",
                              replace_existing=True)
