"""The scheduler: a due-queue fed by a few APScheduler ticks (chosen by measurement, see bench/README.md).

One APScheduler job per monitor costs APScheduler's full bookkeeping (trigger arithmetic, job store,
executor hand-off, events) on every run; at 10,000 monitors that is most of the service's CPU. Instead a
single heap holds each monitor's next planned start. An APScheduler interval job (the ``checks`` loop, every ``tick_s``)
takes the entries due before the next tick and arms one ``loop.call_later`` each, so a check starts on time
(lateness is the event loop's, not the tick's) and the per-run cost is a heap pop and a timer.

* Phase: a monitor's planned starts are ``phase + k * interval`` on the Unix time line, the phase derived
  from its id, so load is even and the same after every restart.
* Never two runs of one monitor at once: a monitor is re-queued only when its run ends; a start that finds
  it still running is skipped and counted (``negahban_schedule_overlaps_skipped_total``).
* After a failure (``Evaluation.retry_soon``) the next check comes at the policy's retry interval.
* Lateness (actual minus planned start) goes to ``negahban_schedule_lateness_seconds``; planned starts that
  passed unrun (a run longer than its interval, a stalled loop) to ``negahban_schedule_missed_total``.
* Monitors added, changed, paused or removed: ``reload`` compares a cheap fingerprint every
  ``reload_every_s`` (and on demand, e.g. SIGHUP) and re-reads the catalog only when it changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
import math
from collections.abc import Callable, Sequence

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from monitor.catalog import MonitorConfig, fingerprint, load_catalog, load_links
from monitor.clock import Clock
from monitor.leases import Cluster
from monitor.maintenance import load_calendar
from monitor.models import CENTRAL, Location, Monitor
from monitor.policy import load_policy
from monitor.runner import Runner
from monitor.selfcheck import LOCATION_PREFIX, SELF_CHECK_NAME, location_alert_name
from monitor.store import StaleFlip
from monitor.topology import build_topology
from monitor.work import Loop, WorkerFailures
from probes import PUSH_KINDS
from probes.base import SpecBase

__all__ = ["Scheduler", "DueQueue", "phase_of", "next_start"]

log = logging.getLogger("negahban.scheduler")


def phase_of(monitor_id: int, interval_s: float) -> float:
    """A deterministic offset in [0, interval) for ``monitor_id``."""
    digest = hashlib.blake2b(str(monitor_id).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") % 1_000_000) / 1_000_000 * interval_s


def next_start(monitor_id: int, interval_s: float, after: float) -> float:
    """The first planned start strictly after ``after`` (Unix seconds)."""
    phase = phase_of(monitor_id, interval_s)
    k = math.floor((after - phase) / interval_s) + 1
    return phase + k * interval_s


class DueQueue:
    """A heap of (planned start, monitor id); re-queuing a monitor supersedes its earlier entry."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int]] = []
        self._gen: dict[int, int] = {}

    def put(self, monitor_id: int, at: float) -> None:
        gen = self._gen.get(monitor_id, 0) + 1
        self._gen[monitor_id] = gen
        heapq.heappush(self._heap, (at, monitor_id, gen))

    def discard(self, monitor_id: int) -> None:
        self._gen[monitor_id] = self._gen.get(monitor_id, 0) + 1

    def pop_until(self, until: float) -> list[tuple[float, int, int]]:
        """Entries planned up to ``until`` as (at, monitor id, generation), superseded ones left out."""
        out = []
        while self._heap and self._heap[0][0] <= until:
            at, mid, gen = heapq.heappop(self._heap)
            if self._gen.get(mid) == gen:
                out.append((at, mid, gen))
        return out

    def current(self, monitor_id: int, gen: int) -> bool:
        """False when the monitor was re-queued or removed since this entry was taken."""
        return self._gen.get(monitor_id) == gen

    def __len__(self) -> int:
        return len(self._heap)


class Scheduler:
    def __init__(self, sessionmaker: async_sessionmaker, runner: Runner, clock: Clock,
                 registry: CollectorRegistry, reload_every_s: float = 10.0, tick_s: float = 1.0,
                 flush_every_s: float = 2.0, max_concurrent: int = 2000,
                 failures: WorkerFailures | None = None) -> None:
        self._sm = sessionmaker
        self.failures = failures or WorkerFailures()
        self._runner = runner
        self._clock = clock
        self._reload_every_s = reload_every_s
        self._tick_s = tick_s
        self._flush_every_s = flush_every_s
        self._limit = asyncio.Semaphore(max_concurrent)
        self.aps = AsyncIOScheduler(timezone="UTC")
        self.catalog: dict[int, MonitorConfig] = {}
        self.queue = DueQueue()
        self._running: set[int] = set()
        self._tasks: set[asyncio.Task] = set()
        self._fingerprint: tuple | None = None
        self._reloaded: list[Callable[[], object]] = []
        self._metrics(registry)
        runner.board.on_recheck(self.recheck)
        self.cluster: Cluster | None = None  # several nodes: only the monitors of the shards held here

    def _metrics(self, registry: CollectorRegistry) -> None:
        self.lateness = Histogram("negahban_schedule_lateness_seconds", "Actual minus planned start of a check",
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
                                  registry=registry)
        self.missed = Counter("negahban_schedule_missed", "Planned starts that passed without a run",
                              registry=registry)
        self.overlaps = Counter("negahban_schedule_overlaps_skipped",
                                "Starts skipped because the monitor's previous run was still going",
                                registry=registry)
        self.checks = Counter("negahban_checks", "Checks run by the scheduler, by observed outcome",
                              ["outcome"], registry=registry)
        self._checks_by = {k: self.checks.labels(k) for k in ("up", "degraded", "down", "skipped")}
        self.scheduled = Gauge("negahban_monitors_scheduled", "Monitors in the schedule", registry=registry)

    # --- life cycle -------------------------------------------------------------------------------------

    def loops(self) -> list[Loop]:
        """The scheduler's own jobs: arming the checks, reloading the catalog, flushing the results (and,
        with several nodes, renewing this node's leases)."""
        out = [Loop("checks", self.tick, every_s=self._tick_s),
               Loop("catalog_reload", self.reload, every_s=self._reload_every_s),
               Loop("result_flush", self._flush, every_s=self._flush_every_s)]
        if self.cluster is not None:
            out.append(Loop("shard_leases", self.leases, every_s=self.cluster.lease_s / 3))
        return out

    def on_reload(self, listener: Callable[[], object]) -> None:
        """Call ``listener()`` after each reload that re-read the catalog (the service freezes the new
        long-lived objects then, see ``monitor.looplag.freeze_long_lived``)."""
        self._reloaded.append(listener)

    def mine(self, monitor_id: int) -> bool:
        return self.cluster is None or self.cluster.owns(monitor_id)

    async def leases(self) -> None:
        """Renew this node's leases; take up the monitors of shards gained (their states as the last holder
        left them), drop those of shards lost; refresh the states of other nodes' monitors that are parents
        of this node's (dependencies are judged from memory)."""
        cluster = self.cluster
        changes = await cluster.heartbeat()
        if changes.lost:
            for mid in [m for m in self.catalog if cluster.shard_of(m) in changes.lost]:
                self.queue.discard(mid)
                self._runner.memories.pop(mid, None)
                # Its series move to the new holder's /metrics and NOC feed; what is buffered is still flushed.
                self._runner.latest.pop(mid, None)
        parents = self._parents()
        if changes.gained:
            gained = [m for m in self.catalog if cluster.shard_of(m) in changes.gained]
            await self._runner.load_states(only=gained)
            self._runner.unverified.update(gained)
            now = self._clock.now().timestamp()
            for mid in gained:
                cfg = self.catalog[mid]
                if cfg.kind not in PUSH_KINDS and CENTRAL in cfg.assigned and mid not in self._running:
                    mem = self._runner.memories.get(mid)
                    # A parent, or a confirmation the last holder had under way, is checked now (as its retry
                    # would have been); the rest at their planned starts.
                    soon = mid in parents or (mem is not None and mem.failing)
                    self.queue.put(mid, now if soon else next_start(mid, cfg.interval_s, now))
        await self._foreign_parents(parents)

    def _parents(self) -> set[int]:
        return {p for mid, levels in self._runner.topology.parents.items() if self.mine(mid)
                for level in levels for p in level}

    async def _foreign_parents(self, parents: set[int]) -> None:
        """Parents of this node's monitors held by other nodes: their states as last written; one whose
        holder's lease has lapsed (the node is gone) is unverified until a node checks it again."""
        foreign = [p for p in parents if not self.mine(p)]
        if not foreign:
            return
        await self._runner.load_states(only=foreign)
        live = self.cluster.live_shards
        for p in foreign:
            if self.cluster.shard_of(p) in live:
                self._runner.unverified.discard(p)
            else:
                self._runner.unverified.add(p)

    async def start(self, loops: Sequence[Loop] | None = None) -> None:
        """Load the states and the catalog, then run ``loops`` as jobs (by default the scheduler's own; the
        service passes every APScheduler loop of its registry, these and the housekeeping jobs)."""
        await self._runner.load_states()
        await self.reload(force=True)
        if self.cluster is not None:
            await self.cluster.start()
            await self.leases()
        for loop in self.loops() if loops is None else loops:
            loop.schedule(self.aps)
        self.aps.start()
        await self.tick()

    async def shutdown(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=False)
        self.queue = DueQueue()  # armed timers find their entries gone and do nothing
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=130)
        await self._flush()

    async def _flush(self) -> None:
        try:
            await self._runner.flush()
        except Exception:
            log.exception("flush_failed buffered=%s", self._runner.store.buffered())

    # --- the catalog --------------------------------------------------------------------------------------

    async def reload(self, force: bool = False) -> bool:
        """Bring the schedule in line with the database; returns True when something was re-read."""
        fp = await fingerprint(self._sm)
        if not force and fp == self._fingerprint:
            return False
        fresh = await load_catalog(self._sm, failures=self.failures)
        servers, devices = await load_links(self._sm)
        self._runner.topology = build_topology((c.node for c in fresh.values()), servers, devices)
        self._runner.calendar = await load_calendar(self._sm)
        await self._set_selfcheck(fresh)
        await self._set_locations()
        now = self._clock.now().timestamp()
        for mid in set(self.catalog) - set(fresh):
            self.queue.discard(mid)
            self._runner.forget(mid)
        for mid, cfg in fresh.items():
            old = self.catalog.get(mid)
            if cfg.kind in PUSH_KINDS or CENTRAL not in cfg.assigned or not self.mine(mid):
                self.queue.discard(mid)
                continue  # pushed by the target (a heartbeat), checked by agents only, or another node's
            replan = (old is None or not old.same_schedule(cfg) or old.kind in PUSH_KINDS
                      or CENTRAL not in old.assigned)
            if replan and mid not in self._running:
                self.queue.put(mid, next_start(mid, cfg.interval_s, now))
        self.catalog = fresh
        self._fingerprint = fp
        self.scheduled.set(len(fresh))
        log.info("catalog_loaded monitors=%s", len(fresh))
        for listener in self._reloaded:
            listener()
        return True

    async def _set_selfcheck(self, fresh: dict[int, MonitorConfig]) -> None:
        canaries = {mid for mid, c in fresh.items() if c.policy.role == "canary"}
        async with self._sm() as session:
            row = (await session.execute(select(Monitor).where(Monitor.name == SELF_CHECK_NAME))).scalar()
        config = None
        if row is not None and canaries:
            config = MonitorConfig(row.id, row.name, "selfcheck", SpecBase(target="canaries"), row.interval_s,
                                   load_policy(row.policy), {"monitor": row.name, "kind": "selfcheck"})
        self._runner.selfcheck.set_canaries(canaries, config)

    async def _set_locations(self) -> None:
        """Each agent location's canaries and its internal "blind" monitor, for the location board."""
        async with self._sm() as session:
            locations = (await session.execute(select(Location.name, Location.canaries))).all()
            alerts = {r.name: r for r in (await session.execute(
                select(Monitor).where(Monitor.name.like(LOCATION_PREFIX + "%")))).scalars()}
        board = self._runner.board
        for name, canaries in locations:
            board.set_canaries(name, len(canaries or []))
            row = alerts.get(location_alert_name(name))
            if row is not None:
                board.alerts[name] = MonitorConfig(row.id, row.name, "selfcheck", SpecBase(target=row.target),
                                                   row.interval_s, load_policy(row.policy),
                                                   {"monitor": row.name, "kind": "selfcheck"})

    def recheck(self, monitor_id: int) -> None:
        """Check ``monitor_id`` again now (accelerated confirmation asked by the location vote)."""
        cfg = self.catalog.get(monitor_id)
        if cfg is not None and monitor_id not in self._running and CENTRAL in cfg.assigned and self.mine(monitor_id):
            self.queue.put(monitor_id, self._clock.now().timestamp())

    # --- running ------------------------------------------------------------------------------------------

    async def tick(self) -> None:
        """Arm a timer for every start planned before the next tick."""
        loop = asyncio.get_running_loop()
        # One reading of both clocks: timers are armed against it, so the time spent arming a thousand of
        # them does not make the last ones late. The horizon covers two ticks, so a late tick loses nothing.
        now, base = self._clock.now().timestamp(), loop.time()
        for at, mid, gen in self.queue.pop_until(now + 2 * self._tick_s):
            if at <= now:
                self._launch(mid, at, gen)
            else:
                loop.call_at(base + (at - now), self._launch, mid, at, gen)

    def dispatch_due(self) -> int:
        """Start every monitor whose planned start has come (tests drive this with a manual clock)."""
        due = self.queue.pop_until(self._clock.now().timestamp())
        for at, mid, gen in due:
            self._launch(mid, at, gen)
        return len(due)

    async def wait_idle(self, bound_s: float = 30.0) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=bound_s)

    def _launch(self, mid: int, planned: float, gen: int) -> None:
        cfg = self.catalog.get(mid)
        if cfg is None or not self.queue.current(mid, gen):
            return  # removed, or re-planned by a reload since this timer was armed
        if not self.mine(mid):
            return  # its shard's lease is gone (or could not be renewed in time): another node checks it
        if mid in self._running:  # cannot happen through the queue; kept as a guard and a measure
            self.overlaps.inc()
            return
        self._running.add(mid)
        task = asyncio.create_task(self._run(cfg, planned))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, cfg: MonitorConfig, planned: float) -> None:
        retry = False
        started = self._clock.now().timestamp()
        try:
            async with self._limit:
                started = self._clock.now().timestamp()
                self.lateness.observe(max(0.0, started - planned))
                # Shielded: shutting down cancels the scheduler, but a check in flight finishes (within its
                # timeout) and is stored; the service drains the runner before closing the database.
                ev = await asyncio.shield(self._runner.check(cfg))
                retry = bool(ev and ev.retry_soon)
                self._checks_by[ev.observed if ev else "skipped"].inc()
        except StaleFlip:
            pass  # another node flipped it meanwhile; the runner reloaded its state
        except Exception as exc:  # e.g. its flip cannot be written; the next check of it tries again
            self.failures.record("checks", f"monitor:{cfg.id}", exc, gave_up=False)
        finally:
            self._running.discard(cfg.id)
            self._requeue(cfg, planned, retry, started)

    def _requeue(self, cfg: MonitorConfig, planned: float, retry: bool, started: float | None = None) -> None:
        current = self.catalog.get(cfg.id)
        if current is None or not self.mine(cfg.id):
            return  # removed or paused while it ran, or no longer this node's
        now = self._clock.now().timestamp()
        if retry:
            # The retry interval runs from the failing check's start, as Nagios counts it: a check that
            # timed out does not push its confirmation a whole timeout later (never before "now", though).
            begun = now if started is None else started
            self.queue.put(cfg.id, max(now, begun + current.policy.retry_interval_s))
            return
        # After the planned start even if the timer fired a hair early (the loop's clock is not the wall's).
        nxt = next_start(cfg.id, current.interval_s, max(now, planned))
        skipped = int((nxt - planned) / current.interval_s + 1e-9) - 1
        if skipped > 0 and current.interval_s == cfg.interval_s:
            self.missed.inc(skipped)
        self.queue.put(cfg.id, nxt)
