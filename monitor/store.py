"""Writing check results: flips at once, everything else in batches.

* A check that flips a state writes the flip, the monitor's state row and the check's result in one
  transaction before ``record`` returns: flips are never lost.
* Every other check only goes into memory: its 5-minute rollup bucket, the monitor's latest state, and
  (for a failure) the raw result with its message. ``flush`` writes all of it in one transaction: a few
  multi-row upserts, whatever the number of checks. A crash loses at most the checks since the last flush
  (``flush_s``, default 2 s) from rollups, raw failures and state rows; the state the runner reloads is then
  at most that old, and a state row is never overwritten by an older one.
* Successful checks are not stored one by one: they live on in the rollups.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.evaluate import Evaluation, FlipDraft, Memory
from monitor.models import Flip, Monitor, MonitorState, ProbeResultRow, RollupFine
from monitor.rollups import FINE_S, Bucket
from probes.base import ProbeResult

__all__ = ["ResultStore", "Pending"]

log = logging.getLogger("negahban.store")


@dataclass
class Pending:
    rollups: dict[tuple[int, int], Bucket]
    states: dict[int, Memory]
    raw: list[dict]

    @classmethod
    def empty(cls) -> Pending:
        return cls({}, {}, [])

    def __len__(self) -> int:
        return len(self.rollups) + len(self.states) + len(self.raw)

    def monitor_ids(self) -> set[int]:
        return {m for m, _ in self.rollups} | set(self.states) | {r["monitor_id"] for r in self.raw}

    def drop(self, ids: set[int]) -> None:
        if not ids:
            return
        self.rollups = {k: v for k, v in self.rollups.items() if k[0] not in ids}
        self.states = {k: v for k, v in self.states.items() if k not in ids}
        self.raw = [r for r in self.raw if r["monitor_id"] not in ids]


def _raw_row(monitor_id: int, at: datetime, result: ProbeResult) -> dict:
    return {"monitor_id": monitor_id, "at": at, "outcome": str(result.outcome), "reason": result.reason[:40],
            "message": result.message[:4000], "latency_s": result.latency_s, "details": result.details}


def _state_row(monitor_id: int, mem: Memory) -> dict:
    return {"monitor_id": monitor_id, "state": mem.state.value, "since": mem.since,
            "last_check_at": mem.last_check_at, "data": mem.to_data()}


def _insert_for(session: AsyncSession):
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


class ResultStore:
    def __init__(self, sessionmaker: async_sessionmaker) -> None:
        self._sessionmaker = sessionmaker
        self._pending = Pending.empty()
        self.flushed_checks = 0
        self._checks = 0

    def buffered(self) -> int:
        return len(self._pending)

    async def record(self, monitor_id: int, at: datetime, result: ProbeResult, ev: Evaluation) -> int | None:
        """Take one evaluated check; returns the flip's id when it flipped (written before returning)."""
        bucket = self._pending.rollups.setdefault((monitor_id, int(at.timestamp()) // FINE_S), Bucket())
        bucket.add(ev.observed, result.latency_s)
        self._checks += 1
        if ev.flip is None:
            self._pending.states[monitor_id] = ev.memory
            if ev.observed != "up":
                self._pending.raw.append(_raw_row(monitor_id, at, result))
            return None
        self._pending.states.pop(monitor_id, None)
        return await self.write_flip(monitor_id, ev.flip, ev.memory, _raw_row(monitor_id, at, result))

    async def write_flip(self, monitor_id: int, flip: FlipDraft, mem: Memory, raw: dict | None) -> int:
        async with self._sessionmaker() as session, session.begin():
            row = Flip(monitor_id=monitor_id, at=flip.at, old_state=flip.old_state.value,
                       new_state=flip.new_state.value, reason=flip.reason, message=flip.message,
                       root_monitor_id=flip.root_monitor_id)
            session.add(row)
            if raw is not None:
                await session.execute(insert(ProbeResultRow), [raw])
            await self._upsert_states(session, [_state_row(monitor_id, mem)])
            await session.flush()
            return row.id

    def forget(self, monitor_id: int) -> None:
        """Drop what is buffered for a removed monitor."""
        self._pending.drop({monitor_id})

    async def flush(self) -> int:
        """Write everything buffered in one transaction; returns the number of checks written."""
        pending, self._pending = self._pending, Pending.empty()
        checks, self._checks = self._checks, 0
        if not pending:
            return 0
        try:
            try:
                await self._write(pending)
            except IntegrityError:
                # A monitor deleted since its checks were buffered: drop its rows, write the rest.
                pending.drop(pending.monitor_ids() - await self._existing(pending.monitor_ids()))
                await self._write(pending)
        except Exception:
            self._requeue(pending, checks)
            raise
        self.flushed_checks += checks
        return checks

    async def _write(self, pending: Pending) -> None:
        async with self._sessionmaker() as session, session.begin():
            await self._upsert_rollups(session, pending.rollups)
            if pending.raw:
                await session.execute(insert(ProbeResultRow), pending.raw)
            await self._upsert_states(session, [_state_row(m, mem) for m, mem in pending.states.items()])

    async def _existing(self, ids: set[int]) -> set[int]:
        async with self._sessionmaker() as session:
            return set((await session.execute(select(Monitor.id).where(Monitor.id.in_(ids)))).scalars())

    def _requeue(self, pending: Pending, checks: int) -> None:
        """A failed flush keeps its data for the next one (newer states win)."""
        for key, b in pending.rollups.items():
            self._pending.rollups.setdefault(key, Bucket()).merge(b)
        for m, mem in pending.states.items():
            self._pending.states.setdefault(m, mem)
        self._pending.raw[:0] = pending.raw
        self._checks += checks

    async def _upsert_rollups(self, session: AsyncSession, rollups: dict[tuple[int, int], Bucket]) -> None:
        if not rollups:
            return
        ins = _insert_for(session)(RollupFine)
        pg = session.bind.dialect.name == "postgresql"
        lo, hi = (func.least, func.greatest) if pg else (func.min, func.max)
        t, x = RollupFine.__table__.c, ins.excluded
        stmt = ins.on_conflict_do_update(index_elements=["monitor_id", "bucket"], set_={
            "checks": t.checks + x.checks, "up": t.up + x.up, "degraded": t.degraded + x.degraded,
            "down": t.down + x.down, "latency_sum": t.latency_sum + x.latency_sum,
            "latency_min": lo(t.latency_min, x.latency_min), "latency_max": hi(t.latency_max, x.latency_max)})
        rows = [{"monitor_id": m, "bucket": k, "checks": b.checks, "up": b.up, "degraded": b.degraded,
                 "down": b.down, "latency_min": b.latency_min, "latency_sum": b.latency_sum,
                 "latency_max": b.latency_max} for (m, k), b in rollups.items()]
        await session.execute(stmt, rows)

    async def _upsert_states(self, session: AsyncSession, rows: list[dict]) -> None:
        if not rows:
            return
        ins = _insert_for(session)(MonitorState)
        t, x = MonitorState.__table__.c, ins.excluded
        stmt = ins.on_conflict_do_update(
            index_elements=["monitor_id"],
            set_={"state": x.state, "since": x.since, "last_check_at": x.last_check_at, "data": x.data},
            # never let an older snapshot (a flush racing a flip) overwrite a newer one
            where=(t.last_check_at.is_(None)) | (t.last_check_at <= x.last_check_at))
        await session.execute(stmt, rows)
