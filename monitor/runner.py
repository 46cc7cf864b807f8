"""The runner: one check of one monitor, from probe to stored result, state and flip.

The probe's answer is evaluated by the pure ``evaluate``; the result, the new state and any flip are written
in one transaction. Listeners registered with ``on_flip`` are woken after the commit so that the next stage
(incidents) reacts in well under a second, while its own database claim keeps it correct.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from monitor.catalog import MonitorConfig
from monitor.clock import Clock
from monitor.evaluate import EvalState, Evaluation, evaluate
from monitor.models import Flip, MonitorState, ProbeResultRow, State
from probes import PROBERS, Outcome, ProbeContext, ProbeResult

__all__ = ["Runner", "Latest"]

log = logging.getLogger("negahban.runner")


@dataclass(slots=True)
class Latest:
    """The newest check of a monitor, kept in memory for the metrics collector and the live screens."""

    config: MonitorConfig
    result: ProbeResult
    state: State


def _to_row(st: EvalState) -> dict:
    return {"state": st.state.value, "since": st.since,
            "data": {"candidate": st.candidate.value if st.candidate else None, "streak": st.streak,
                     "extra": st.extra}}


def _from_row(row: MonitorState) -> EvalState:
    data = row.data or {}
    cand = data.get("candidate")
    return EvalState(State(row.state), row.since, State(cand) if cand else None, int(data.get("streak", 0)),
                     dict(data.get("extra") or {}))


class Runner:
    def __init__(self, sessionmaker: async_sessionmaker, ctx: ProbeContext, clock: Clock) -> None:
        self._sm = sessionmaker
        self._ctx = ctx
        self._clock = clock
        self._states: dict[int, EvalState] = {}
        self._in_flight: set[int] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.latest: dict[int, Latest] = {}
        self._listeners: list[Callable[[], None]] = []
        self.overlaps_skipped = 0

    def on_flip(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    async def load_states(self) -> None:
        async with self._sm() as session:
            rows = (await session.execute(select(MonitorState))).scalars().all()
        self._states = {r.monitor_id: _from_row(r) for r in rows}

    def forget(self, monitor_id: int) -> None:
        self._states.pop(monitor_id, None)
        self.latest.pop(monitor_id, None)

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
                return await PROBERS[cfg.kind](cfg.spec, self._ctx)
        except TimeoutError:
            return ProbeResult(Outcome.DOWN, "timeout", "probe exceeded its timeout",
                               time.perf_counter() - start)
        except Exception as exc:  # a probe must never take the runner down
            log.exception("probe_failed monitor=%s", cfg.name)
            return ProbeResult(Outcome.DOWN, "probe_error", f"{type(exc).__name__}: {exc}",
                               time.perf_counter() - start)

    async def check(self, cfg: MonitorConfig) -> Evaluation | None:
        """Check ``cfg`` once. Return None if a check of this monitor is already running."""
        if cfg.id in self._in_flight:
            self.overlaps_skipped += 1
            return None
        self._in_flight.add(cfg.id)
        self._idle.clear()
        try:
            result = await self.probe(cfg)
            now = self._clock.now()
            ev = evaluate(self._states.get(cfg.id, EvalState()), result, cfg.policy, now)
            await self._store(cfg, result, ev, now)
            self._states[cfg.id] = ev.state
            self.latest[cfg.id] = Latest(cfg, result, ev.state.state)
            if ev.flip:
                log.info("flip monitor=%s old=%s new=%s reason=%s", cfg.name, ev.flip.old_state,
                         ev.flip.new_state, ev.flip.reason)
                for listener in self._listeners:
                    listener()
            return ev
        finally:
            self._in_flight.discard(cfg.id)
            if not self._in_flight:
                self._idle.set()

    async def _store(self, cfg: MonitorConfig, result: ProbeResult, ev: Evaluation, now) -> None:
        async with self._sm.begin() as session:
            session.add(ProbeResultRow(monitor_id=cfg.id, at=now, outcome=result.outcome.value,
                                       reason=result.reason, message=result.message[:2000],
                                       latency_s=result.latency_s, details=result.details))
            row = await session.get(MonitorState, cfg.id)
            if row is None:
                row = MonitorState(monitor_id=cfg.id)
                session.add(row)
            for key, value in _to_row(ev.state).items():
                setattr(row, key, value)
            row.last_check_at = now
            if ev.flip:
                session.add(Flip(monitor_id=cfg.id, at=now, old_state=ev.flip.old_state.value,
                                 new_state=ev.flip.new_state.value, reason=ev.flip.reason,
                                 message=ev.flip.message[:2000]))
