"""Several engine nodes on one PostgreSQL: who checks which monitors, and jobs that must run once.

PostgreSQL is the coordinator; there is no consensus of our own.

* **Shards.** Monitor ``m`` belongs to shard ``m % shards``. Each shard has one row in ``shard_leases``; the node
  that holds it checks the shard's monitors until ``expires_at`` and renews it on every heartbeat. A node that
  stops renewing (killed, frozen, cut off from the database) loses its shards when their leases expire, and the
  others claim them (``FOR UPDATE SKIP LOCKED``: two nodes never wait on, or both take, one row). Every change of
  holder adds one to the lease's ``generation``; a claim from a node that had stopped renewing is a takeover.
* **Balance.** Each node aims at ``ceil(shards / live nodes)`` (live: a heartbeat within one lease); a node
  over its share gives the extra back, a node under it claims free or expired ones, so a node that joins gets
  work within a heartbeat or two and a node that leaves has its work taken within a lease and a heartbeat.
* **Safety.** A node checks a monitor only while its lease is valid by its own clock (``owns``): it stops
  before the lease could have been given to another, even when it cannot reach the database to hear so. What
  a node in flight at that moment still writes is fenced by the per-monitor flip sequence (``monitor.store``).
* **Jobs that must run once** (retention, rollups, heartbeat sweeps, escalation, Alertmanager
  reconciliation): ``exclusive`` runs a pass only while holding a PostgreSQL advisory lock named after it.

SQLite is the single-node embedded default: no leases, every monitor is this node's.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import or_, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from monitor.clock import Clock
from monitor.models import EngineNode, ShardLease

__all__ = ["Cluster", "Changes", "exclusive", "DEFAULT_SHARDS", "SINGLETONS"]

log = logging.getLogger("negahban.leases")
DEFAULT_SHARDS = 64
# The scheduled jobs that must run on one node at a time. (The incident engine, the dispatcher, escalation and
# Alertmanager reconciliation claim their rows one by one, so every node may run them.)
SINGLETONS = frozenset({"rollups_hourly", "rollups_daily", "retention", "heartbeat_sweep"})


@dataclass(frozen=True, slots=True)
class Changes:
    gained: frozenset[int]
    lost: frozenset[int]
    takeovers: int = 0


class Cluster:
    def __init__(self, sessionmaker: async_sessionmaker, node: str, clock: Clock, *, shards: int = DEFAULT_SHARDS,
                 lease_s: float = 15.0, registry: CollectorRegistry | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._sm = sessionmaker
        self.node = node
        self._clock = clock
        self.shards = shards
        self.lease_s = lease_s
        self._mono = monotonic
        self.held: frozenset[int] = frozenset()
        self.live_shards: frozenset[int] = frozenset()  # held by some node, lease not yet expired
        self._valid_until = 0.0
        self.m_held = Gauge("negahban_shard_leases_held", "Shards of monitors this node checks", registry=registry)
        self.m_takeovers = Counter("negahban_shard_takeovers", "Shards this node took from a node that stopped "
                                   "renewing them", registry=registry)
        self.m_lost = Counter("negahban_shard_leases_lost", "Shards this node lost or gave back", ["why"],
                              registry=registry)
        self.m_nodes = Gauge("negahban_engine_nodes_live", "Engine nodes with a heartbeat within one lease",
                             registry=registry)

    def shard_of(self, monitor_id: int) -> int:
        return monitor_id % self.shards

    def owns(self, monitor_id: int) -> bool:
        """Whether this node may check ``monitor_id`` now: its shard is held and the lease still valid."""
        return monitor_id % self.shards in self.held and self._mono() < self._valid_until

    async def start(self) -> None:
        """Create the shard rows that are missing (every node may; the first one wins each row)."""
        async with self._sm.begin() as s:
            await s.execute(postgresql.insert(ShardLease.__table__).values(
                [{"shard": i, "generation": 0} for i in range(self.shards)]).on_conflict_do_nothing())

    async def heartbeat(self) -> Changes:
        """Renew, give back or claim leases; the shards gained and lost since the last heartbeat."""
        started = self._mono()
        now = self._clock.now()
        until = now + timedelta(seconds=self.lease_s)
        takeovers = 0
        async with self._sm.begin() as s:
            await s.execute(postgresql.insert(EngineNode.__table__).values(
                name=self.node, started_at=now, heartbeat_at=now).on_conflict_do_update(
                index_elements=["name"], set_={"heartbeat_at": now}))
            live = (await s.execute(select(EngineNode.name).where(
                EngineNode.heartbeat_at >= now - timedelta(seconds=self.lease_s)))).scalars().all()
            share = math.ceil(self.shards / max(len(live), 1))
            mine = set((await s.execute(update(ShardLease).where(
                ShardLease.node == self.node, ShardLease.expires_at >= now).values(expires_at=until)
                .returning(ShardLease.shard))).scalars())
            released: set[int] = set()
            if len(mine) > share:
                released = set(sorted(mine)[share:])
                await s.execute(update(ShardLease).where(ShardLease.shard.in_(released),
                                                         ShardLease.node == self.node)
                                .values(node=None, expires_at=None))
                mine -= released
                self.m_lost.labels("rebalanced").inc(len(released))
            elif len(mine) < share:
                free = (await s.execute(select(ShardLease.shard, ShardLease.node).where(
                    or_(ShardLease.node.is_(None), ShardLease.expires_at.is_(None), ShardLease.expires_at < now))
                    .order_by(ShardLease.shard).limit(share - len(mine)).with_for_update(skip_locked=True))).all()
                if free:
                    await s.execute(update(ShardLease).where(ShardLease.shard.in_([f.shard for f in free])).values(
                        node=self.node, generation=ShardLease.generation + 1, expires_at=until, acquired_at=now))
                    takeovers = sum(1 for f in free if f.node is not None and f.node != self.node)
                    mine |= {f.shard for f in free}
            live_shards = frozenset((await s.execute(select(ShardLease.shard).where(
                ShardLease.node.is_not(None), ShardLease.expires_at >= now))).scalars()) | mine
        # Valid from when the renewal was asked for, not answered: a slow answer shortens it, never extends it.
        self._valid_until = started + self.lease_s
        before, self.held, self.live_shards = self.held, frozenset(mine), live_shards
        lost = before - self.held
        if expired := lost - released:  # renewed too late: another node holds them now
            self.m_lost.labels("expired").inc(len(expired))
        if takeovers:
            self.m_takeovers.inc(takeovers)
            log.warning("shard_takeover node=%s shards=%s", self.node, takeovers)
        self.m_held.set(len(self.held))
        self.m_nodes.set(len(live))
        changes = Changes(self.held - before, lost, takeovers)
        if changes.gained or changes.lost:
            log.info("shard_leases node=%s held=%s gained=%s lost=%s live_nodes=%s", self.node, len(self.held),
                     len(changes.gained), len(changes.lost), len(live))
        return changes

    async def leave(self) -> None:
        """Give every lease back (a clean stop: the others take over at once, not after a lease)."""
        self.held, self._valid_until = frozenset(), 0.0
        async with self._sm.begin() as s:
            await s.execute(update(ShardLease).where(ShardLease.node == self.node).values(node=None, expires_at=None))
            await s.execute(EngineNode.__table__.delete().where(EngineNode.name == self.node))


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"negahban:{name}".encode()).digest()[:8], "big", signed=True)


def exclusive(engine: AsyncEngine, name: str, run_pass: Callable[[], Awaitable[object]]
              ) -> Callable[[], Awaitable[object]]:
    """``run_pass`` wrapped to run on one node at a time (PostgreSQL advisory lock ``name``); a node that finds
    the lock taken skips this pass. On SQLite (one node) it is ``run_pass`` itself."""
    if engine.dialect.name != "postgresql":
        return run_pass
    key = _lock_key(name)

    async def once() -> object:
        async with engine.connect() as conn:
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar()
            await conn.commit()
            if not got:
                return None
            try:
                return await run_pass()
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                await conn.commit()

    return once

