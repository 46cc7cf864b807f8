"""Batched result storage, rollup compaction and retention on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from monitor.evaluate import Memory, evaluate
from monitor.models import (
    AgentBatch,
    FailingLocation,
    Flip,
    Location,
    LocationResult,
    Monitor,
    MonitorState,
    ProbeResultRow,
    RollupArchive,
    RollupFine,
)
from monitor.policy import load_policy
from monitor.retention import Retention, compact_days, compact_hours, purge
from monitor.rollups import DAY, HOUR, unpack
from monitor.store import ResultStore
from probes.base import Outcome, ProbeResult

T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def _monitor(sessionmaker, name="m1") -> int:
    async with sessionmaker() as s, s.begin():
        m = Monitor(name=name, kind="http", target="http://127.0.0.1/")
        s.add(m)
        await s.flush()
        return m.id


async def _count(sessionmaker, model) -> int:
    async with sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(model))).scalar()


async def _feed(store, monitor_id, outcomes, start, step_s=30, mem=None):
    mem = mem or Memory()
    pol = load_policy({})
    flips = []
    for i, o in enumerate(outcomes):
        at = start + timedelta(seconds=step_s * i)
        result = ProbeResult(Outcome(o), "ok" if o == "up" else "timeout", f"#{i}", 0.01 * (i + 1))
        ev = evaluate(mem, result, pol, at)
        mem = ev.memory
        fid = await store.record(monitor_id, at, result, ev)
        if fid:
            flips.append(fid)
    return mem, flips


async def test_flips_are_durable_before_record_returns_and_the_rest_waits_for_flush(sessionmaker):
    mid = await _monitor(sessionmaker)
    store = ResultStore(sessionmaker)
    await _feed(store, mid, ["up", "up", "down", "down", "down"], T0)
    # two flips (UNKNOWN->UP, UP->DOWN) are already written, with their states and results
    assert await _count(sessionmaker, Flip) == 2
    assert await _count(sessionmaker, RollupFine) == 0
    assert await store.flush() == 5
    async with sessionmaker() as s:
        fine = (await s.execute(select(RollupFine))).scalars().all()
        state = await s.get(MonitorState, mid)
        raws = (await s.execute(select(ProbeResultRow.outcome))).scalars().all()
    assert sum(r.checks for r in fine) == 5 and sum(r.down for r in fine) == 3
    assert state.state == "DOWN" and state.data["down"] == 3
    # failures are kept with their messages; successes live on only in rollups (UP flip's own row aside)
    assert sorted(raws) == ["down", "down", "down", "up"]


async def test_many_checks_are_one_flush_and_buckets_add_up(sessionmaker):
    mid = await _monitor(sessionmaker)
    store = ResultStore(sessionmaker)
    mem, _ = await _feed(store, mid, ["up"] * 20, T0, step_s=15)  # 5 minutes in one bucket, then more
    await store.flush()
    await _feed(store, mid, ["up"] * 20, T0 + timedelta(seconds=300), step_s=15, mem=mem)
    await store.flush()
    async with sessionmaker() as s:
        fine = (await s.execute(select(RollupFine).order_by(RollupFine.bucket))).scalars().all()
    assert [r.checks for r in fine] == [20, 20]
    assert fine[0].latency_min == 0.01 and abs(fine[0].latency_max - 0.20) < 1e-9


async def test_an_older_state_snapshot_never_overwrites_a_newer_one(sessionmaker):
    mid = await _monitor(sessionmaker)
    store = ResultStore(sessionmaker)
    mem, _ = await _feed(store, mid, ["up", "up"], T0)
    stale = store._pending  # a flush that raced a flip would carry this older snapshot
    await _feed(store, mid, ["down"] * 3, T0 + timedelta(minutes=1), mem=mem)
    store._pending = stale
    await store.flush()
    async with sessionmaker() as s:
        assert (await s.get(MonitorState, mid)).state == "DOWN"


async def test_compaction_builds_hourly_and_daily_slots_and_is_idempotent(sessionmaker):
    mid = await _monitor(sessionmaker)
    store = ResultStore(sessionmaker)
    day = datetime(2026, 3, 5, tzinfo=UTC)
    # 120 checks an hour for hours 0 and 1 of the day, 2 of them down
    await _feed(store, mid, ["up"] * 118 + ["down"] * 2 + ["up"] * 120, day)
    await store.flush()
    now = day + timedelta(days=1, hours=0, minutes=5)
    for _ in range(2):
        await compact_hours(sessionmaker, day + timedelta(hours=2, minutes=1))
        await compact_days(sessionmaker, now)
    async with sessionmaker() as s:
        rows = {(r.resolution, r.period): r.slots for r in (await s.execute(select(RollupArchive))).scalars()}
    hourly = unpack(rows[(HOUR, int(day.timestamp()) // DAY)], HOUR)
    assert [b.checks for b in hourly[:3]] == [120, 120, 0] and hourly[0].down == 2
    daily = unpack(rows[(DAY, 2026 * 12 + 2)], DAY)
    assert daily[4].checks == 240 and daily[4].down == 2 and daily[4].up == 238


async def test_retention_drops_what_outlived_its_resolution(sessionmaker):
    mid = await _monitor(sessionmaker)
    store = ResultStore(sessionmaker)
    await _feed(store, mid, ["down"] * 4, T0)
    store.add_failing([{"monitor_id": mid, "since": T0, "location": loc, "state": "DOWN", "at": T0,
                        "processed_at": T0 if loc == "east" else None} for loc in ("east", "west")])
    await store.flush()
    await compact_hours(sessionmaker, T0 + timedelta(hours=1), hours=2)
    counts = await purge(sessionmaker, T0 + timedelta(days=8), Retention())
    assert counts["rollups_fine"] == 1 and counts["probe_results"] == 4
    # A failing location is dropped once the incident engine took it, never before.
    assert counts["failing_locations"] == 1 and await _count(sessionmaker, FailingLocation) == 1
    assert await _count(sessionmaker, RollupArchive) == 1  # hourly is kept 90 days
    counts = await purge(sessionmaker, T0 + timedelta(days=91), Retention())
    assert counts["rollups_hourly"] == 1
    assert await _count(sessionmaker, Flip) == 1  # flips are history: never purged here


async def test_each_locations_checks_go_after_an_hour_when_up_and_with_the_raw_results_when_not(
        sessionmaker, monkeypatch):
    import monitor.retention as retention

    monkeypatch.setattr(retention, "CHUNK", 7)  # several chunks, each a transaction of its own
    mid = await _monitor(sessionmaker)
    async with sessionmaker() as s, s.begin():
        loc = Location(name="east")
        s.add(loc)
        await s.flush()
        batch = AgentBatch(location_id=loc.id, agent_id="a1", seq=1, results=40, received_at=T0)
        s.add(batch)
        await s.flush()
        s.add_all([LocationResult(location="east", monitor_id=mid, at=T0 + timedelta(seconds=i),
                                  outcome="down" if i % 4 == 0 else "up", batch_id=batch.id) for i in range(40)])
    counts = await purge(sessionmaker, T0 + timedelta(minutes=30), Retention())
    assert counts["location_results"] == 0 and await _count(sessionmaker, LocationResult) == 40
    counts = await purge(sessionmaker, T0 + timedelta(hours=2), Retention())
    assert counts["location_results"] == 30 and await _count(sessionmaker, LocationResult) == 10   # the failed
    assert counts["agent_batches"] == 0
    counts = await purge(sessionmaker, T0 + timedelta(days=8), Retention())
    assert counts["location_results"] == 10 and counts["agent_batches"] == 1
    assert await _count(sessionmaker, LocationResult) == 0 and await _count(sessionmaker, AgentBatch) == 0


async def test_a_monitor_deleted_before_the_flush_does_not_block_the_others(sessionmaker):
    from sqlalchemy import delete

    keep, gone = await _monitor(sessionmaker, "keep"), await _monitor(sessionmaker, "gone")
    store = ResultStore(sessionmaker)
    await _feed(store, keep, ["up", "down"], T0)
    await _feed(store, gone, ["up", "down"], T0)
    async with sessionmaker() as s, s.begin():
        await s.execute(delete(Monitor).where(Monitor.id == gone))
    assert await store.flush() == 4
    async with sessionmaker() as s:
        ids = set((await s.execute(select(RollupFine.monitor_id))).scalars())
    assert ids == {keep} and store.buffered() == 0
