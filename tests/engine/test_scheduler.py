"""The due-queue scheduler with a manual clock: phases, no overlaps, retries, lateness, live reloads."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import delete, update

from monitor.models import Monitor
from monitor.scheduler import DueQueue, next_start, phase_of
from tests.engine.helpers import Engine, Target, apply_yaml


def test_phases_are_deterministic_and_spread_evenly():
    phases = [phase_of(i, 30.0) for i in range(1, 3001)]
    assert phases == [phase_of(i, 30.0) for i in range(1, 3001)]
    per_second = Counter(int(p) for p in phases)
    assert set(per_second) == set(range(30))
    assert max(per_second.values()) < 2 * min(per_second.values())


@pytest.mark.parametrize("after", [0.0, 12.5, 1_000_000.25, 1_772_000_000.0])
def test_next_start_is_on_the_monitors_grid_and_strictly_later(after):
    at = next_start(42, 30.0, after)
    assert after < at <= after + 30.0
    assert (at - phase_of(42, 30.0)) % 30.0 == pytest.approx(0.0, abs=1e-6)


def test_requeuing_supersedes_the_earlier_entry():
    q = DueQueue()
    q.put(1, 10.0)
    q.put(1, 20.0)
    q.put(2, 15.0)
    q.discard(2)
    assert [(at, mid) for at, mid, _ in q.pop_until(100.0)] == [(20.0, 1)]


@pytest.fixture
async def target():
    t = await Target().start()
    yield t
    await t.close()


@pytest.fixture
async def engine(sessionmaker, clock):
    e = await Engine.create(sessionmaker, clock)
    yield e
    await e.close()


def _inventory(target: Target, names=("a",), interval=30) -> str:
    rows = "\n".join(f'  - {{name: {n}, kind: http, target: "{target.url(n)}", interval: {interval}, '
                     f'timeout_s: 5}}' for n in names)
    return f"monitors:\n{rows}\n"


async def test_each_monitor_runs_once_per_interval_at_its_phase(engine, target, clock):
    await apply_yaml(engine.sessionmaker, _inventory(target, ("a", "b", "c")), clock.now())
    await engine.scheduler.reload(force=True)
    ran = 0
    for _ in range(60):  # two intervals, a second at a time
        ran += await engine.step(1)
    assert ran == 6 and target.hits == {"a": 2, "b": 2, "c": 2}
    assert engine.registry.get_sample_value("negahban_schedule_missed_total") == 0


async def test_a_monitor_never_runs_twice_at_once(engine, target, clock):
    await apply_yaml(engine.sessionmaker, _inventory(target, ("slow",), interval=5), clock.now())
    await engine.scheduler.reload(force=True)
    target.gates["slow"] = asyncio.Event()
    clock.advance(5)
    assert engine.scheduler.dispatch_due() == 1
    await asyncio.wait_for(target.arrived("slow").wait(), 5)
    clock.advance(12)  # two more planned starts pass while the first check hangs
    assert engine.scheduler.dispatch_due() == 0
    target.gates["slow"].set()
    await engine.scheduler.wait_idle()
    assert target.hits["slow"] == 1
    assert engine.registry.get_sample_value("negahban_schedule_overlaps_skipped_total") == 0
    # the planned starts that passed during the long run are counted as missed, not run late
    assert engine.registry.get_sample_value("negahban_schedule_missed_total") == 2


async def test_after_a_failure_the_next_check_comes_at_the_retry_interval(engine, target, clock):
    await apply_yaml(engine.sessionmaker, _inventory(target, ("a",), interval=60), clock.now())
    await engine.scheduler.reload(force=True)
    for _ in range(60):
        await engine.step(1)
    target.status["a"] = 500
    for _ in range(60):
        await engine.step(1)
    # one normal failing check, then retries 5 s apart until DOWN is confirmed (3 checks)
    assert target.hits["a"] == 4 and engine.state("a") == "DOWN"


async def test_lateness_is_measured(engine, target, clock):
    await apply_yaml(engine.sessionmaker, _inventory(target, ("a",)), clock.now())
    await engine.scheduler.reload(force=True)
    planned = next_start(engine.id("a"), 30.0, clock.now().timestamp())
    clock.advance(planned - clock.now().timestamp() + 0.25)
    assert engine.scheduler.dispatch_due() == 1
    await engine.scheduler.wait_idle()
    assert engine.registry.get_sample_value("negahban_schedule_lateness_seconds_sum") == pytest.approx(0.25)
    assert engine.registry.get_sample_value("negahban_schedule_lateness_seconds_bucket", {"le": "0.5"}) == 1


async def test_monitors_added_changed_paused_and_removed_take_effect_without_restart(engine, target, clock):
    sm = engine.sessionmaker
    await apply_yaml(sm, _inventory(target, ("a",)), clock.now())
    await engine.scheduler.reload(force=True)
    assert not await engine.scheduler.reload()  # nothing changed: nothing re-read
    await apply_yaml(sm, _inventory(target, ("a", "b")), clock.advance(1))
    assert await engine.scheduler.reload()
    assert {c.name for c in engine.scheduler.catalog.values()} == {"a", "b"}
    async with sm() as s, s.begin():
        await s.execute(update(Monitor).where(Monitor.name == "a").values(interval_s=5,
                                                                          updated_at=clock.advance(1)))
    await engine.scheduler.reload()
    for _ in range(30):
        await engine.step(1)
    assert target.hits["a"] == 6 and target.hits["b"] == 1
    async with sm() as s, s.begin():
        await s.execute(update(Monitor).where(Monitor.name == "a").values(enabled=False,
                                                                          updated_at=clock.advance(1)))
        await s.execute(delete(Monitor).where(Monitor.name == "b"))
    await engine.scheduler.reload()
    before = dict(target.hits)
    for _ in range(60):
        await engine.step(1)
    assert target.hits == before and engine.scheduler.catalog == {}


async def test_a_check_that_started_a_hair_early_is_not_run_twice(engine, target, clock):
    await apply_yaml(engine.sessionmaker, _inventory(target, ("a",)), clock.now())
    await engine.scheduler.reload(force=True)
    planned = next_start(engine.id("a"), 30.0, clock.now().timestamp())
    clock.advance(planned - clock.now().timestamp() - 0.001)  # a timer may fire within the loop's resolution
    for _, mid, gen in engine.scheduler.queue.pop_until(planned):
        engine.scheduler._launch(mid, planned, gen)
    await engine.scheduler.wait_idle()
    clock.advance(0.002)
    assert engine.scheduler.dispatch_due() == 0 and target.hits == {"a": 1}


async def test_a_retry_is_timed_from_the_failing_checks_start_not_its_end(engine, target, clock):
    await apply_yaml(engine.sessionmaker, _inventory(target, ("a",), interval=60), clock.now())
    await engine.scheduler.reload(force=True)
    cfg = engine.scheduler.catalog[engine.id("a")]
    started = clock.now().timestamp()
    clock.advance(3)  # the failing check took 3 s (a timeout)
    engine.scheduler._requeue(cfg, started, True, started)
    assert engine.scheduler.queue.pop_until(started + 4.99) == []
    assert [mid for _, mid, _ in engine.scheduler.queue.pop_until(started + 5.0)] == [cfg.id]
    clock.advance(10)  # a check slower than the retry interval is retried at once, not in the past
    engine.scheduler._requeue(cfg, started, True, started)
    assert [at for at, _, _ in engine.scheduler.queue.pop_until(clock.now().timestamp())] == \
        [clock.now().timestamp()]
