"""The runner: one check of one monitor, from probe to evaluated state, stored result and flip.

Before evaluating, the runner gathers the facts outside the check (``Context``): is the monitor inside a
maintenance window, are we blind (the self-check canaries fail), what do its parents say. The state of
every monitor lives in memory (``memories``) so that parents are judged without a query. A flip is written
before ``check`` returns (the flip, the state row and the result in one transaction); the rest is batched by
the ``ResultStore`` and written by ``flush`` (see ``monitor.store``). Listeners registered with ``on_flip``
are woken after the commit so that incidents react in well under a second. Probers marked ``uses_previous``
get the monitor's previous result (from ``latest``, in memory: after a restart the first check is a new
baseline); a result reporting an event (``details["event"]``, e.g. an SNMP reboot) is logged and kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from monitor.catalog import MonitorConfig
from monitor.clock import Clock
from monitor.evaluate import Context, Evaluation, Memory, ParentStatus, classify, evaluate
from monitor.locations import LocationBoard, voted_policy, window_s
from monitor.maintenance import Calendar
from monitor.models import CENTRAL, MonitorState, State
from monitor.quorum import Vote
from monitor.selfcheck import SelfCheck
from monitor.store import ResultStore, StaleFlip
from monitor.topology import Topology, parent_status
from probes import PROBERS, Outcome, ProbeContext, ProbeResult

__all__ = ["Runner", "Latest", "located_row", "NAMED_STATES"]

log = logging.getLogger("negahban.runner")

# The failing states of a voted monitor whose incident names the locations that see the failure.
NAMED_STATES = frozenset({State.DOWN, State.DEGRADED})


@dataclass(slots=True)
class Latest:
    """The newest check of a monitor, kept in memory for the metrics collector and the live screens."""

    config: MonitorConfig
    result: ProbeResult
    state: State


def located_row(monitor_id: int, location: str, at: datetime, result: ProbeResult, late: bool,
                batch_id: int | None = None) -> dict:
    """A ``location_results`` row."""
    return {"location": location, "monitor_id": monitor_id, "at": at, "outcome": str(result.outcome),
            "reason": result.reason[:40], "message": result.message[:4000], "latency_s": result.latency_s,
            "late": late, "batch_id": batch_id}


class Runner:
    def __init__(self, sessionmaker: async_sessionmaker, ctx: ProbeContext, clock: Clock,
                 store: ResultStore | None = None, selfcheck: SelfCheck | None = None) -> None:
        self._sm = sessionmaker
        self._ctx = ctx
        self._clock = clock
        self.store = store or ResultStore(sessionmaker)
        self.selfcheck = selfcheck or SelfCheck()
        self.board = LocationBoard(lambda: self.selfcheck.blind)
        self.memories: dict[int, Memory] = {}
        self.latest: dict[int, Latest] = {}
        self.topology = Topology()
        self.calendar = Calendar(())
        self._in_flight: set[int] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._listeners: list[Callable[[], None]] = []
        self.overlaps_skipped = 0
        # Monitors whose state here is second-hand (several nodes: taken over from a node that stopped, or
        # another node's and that node is gone) until this node checks them: as a parent, one is a suspect,
        # not a witness, so its children wait rather than confirm an outage of their own.
        self.unverified: set[int] = set()
        # Voted monitors: the locations already written as failing (``failing_locations``) for the failing
        # state that began at ``since``, so that each location is written once per failure, not per check.
        self.named: dict[int, tuple[datetime, frozenset[str]]] = {}

    def on_flip(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    async def load_states(self, only: Iterable[int] | None = None) -> None:
        """Read the monitors' states (of ``only``: those this node just took over from another)."""
        stmt = select(MonitorState)
        if only is not None:
            ids = list(only)
            if not ids:
                return
            stmt = stmt.where(MonitorState.monitor_id.in_(ids))
        async with self._sm() as session:
            rows = (await session.execute(stmt)).scalars().all()
        fresh = {r.monitor_id: Memory.from_row(r.state, r.since, r.last_check_at, r.data) for r in rows}
        seqs = {r.monitor_id: r.flip_seq or 0 for r in rows}
        if only is None:
            self.memories, self.store.flip_seq = fresh, seqs
            return
        for mid in ids:  # a monitor without a state row here has never flipped anywhere
            self.memories.pop(mid, None)
            self.store.flip_seq.pop(mid, None)
        self.memories.update(fresh)
        self.store.flip_seq.update(seqs)

    def forget(self, monitor_id: int) -> None:
        self.memories.pop(monitor_id, None)
        self.latest.pop(monitor_id, None)
        self.store.forget(monitor_id)
        self.board.forget(monitor_id)
        self.named.pop(monitor_id, None)

    async def flush(self) -> int:
        return await self.store.flush()

    async def drain(self, bound_s: float = 130.0) -> None:
        """Wait for in-flight checks to finish (each is bounded by its own timeout)."""
        if self._in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), bound_s)

    async def probe(self, cfg: MonitorConfig) -> ProbeResult:
        """Run the probe, bounded by its timeout; a probe bug becomes a DOWN result, not a crash."""
        start = time.perf_counter()
        try:
            async with asyncio.timeout(cfg.spec.timeout_s + 1.0):
                return await self._call(cfg)
        except TimeoutError:
            return ProbeResult(Outcome.DOWN, "timeout", "probe exceeded its timeout",
                               time.perf_counter() - start)
        except Exception as exc:  # a probe must never take the runner down
            log.exception("probe_failed monitor=%s", cfg.name)
            return ProbeResult(Outcome.DOWN, "probe_error", f"{type(exc).__name__}: {exc}",
                               time.perf_counter() - start)

    def _call(self, cfg: MonitorConfig):
        """Call the prober; one that compares with the last sample (``uses_previous``, e.g. SNMP rates and
        reboots) gets this monitor's previous result. The probe stays stateless; memory is the runner's."""
        prober = PROBERS[cfg.kind]
        if getattr(prober, "uses_previous", False):
            latest = self.latest.get(cfg.id)
            return prober(cfg.spec, self._ctx, previous=latest.result if latest else None)
        return prober(cfg.spec, self._ctx)

    def context_for(self, cfg: MonitorConfig, now: datetime) -> Context:
        keys = self.topology.scope_keys.get(cfg.id) or [("monitor", cfg.id)]
        maintenance = bool(self.calendar) and self.calendar.active(keys, now)
        levels = self.topology.parents.get(cfg.id, ())
        parent, root = parent_status(levels, self.memories)
        if parent is ParentStatus.OK and self.unverified and levels:
            doubt = next((m for m in levels[0] if m in self.unverified), None)
            if doubt is not None:
                parent, root = ParentStatus.SUSPECT, doubt
        return Context(maintenance=maintenance, blind=self.selfcheck.blind, parent=parent, root_monitor_id=root)

    async def check(self, cfg: MonitorConfig) -> Evaluation | None:
        """Check ``cfg`` once. Return None if a check of this monitor is already running."""
        if cfg.id in self._in_flight:
            self.overlaps_skipped += 1
            return None
        self._in_flight.add(cfg.id)
        self._idle.clear()
        try:
            result = await self.probe(cfg)
            self.unverified.discard(cfg.id)
            if cfg.voted:
                ev = await self.apply_located(cfg, CENTRAL, result, self._clock.now())
            else:
                ev = await self.apply(cfg, result)
            if cfg.policy.role == "canary":
                await self._selfcheck_after(cfg.id, result)
            return ev
        finally:
            self._in_flight.discard(cfg.id)
            if not self._in_flight:
                self._idle.set()

    async def apply(self, cfg: MonitorConfig, result: ProbeResult) -> Evaluation:
        """Evaluate a result and record it (the flip durably); memory is rolled back if the flip fails."""
        now = self._clock.now()
        prev = self.memories.get(cfg.id, Memory())
        ev = evaluate(prev, result, cfg.policy, now, self.context_for(cfg, now), cfg.thresholds)
        return await self._keep(cfg, prev, result, ev, now)

    async def _keep(self, cfg: MonitorConfig, prev: Memory, result: ProbeResult, ev: Evaluation, now: datetime,
                    rollup: bool = True, failing: list[dict] = ()) -> Evaluation:
        self.memories[cfg.id] = ev.memory
        self.latest[cfg.id] = Latest(cfg, result, ev.state)
        try:
            await self.store.record(cfg.id, now, result, ev, rollup=rollup, failing=failing)
        except StaleFlip:
            # Another node flipped it meanwhile (it held the monitor, or still thought so): what it wrote is
            # the truth now; the next check is judged from it.
            log.info("stale_flip monitor=%s new=%s: reloading its state", cfg.name, ev.flip and ev.flip.new_state)
            await self.load_states(only=[cfg.id])
            raise
        except Exception:
            if ev.flip is not None:
                self.memories[cfg.id] = prev  # the flip was not stored: the next check must make it again
            raise
        if result.details.get("event"):
            log.info("event monitor=%s event=%s message=%s", cfg.name, result.details["event"], result.message)
        if ev.flip:
            log.info("flip monitor=%s old=%s new=%s reason=%s root=%s", cfg.name, ev.flip.old_state,
                     ev.flip.new_state, ev.flip.reason, ev.flip.root_monitor_id)
            self._wake()
        return ev

    async def apply_located(self, cfg: MonitorConfig, location: str, result: ProbeResult, at: datetime,
                            stored: bool = False, count: bool = True) -> Evaluation | None:
        """Take a voted monitor's check from ``location`` made at ``at``: count it in uptime, keep it
        (``stored``: the caller already wrote its ``location_results`` row; ``count=False``: the node that took
        it counted it), then, unless it is late, vote and evaluate the vote. Returns None when nothing was evaluated (late, older than what is known, or
        no location can see)."""
        now = self._clock.now()
        prev = self.memories.get(cfg.id, Memory())
        observed = classify(result, cfg.thresholds, prev.state)
        late = (now - at).total_seconds() > window_s(cfg)
        if count:
            self.store.add_check(cfg.id, at, observed, result.latency_s)
            self.board.count(location, at, now)
        if not stored:
            self.store.add_located(located_row(cfg.id, location, at, result, late))
        if late or not self.board.observe(cfg.id, location, observed, result, at):
            return None
        v = self.board.vote_for(cfg, now)
        if not v.observed:
            return None  # every location blind or silent: the state is held
        ctx = replace(self.context_for(cfg, now), blind=False)  # blindness was the vote's to weigh
        ev = evaluate(prev, v.result(), voted_policy(cfg.policy), now, ctx)
        failing = self._failing_rows(cfg.id, ev, v, now)
        ev = await self._keep(cfg, prev, v.result(), ev, now, rollup=False, failing=failing)
        if failing:
            since, known = self.named.get(cfg.id, (None, frozenset()))
            if since != ev.memory.since:
                known = frozenset()
            self.named[cfg.id] = (ev.memory.since, known | {r["location"] for r in failing})
        return ev

    def _failing_rows(self, monitor_id: int, ev: Evaluation, v: Vote, now: datetime) -> list[dict]:
        """``failing_locations`` rows for the voters failing in this vote that were not yet written for the
        monitor's current failing state: with its flip, the locations that confirmed it; later, each
        location that joins (the third of three, after a quorum of two), so its incident can name it."""
        since = ev.memory.since
        if ev.state not in NAMED_STATES or since is None or not v.failing:
            return []
        named_since, known = self.named.get(monitor_id, (None, frozenset()))
        if named_since != since:
            known = frozenset()
        seen = self.board.seen.get(monitor_id, {})
        return [{"monitor_id": monitor_id, "since": since, "location": loc, "state": ev.state.value, "at": now,
                 "confirmed": ev.flip is not None, "message": seen[loc].message[:500] if loc in seen else ""}
                for loc in v.failing if loc not in known]

    async def location_canary(self, location: str, index: int, result: ProbeResult) -> None:
        """Take one canary check of an agent's location; a change of its blindness is evaluated on the
        location's internal monitor (one flip, so one internal alert, per location)."""
        if self.board.canary(location, index, result):
            alert = self.board.alerts.get(location)
            if alert is not None:
                await self.apply(alert, self.board.canaries[location].result())

    async def _selfcheck_after(self, canary_id: int, result: ProbeResult) -> None:
        self.selfcheck.observe(canary_id, result)
        internal = self.selfcheck.config
        if internal is None:
            return
        await self.apply(internal, self.selfcheck.result())

    def _wake(self) -> None:
        for listener in self._listeners:
            listener()
