"""Writing check results: flips at once, everything else in batches.

* A check that flips a state writes the flip, the monitor's state row and the check's result in one
  transaction before ``record`` returns: flips are never lost. Flips that arrive together share a
  transaction (group commit, see ``write_flip``).
* Every other check only goes into memory: its 5-minute rollup bucket, the monitor's latest state, and
  (for a failure) the raw result with its message. ``flush`` writes all of it in one transaction: a few
  multi-row upserts, whatever the number of checks. A crash loses at most the checks since the last flush
  (``flush_s``, default 2 s) from rollups, raw failures and state rows; the state the runner reloads is then
  at most that old, and a state row is never overwritten by an older one.
* Successful checks are not stored one by one: they live on in the rollups. The exception is a check that
  reports an event (``details["event"]``, e.g. an SNMP agent's ``reboot``): an event, not an outage, kept
  as a raw result (outcome UP, its reason and message) so the monitor's history shows when it happened. A state row is rewritten only
  when what it says changes (a monitor UP for hours keeps the same row; its ``last_check_at`` then shows
  when that was last true, and the live time of the last check is in the runner's memory).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from monitor.evaluate import Evaluation, FlipDraft, Memory
from monitor.models import (
    FailingLocation,
    Flip,
    LocationResult,
    Monitor,
    MonitorState,
    ProbeResultRow,
    RollupFine,
)
from monitor.rollups import FINE_S, Bucket
from monitor.work import WorkerFailures
from probes.base import ProbeResult

__all__ = ["ResultStore", "Pending", "StaleFlip"]


class StaleFlip(Exception):
    """Another node wrote a flip of this monitor since this node read its state: this flip is not written."""

    def __init__(self, monitor_id: int) -> None:
        super().__init__(f"monitor {monitor_id}: another node flipped it since its state was read here")
        self.monitor_id = monitor_id

log = logging.getLogger("negahban.store")


@dataclass
class Pending:
    rollups: dict[tuple[int, int], Bucket]
    states: dict[int, Memory]
    raw: list[dict]
    located: list[dict] = field(default_factory=list)  # the central location's checks of voted monitors
    failing: list[dict] = field(default_factory=list)  # locations joining a voted monitor's failure

    @classmethod
    def empty(cls) -> Pending:
        return cls({}, {}, [], [], [])

    def __len__(self) -> int:
        return len(self.rollups) + len(self.states) + len(self.raw) + len(self.located) + len(self.failing)

    def monitor_ids(self) -> set[int]:
        return ({m for m, _ in self.rollups} | set(self.states) | {r["monitor_id"] for r in self.raw}
                | {r["monitor_id"] for r in self.located} | {r["monitor_id"] for r in self.failing})

    def only(self, monitor_id: int) -> Pending:
        return Pending({k: v for k, v in self.rollups.items() if k[0] == monitor_id},
                       {k: v for k, v in self.states.items() if k == monitor_id},
                       [r for r in self.raw if r["monitor_id"] == monitor_id],
                       [r for r in self.located if r["monitor_id"] == monitor_id],
                       [r for r in self.failing if r["monitor_id"] == monitor_id])

    def checks(self) -> int:
        return sum(b.checks for b in self.rollups.values())

    def drop(self, ids: set[int]) -> None:
        if not ids:
            return
        self.rollups = {k: v for k, v in self.rollups.items() if k[0] not in ids}
        self.states = {k: v for k, v in self.states.items() if k not in ids}
        self.raw = [r for r in self.raw if r["monitor_id"] not in ids]
        self.located = [r for r in self.located if r["monitor_id"] not in ids]
        self.failing = [r for r in self.failing if r["monitor_id"] not in ids]


def _raw_row(monitor_id: int, at: datetime, result: ProbeResult) -> dict:
    return {"monitor_id": monitor_id, "at": at, "outcome": str(result.outcome), "reason": result.reason[:40],
            "message": result.message[:4000], "latency_s": result.latency_s, "details": result.details}


def _state_row(monitor_id: int, mem: Memory) -> dict:
    return {"monitor_id": monitor_id, "state": mem.state.value, "since": mem.since,
            "last_check_at": mem.last_check_at, "data": mem.to_data()}


def _insert_for(session: AsyncSession):
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


class ResultStore:
    def __init__(self, sessionmaker: async_sessionmaker, failures: WorkerFailures | None = None) -> None:
        self._sessionmaker = sessionmaker
        self.failures = failures or WorkerFailures()
        self._pending = Pending.empty()
        self.flushed_checks = 0
        self._checks = 0
        self._flips: list[tuple[dict, dict | None, dict, asyncio.Future]] = []
        # What the state row of each monitor last said (see ``Memory.signature``): a monitor that stays UP
        # check after check does not rewrite its row every time.
        self._written: dict[int, tuple] = {}
        self._writer: asyncio.Task | None = None
        # One writer at a time: SQLite allows one anyway, and waiting here is cheaper than its busy loop.
        self._write_lock = asyncio.Lock()
        # Several nodes (``monitor.leases``): each flip is written only if the monitor's flip count in the
        # database is the one this node last read or wrote (``flip_seq``), in the flip's transaction.
        self.fenced = False
        self.flip_seq: dict[int, int] = {}

    def buffered(self) -> int:
        return len(self._pending)

    def add_check(self, monitor_id: int, at: datetime, observed: str, latency_s: float) -> None:
        """Count one check in its 5-minute rollup (uptime) without evaluating it."""
        bucket = self._pending.rollups.setdefault((monitor_id, int(at.timestamp()) // FINE_S), Bucket())
        bucket.add(observed, latency_s)
        self._checks += 1

    def add_located(self, row: dict) -> None:
        """Buffer one ``location_results`` row (written by the next flush)."""
        self._pending.located.append(row)

    def add_failing(self, rows: list[dict]) -> None:
        """Buffer ``failing_locations`` rows: locations that joined a failure after its flip (next flush)."""
        self._pending.failing.extend(rows)

    async def record(self, monitor_id: int, at: datetime, result: ProbeResult, ev: Evaluation,
                     rollup: bool = True, failing: list[dict] = ()) -> int | None:
        """Take one evaluated check; returns the flip's id when it flipped (written before returning).

        ``rollup=False`` for a location vote: its checks were counted one by one as they came. ``failing``:
        the ``failing_locations`` rows of a vote (with the flip when it flipped, else by the next flush)."""
        if rollup:
            self.add_check(monitor_id, at, ev.observed, result.latency_s)
        if ev.flip is None:
            sig = ev.memory.signature()
            if self._written.get(monitor_id) != sig:
                self._pending.states[monitor_id] = ev.memory
            if ev.observed != "up" or result.details.get("event"):
                self._pending.raw.append(_raw_row(monitor_id, at, result))
            self.add_failing(list(failing))
            return None
        self._pending.states.pop(monitor_id, None)
        self._written[monitor_id] = ev.memory.signature()
        return await self.write_flip(monitor_id, ev.flip, ev.memory, _raw_row(monitor_id, at, result),
                                     list(failing))

    async def write_flip(self, monitor_id: int, flip: FlipDraft, mem: Memory, raw: dict | None,
                         failing: list[dict] = ()) -> int:
        """Write a flip (with its state row and result) and return its id once committed.

        Group commit: flips arriving while a transaction is being written wait for the next one, so a burst
        (the first check of 10,000 new monitors, a switch taking 500 servers with it) is a few transactions,
        not one per flip, and still nothing returns before its flip is durable.
        """
        row = {"monitor_id": monitor_id, "at": flip.at, "old_state": flip.old_state.value,
               "new_state": flip.new_state.value, "reason": flip.reason, "message": flip.message,
               "root_monitor_id": flip.root_monitor_id}
        done = asyncio.get_running_loop().create_future()
        self._flips.append((row, raw, _state_row(monitor_id, mem), done, list(failing)))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_flips())
        return await done

    async def _write_flips(self) -> None:
        while self._flips:
            batch, self._flips = self._flips, []
            try:
                ids = await self._insert_flips(batch)
            except Exception as exc:
                if len(batch) > 1:
                    # One flip that cannot be written (its monitor deleted meanwhile, a result that does not
                    # serialise) must not fail the others of its group: they are written one by one.
                    log.warning("flip_group_failed flips=%s error=%r", len(batch), str(exc)[:300])
                    await self._write_alone(batch)
                elif not batch[0][3].done():
                    batch[0][3].set_exception(exc)
                continue
            for (_, _, _, done, _), flip_id in zip(batch, ids, strict=True):
                if not done.done():
                    done.set_result(flip_id)

    async def _write_alone(self, batch: list) -> None:
        for item in batch:
            done = item[3]
            try:
                (flip_id,) = await self._insert_flips([item])
            except Exception as exc:
                if not done.done():
                    done.set_exception(exc)
            else:
                if not done.done():
                    done.set_result(flip_id)

    async def _insert_flips(self, batch: list) -> list[int]:
        async with self._write_lock, self._sessionmaker() as session, session.begin():
            seqs: dict[int, int] = {}
            if self.fenced:
                for b in batch:
                    m = b[0]["monitor_id"]
                    seqs[m] = await self._fence(session, m, seqs.get(m, self.flip_seq.get(m, 0)))
            ids = (await session.execute(insert(Flip).returning(Flip.id, sort_by_parameter_order=True),
                                         [b[0] for b in batch])).scalars().all()
            raws = [b[1] for b in batch if b[1] is not None]
            if raws:
                await session.execute(insert(ProbeResultRow.__table__), raws)
            await self._insert_failing(session, [r for b in batch for r in b[4]])
            await self._upsert_states(session, list({b[2]["monitor_id"]: b[2] for b in batch}.values()))
        self.flip_seq.update(seqs)
        return list(ids)

    async def _fence(self, session: AsyncSession, monitor_id: int, expected: int) -> int:
        """Count one more flip of ``monitor_id`` if the count is still ``expected``; else ``StaleFlip``."""
        moved = await session.execute(update(MonitorState).where(
            MonitorState.monitor_id == monitor_id, MonitorState.flip_seq == expected).values(flip_seq=expected + 1)
            .execution_options(synchronize_session=False))
        if moved.rowcount == 1:
            return expected + 1
        if expected == 0:  # its first flip anywhere: the state row does not exist yet
            first = _insert_for(session)(MonitorState.__table__).values(
                monitor_id=monitor_id, state="UNKNOWN", data={}, flip_seq=1).on_conflict_do_nothing()
            if (await session.execute(first)).rowcount == 1:
                return 1
        raise StaleFlip(monitor_id)

    def forget(self, monitor_id: int) -> None:
        """Drop what is buffered for a removed monitor."""
        self._pending.drop({monitor_id})
        self._written.pop(monitor_id, None)

    async def flush(self) -> int:
        """Write everything buffered in one transaction; returns the number of checks written.

        If that fails, each monitor's checks are written on their own: a monitor whose data cannot be written
        is counted (worker ``result_flush``) and kept for the next flush, and dropped after
        ``MAX_ITEM_ATTEMPTS`` failures; the other monitors' rollups, failures and states are written."""
        pending, self._pending = self._pending, Pending.empty()
        checks, self._checks = self._checks, 0
        if not pending:
            return 0
        try:
            await self._write_known(pending)
        except Exception as exc:
            log.warning("flush_batch_failed monitors=%s error=%r", len(pending.monitor_ids()), str(exc)[:300])
            self._checks += checks - pending.checks()  # checks not in any bucket (none today) stay counted
            return await self._flush_each(pending)
        self._flushed(pending, checks)
        return checks

    async def _write_known(self, pending: Pending) -> None:
        try:
            await self._write(pending)
        except IntegrityError:
            # A monitor deleted since its checks were buffered: drop its rows, write the rest.
            pending.drop(pending.monitor_ids() - await self._existing(pending.monitor_ids()))
            await self._write(pending)

    def _flushed(self, pending: Pending, checks: int) -> None:
        self.flushed_checks += checks
        for m, mem in pending.states.items():
            self._written[m] = mem.signature()

    async def _flush_each(self, pending: Pending) -> int:
        ids, written = sorted(pending.monitor_ids()), 0
        for i, monitor_id in enumerate(ids):
            one = pending.only(monitor_id)
            try:
                await self._write_known(one)
            except Exception as exc:
                try:
                    gave_up = await self.failures.failed("result_flush", f"monitor:{monitor_id}", exc)
                except Exception:  # the database itself is gone: keep everything not written for later
                    for rest in [one] + [pending.only(m) for m in ids[i + 1:]]:
                        self._requeue(rest, rest.checks())
                    raise
                if not gave_up:
                    self._requeue(one, one.checks())
                continue
            self._flushed(one, one.checks())
            written += one.checks()
        return written

    async def _write(self, pending: Pending) -> None:
        async with self._write_lock, self._sessionmaker() as session, session.begin():
            await self._upsert_rollups(session, pending.rollups)
            if pending.raw:
                await session.execute(insert(ProbeResultRow.__table__), pending.raw)
            if pending.located:
                await session.execute(insert(LocationResult.__table__), pending.located)
            await self._insert_failing(session, pending.failing)
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
        self._pending.located[:0] = pending.located
        self._pending.failing[:0] = pending.failing
        self._checks += checks

    @staticmethod
    async def _insert_failing(session: AsyncSession, rows: list[dict]) -> None:
        """A location already named for this failure (a repeat, another node's write) is left as it is."""
        if rows:
            await session.execute(_insert_for(session)(FailingLocation.__table__).on_conflict_do_nothing(
                index_elements=["monitor_id", "since", "location"]), rows)

    async def _upsert_rollups(self, session: AsyncSession, rollups: dict[tuple[int, int], Bucket]) -> None:
        if not rollups:
            return
        ins = _insert_for(session)(RollupFine.__table__)
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
        ins = _insert_for(session)(MonitorState.__table__)
        t, x = MonitorState.__table__.c, ins.excluded
        stmt = ins.on_conflict_do_update(
            index_elements=["monitor_id"],
            set_={"state": x.state, "since": x.since, "last_check_at": x.last_check_at, "data": x.data},
            # never let an older snapshot (a flush racing a flip) overwrite a newer one
            where=(t.last_check_at.is_(None)) | (t.last_check_at <= x.last_check_at))
        await session.execute(stmt, rows)
