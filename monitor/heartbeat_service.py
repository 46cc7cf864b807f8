"""Heartbeat monitors at the edges: ping tokens, receiving a ping, and the sweep that notices silence.

The decisions are ``monitor.heartbeat``'s; here they meet the database and the runner. A ping's times are
written to its ``heartbeats`` row before its result is evaluated, and the result goes through
``Runner.apply`` like a probe's, so the flip is stored with the state row and wakes the incident engine.

Tokens: 192 random bits (``secrets.token_urlsafe(24)``), shown once when issued, stored as SHA-256 only.
A lookup by digest that finds nothing (or a disabled monitor) is answered by the route exactly like one that
finds a monitor; ``receive`` returns whether it did only for the metrics and the logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.catalog import MonitorConfig, load_catalog
from monitor.clock import Clock
from monitor.evaluate import Memory
from monitor.heartbeat import Ping, PingState, on_ping, silence, worth_applying
from monitor.models import Heartbeat, Monitor
from monitor.runner import Runner
from monitor.work import WorkerFailures
from probes import PUSH_KINDS, ProbeResult

__all__ = ["HeartbeatService", "new_ping_token", "ping_digest", "issue_ping_token", "set_ping_digest",
           "state_of"]

log = logging.getLogger("negahban.heartbeat")
TOKEN_BYTES = 24  # 192 bits: unguessable, and 32 URL-safe characters in a cron line


def new_ping_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def ping_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def set_ping_digest(session: AsyncSession, monitor_id: int, digest: str, now: datetime) -> None:
    """Give the monitor this token digest (a new row, or a rotation that keeps the ping times)."""
    row = await session.get(Heartbeat, monitor_id)
    if row is None:
        session.add(Heartbeat(monitor_id=monitor_id, token_sha256=digest, token_issued_at=now))
    elif row.token_sha256 != digest:
        row.token_sha256, row.token_issued_at = digest, now
    await session.flush()


async def issue_ping_token(session: AsyncSession, monitor_id: int, now: datetime) -> str:
    """A new token for the monitor (the old one stops working); returned in clear, the only time it is seen."""
    token = new_ping_token()
    await set_ping_digest(session, monitor_id, ping_digest(token), now)
    return token


def state_of(row: Heartbeat) -> PingState:
    return PingState(row.last_ping_at, row.finished_at, row.started_at, row.last_signal, row.last_exit_code)


def _store_state(row: Heartbeat, state: PingState) -> None:
    row.last_ping_at, row.finished_at, row.started_at = state.last_ping_at, state.finished_at, state.started_at
    row.last_signal, row.last_exit_code = state.last_signal, state.last_exit_code


class HeartbeatService:
    """Receives pings and sweeps for silence. ``configs`` is the scheduler's catalog (a callable, so a reload
    is seen); ``heard_since`` is when the service started listening (see ``monitor.heartbeat.deadline``)."""

    def __init__(self, sessionmaker: async_sessionmaker, runner: Runner, clock: Clock,
                 configs: Callable[[], Mapping[int, MonitorConfig]], registry: CollectorRegistry | None = None,
                 failures: WorkerFailures | None = None) -> None:
        self._sm = sessionmaker
        self._runner = runner
        self._clock = clock
        self._configs = configs
        self._failures = failures or WorkerFailures()
        self._locks: dict[int, asyncio.Lock] = {}
        self.heard_since = clock.now()
        registry = registry if registry is not None else CollectorRegistry()
        self.pings = Counter("negahban_heartbeat_pings", "Pings received at /hb/, by signal (unknown: no "
                             "enabled heartbeat has the token)", ["signal"], registry=registry)
        self.run_seconds = Gauge("negahban_heartbeat_run_seconds", "How long the latest measured run of each "
                                 "heartbeat monitor took (from /start to its finish)",
                                 ["monitor", "service", "customer"], registry=registry)
        self.sweep_results = Counter("negahban_heartbeat_sweep_results", "Results the sweep gave silent heartbeat "
                            "monitors, by reason", ["reason"], registry=registry)

    def listening(self) -> None:
        """Called when the service starts answering: pings sent before could not be heard."""
        self.heard_since = self._clock.now()

    def _lock(self, monitor_id: int) -> asyncio.Lock:
        return self._locks.setdefault(monitor_id, asyncio.Lock())

    async def _config(self, monitor_id: int) -> MonitorConfig | None:
        cfg = self._configs().get(monitor_id)
        if cfg is None:  # added since the scheduler's last reload: load just this one
            cfg = (await load_catalog(self._sm, only=[monitor_id])).get(monitor_id)
        return cfg if cfg is not None and cfg.kind in PUSH_KINDS else None

    async def _monitor_of(self, token: str) -> int | None:
        stmt = (select(Heartbeat.monitor_id).join(Monitor, Monitor.id == Heartbeat.monitor_id)
                .where(Heartbeat.token_sha256 == ping_digest(token), Monitor.enabled.is_(True)))
        async with self._sm() as s:
            return (await s.execute(stmt)).scalar_one_or_none()

    async def receive(self, token: str, ping: Ping) -> bool:
        """Record and evaluate one ping; False when no enabled heartbeat monitor has ``token``."""
        monitor_id = await self._monitor_of(token)
        cfg = await self._config(monitor_id) if monitor_id is not None else None
        if cfg is None:
            self.pings.labels("unknown").inc()
            return False
        self.pings.labels(str(ping.signal)).inc()
        async with self._lock(cfg.id):
            async with self._sm.begin() as s:
                row = await s.get(Heartbeat, cfg.id)
                if row is None:  # removed since the lookup
                    return False
                state, result = on_ping(cfg.spec, state_of(row), ping)
                _store_state(row, state)
            if result is not None:
                await self._apply(cfg, result)
        log.info("heartbeat_ping monitor=%s signal=%s exit_code=%s", cfg.name, ping.signal, ping.exit_code)
        return True

    async def _apply(self, cfg: MonitorConfig, result: ProbeResult) -> None:
        await self._runner.apply(cfg, result)
        if "run" in result.phases:
            labels = cfg.labels
            self.run_seconds.labels(labels.get("monitor", cfg.name), labels.get("service", ""),
                                    labels.get("customer", "")).set(result.phases["run"])

    async def _rows(self) -> dict[int, PingState]:
        async with self._sm() as s:
            return {r.monitor_id: state_of(r) for r in (await s.execute(select(Heartbeat))).scalars()}

    async def sweep(self) -> int:
        """Give every silent heartbeat monitor its late or slow result; return how many were given."""
        configs = {mid: c for mid, c in self._configs().items() if c.kind in PUSH_KINDS}
        if not configs:
            return 0
        given = 0
        for mid, state in (await self._rows()).items():
            cfg = configs.get(mid)
            if cfg is None:
                continue
            try:
                given += await self._sweep_one(cfg, state)
            except Exception as exc:  # one monitor's failure must not stop the sweep of the others
                self._failures.record("heartbeat_sweep", cfg.name, exc, gave_up=False)
        return given

    async def _sweep_one(self, cfg: MonitorConfig, state: PingState) -> int:
        now = self._clock.now()
        result = silence(cfg.spec, state, now, self.heard_since)
        if result is None or not worth_applying(result, self._current(cfg.id)):
            return 0
        async with self._lock(cfg.id):
            # A ping may have arrived while the rows were read: judge the row as it is now.
            async with self._sm() as s:
                row = await s.get(Heartbeat, cfg.id)
            result = silence(cfg.spec, state_of(row), now, self.heard_since) if row is not None else None
            if result is None or not worth_applying(result, self._current(cfg.id)):
                return 0
            await self._apply(cfg, result)
        self.sweep_results.labels(result.reason).inc()
        return 1

    def _current(self, monitor_id: int):
        return self._runner.memories.get(monitor_id, Memory()).state
