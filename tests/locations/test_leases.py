"""Shard leases, the flip fence and run-once jobs on PostgreSQL, with two or three nodes in one process (each
its own Cluster, ResultStore and clock reading); the real two-process takeover is in test_two_nodes.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from monitor.evaluate import FlipDraft, Memory
from monitor.leases import Cluster, exclusive
from monitor.models import Flip, Monitor, MonitorState, ShardLease, State
from monitor.runner import Runner
from monitor.store import ResultStore, StaleFlip
from probes import make_context

SHARDS, LEASE = 16, 9.0


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _node(pg_db, clock, name: str, mono: Mono) -> Cluster:
    return Cluster(pg_db.sessionmaker, name, clock, shards=SHARDS, lease_s=LEASE, monotonic=mono)


async def _holders(pg_db) -> dict[int, str | None]:
    async with pg_db.sessionmaker() as s:
        return dict((await s.execute(select(ShardLease.shard, ShardLease.node))).all())


async def test_nodes_share_the_shards_and_a_silent_node_s_shards_are_taken_over(pg_db, clock):
    mono = Mono()
    a, b = _node(pg_db, clock, "a", mono), _node(pg_db, clock, "b", mono)
    await a.start()
    await b.start()
    assert len((await a.heartbeat()).gained) == SHARDS  # alone: every shard
    assert (await b.heartbeat()).gained == frozenset()  # every shard is held and valid: nothing to take yet
    assert len((await a.heartbeat()).lost) == SHARDS // 2  # a sees two nodes: gives half back
    assert len((await b.heartbeat()).gained) == SHARDS // 2
    assert a.held.isdisjoint(b.held) and len(a.held | b.held) == SHARDS
    holders = await _holders(pg_db)
    assert {s for s, n in holders.items() if n == "a"} == a.held
    # a stops renewing (killed): until its leases expire, b cannot take them
    clock.advance(LEASE / 2)
    mono.t += LEASE / 2
    assert (await b.heartbeat()).gained == frozenset()
    clock.advance(LEASE / 2 + 1)
    mono.t += LEASE / 2 + 1
    assert not a.owns(next(iter(a.held)))  # a's own clock says its lease is over: it stops checking
    changes = await b.heartbeat()
    assert len(b.held) == SHARDS and changes.takeovers == SHARDS // 2
    assert set((await _holders(pg_db)).values()) == {"b"}


async def test_a_clean_stop_gives_every_lease_back_at_once(pg_db, clock):
    mono = Mono()
    a, b = _node(pg_db, clock, "a", mono), _node(pg_db, clock, "b", mono)
    await a.start()
    await a.heartbeat()
    await b.heartbeat()
    await a.heartbeat()
    await b.heartbeat()
    await a.leave()
    changes = await b.heartbeat()
    assert len(b.held) == SHARDS and changes.takeovers == 0  # given back, not taken over


async def test_three_nodes_claiming_at_once_never_hold_one_shard_twice(pg_db, clock):
    mono = Mono()
    nodes = [_node(pg_db, clock, n, mono) for n in "abc"]
    await nodes[0].start()
    for _ in range(4):
        await asyncio.gather(*(n.heartbeat() for n in nodes))
    held = [n.held for n in nodes]
    assert sum(len(h) for h in held) == len(set().union(*held))  # disjoint
    holders = await _holders(pg_db)
    for n in nodes:
        assert {s for s, who in holders.items() if who == n.node} == n.held


async def _monitor(pg_db) -> int:
    async with pg_db.sessionmaker.begin() as s:
        m = Monitor(name="web", kind="tcp", target="127.0.0.1:1")
        s.add(m)
    return m.id


def _flip(mid: int, old: State, new: State, at: datetime) -> tuple[FlipDraft, Memory]:
    return FlipDraft(at, old, new, "refused", "test", None), Memory(state=new, since=at, last_check_at=at)


async def test_a_node_that_read_a_monitor_before_another_flipped_it_cannot_write_a_stale_flip(pg_db, clock):
    mid = await _monitor(pg_db)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    a, b = ResultStore(pg_db.sessionmaker), ResultStore(pg_db.sessionmaker)
    a.fenced = b.fenced = True
    f, mem = _flip(mid, State.UNKNOWN, State.UP, at)
    await a.write_flip(mid, f, mem, None)  # the monitor's first flip anywhere
    f, mem = _flip(mid, State.UNKNOWN, State.UP, at)
    with pytest.raises(StaleFlip):
        await b.write_flip(mid, f, mem, None)  # b never read the state a wrote
    f, mem = _flip(mid, State.UP, State.DOWN, at)
    await a.write_flip(mid, f, mem, None)
    async with pg_db.sessionmaker() as s:
        row = await s.get(MonitorState, mid)
        flips = (await s.execute(select(Flip.new_state).where(Flip.monitor_id == mid).order_by(Flip.id))).scalars()
        assert row.flip_seq == 2 and row.state == "DOWN" and list(flips) == ["UP", "DOWN"]
    # b, after a takeover, reads the state and may write
    ctx = await make_context(icmp="off")
    runner = Runner(pg_db.sessionmaker, ctx, clock, b)
    await runner.load_states(only=[mid])
    assert runner.memories[mid].state is State.DOWN and b.flip_seq[mid] == 2
    f, mem = _flip(mid, State.DOWN, State.UP, at)
    await b.write_flip(mid, f, mem, None)
    await ctx.close()


async def test_a_job_that_must_run_once_runs_on_one_node_while_the_other_skips_it(pg_db):
    started, release, runs = asyncio.Event(), asyncio.Event(), []

    async def job():
        runs.append(1)
        started.set()
        await release.wait()
        return "done"

    one, two = exclusive(pg_db.engine, "retention", job), exclusive(pg_db.engine, "retention", job)
    first = asyncio.create_task(one())
    await started.wait()
    assert await two() is None  # the lock is held: this pass is skipped, not queued
    release.set()
    assert await first == "done" and runs == [1]
    assert await two() == "done"  # released afterwards
