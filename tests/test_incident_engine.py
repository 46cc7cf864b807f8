"""The incident engine, driven by flips on both databases."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from incidents.engine import EngineConfig, IncidentEngine
from incidents.models import Audience, IncidentAffected, IncidentEvent, Severity, Status
from incidents.rules import Action, OpenView, decide
from monitor.models import Flip
from tests.incident_support import (
    channel,
    count,
    flip,
    incidents,
    notices,
    server_with_monitor,
    switch_with_monitor,
)

HOLD = 120.0


def engine(sessionmaker, clock, **kw) -> IncidentEngine:
    return IncidentEngine(sessionmaker, clock, EngineConfig(recovery_hold_s=HOLD), **kw)


async def step(eng: IncidentEngine) -> None:
    await eng.process_pending()
    await eng.sweep()


@pytest.mark.parametrize(("state", "open_sev", "root", "maint", "action", "severity"), [
    ("DOWN", None, None, False, Action.OPEN, Severity.URGENT),
    ("DEGRADED", None, None, False, Action.OPEN, Severity.IMPORTANT),
    ("UNREACHABLE", None, None, False, Action.OPEN, Severity.URGENT),
    ("DOWN", None, None, True, Action.SUPPRESS, Severity.URGENT),
    ("UP", None, None, False, Action.IGNORE, None),
    ("MAINTENANCE", None, None, False, Action.IGNORE, None),
    ("DOWN", Severity.IMPORTANT, 1, False, Action.RAISE, Severity.URGENT),
    ("DEGRADED", Severity.URGENT, 1, False, Action.FAIL_AGAIN, Severity.URGENT),
    ("DOWN", Severity.URGENT, 1, False, Action.FAIL_AGAIN, Severity.URGENT),
    ("UNREACHABLE", Severity.URGENT, 2, False, Action.ABSORB, Severity.URGENT),
    ("UP", Severity.URGENT, 1, False, Action.RECOVERING, None),
    ("UP", Severity.URGENT, 2, False, Action.IGNORE, None),
])
def test_decision_table(state, open_sev, root, maint, action, severity):
    view = OpenView(open_sev, root) if open_sev else None
    decision = decide(state, 1, view, maint)
    assert (decision.action, decision.severity) == (action, severity)


async def test_a_target_flapping_at_every_check_for_30_minutes_opens_exactly_one_incident(sessionmaker, clock):
    mon = await server_with_monitor(sessionmaker, "web-1")
    await channel(sessionmaker, "cust", customer_id=(await _customer_of(sessionmaker, mon)))
    eng = engine(sessionmaker, clock)
    state = "UP"
    for _ in range(60):  # a check every 30 s for 30 minutes, each one flipping the state
        new = "DOWN" if state == "UP" else "UP"
        await flip(sessionmaker, mon.id, clock.now(), state, new)
        state = new
        await step(eng)
        clock.advance(30)
    (only,) = await incidents(sessionmaker)
    assert only.status == Status.TRIGGERED and only.flap_count == 29
    clock.advance(HOLD)
    await step(eng)
    (only,) = await incidents(sessionmaker)
    assert only.status == Status.RESOLVED
    assert [n.kind for n in await notices(sessionmaker)] == ["opened", "resolved"]


async def _customer_of(sessionmaker, mon) -> int:
    from monitor.models import Service
    async with sessionmaker() as s:
        return (await s.execute(select(Service.customer_id).where(Service.id == mon.service_id))).scalar_one()


async def test_a_switch_outage_opens_one_urgent_incident_listing_every_server_and_one_notice_per_customer(
        sessionmaker, clock):
    device, sw = await switch_with_monitor(sessionmaker)
    children = [await server_with_monitor(sessionmaker, f"srv-{i}", device_id=device.id) for i in range(7)]
    customers = [await _customer_of(sessionmaker, m) for m in children]
    for i in range(7, 20):  # 20 servers of 7 customers
        children.append(await server_with_monitor(sessionmaker, f"srv-{i}", device_id=device.id,
                                                  customer_id=customers[i % 7]))
    channels = [await channel(sessionmaker, f"cust-{c}", customer_id=c) for c in customers]
    noc = await channel(sessionmaker, "noc", Audience.NOC)
    eng = engine(sessionmaker, clock)
    # Children may be reported before the switch itself; all share the switch's incident.
    for m in children[:5]:
        await flip(sessionmaker, m.id, clock.now(), "UP", "UNREACHABLE", root=sw.id)
    await flip(sessionmaker, sw.id, clock.now(), "UP", "DOWN")
    for m in children[5:]:
        await flip(sessionmaker, m.id, clock.now(), "UP", "UNREACHABLE", root=sw.id)
    await step(eng)
    (inc,) = await incidents(sessionmaker)
    assert inc.severity == Severity.URGENT and inc.monitor_id == sw.id
    servers = await count(sessionmaker, func.distinct(IncidentAffected.server_id),
                          IncidentAffected.incident_id == inc.id)
    assert servers == 20
    opened = sorted(n.channel_id for n in await notices(sessionmaker, kind="opened"))
    assert opened == sorted([c.id for c in channels] + [noc.id])  # one per customer, one for the NOC


async def test_a_restart_in_the_middle_of_an_incident_keeps_exactly_one_incident(db, clock):
    from monitor.db import make_engine, make_sessionmaker

    mon = await server_with_monitor(db.sessionmaker, "web-1")
    await flip(db.sessionmaker, mon.id, clock.now(), "UP", "DOWN")
    await step(engine(db.sessionmaker, clock))
    clock.advance(60)
    await flip(db.sessionmaker, mon.id, clock.now(), "DOWN", "DEGRADED")
    await flip(db.sessionmaker, mon.id, clock.now(), "DEGRADED", "DOWN")
    # A new process: new engine, new connection pool, same database.
    fresh = make_engine(db.url)
    try:
        await step(engine(make_sessionmaker(fresh), clock))
    finally:
        await fresh.dispose()
    (only,) = await incidents(db.sessionmaker)
    assert only.status == Status.TRIGGERED and only.severity == Severity.URGENT


async def test_resolution_then_a_new_failure_opens_a_new_linked_incident(sessionmaker, clock):
    mon = await server_with_monitor(sessionmaker, "web-1")
    eng = engine(sessionmaker, clock)
    opened = clock.now()
    await flip(sessionmaker, mon.id, opened, "UP", "DOWN")
    await step(eng)
    clock.advance(600)
    await flip(sessionmaker, mon.id, clock.now(), "DOWN", "UP")
    await step(eng)
    clock.advance(HOLD)
    await step(eng)
    clock.advance(3600)
    await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
    await step(eng)
    first, second = await incidents(sessionmaker)
    assert first.status == Status.RESOLVED and first.duration_s == 600
    assert second.status == Status.TRIGGERED and second.previous_incident_id == first.id
    assert first.open_key is None  # never reopened


async def test_an_important_incident_is_raised_to_urgent_and_never_lowered(sessionmaker, clock):
    mon = await server_with_monitor(sessionmaker, "web-1")
    eng = engine(sessionmaker, clock)
    await flip(sessionmaker, mon.id, clock.now(), "UP", "DEGRADED")
    await step(eng)
    assert (await incidents(sessionmaker))[0].severity == Severity.IMPORTANT
    await flip(sessionmaker, mon.id, clock.advance(30), "DEGRADED", "DOWN")
    await flip(sessionmaker, mon.id, clock.advance(30), "DOWN", "DEGRADED")
    await step(eng)
    (only,) = await incidents(sessionmaker)
    assert only.severity == Severity.URGENT
    kinds = await count(sessionmaker, IncidentEvent.id, IncidentEvent.kind == "upgraded")
    assert kinds == 1


async def test_no_incident_opens_inside_a_maintenance_window(sessionmaker, clock):
    mon = await server_with_monitor(sessionmaker, "web-1")

    async def in_maintenance(session, monitor_id, at):
        return monitor_id == mon.id

    eng = engine(sessionmaker, clock, in_maintenance=in_maintenance)
    await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
    await step(eng)
    assert await incidents(sessionmaker) == []
    assert await count(sessionmaker, Flip.id, Flip.processed_at.is_(None)) == 0


async def test_two_engines_share_the_flips_without_double_processing(sessionmaker, clock):
    monitors = [await server_with_monitor(sessionmaker, f"web-{i}") for i in range(10)]
    for m in monitors:
        await flip(sessionmaker, m.id, clock.now(), "UP", "DOWN")
    a, b = engine(sessionmaker, clock), engine(sessionmaker, clock)
    done = await asyncio.gather(a.process_pending(), b.process_pending())
    assert sum(done) == 10
    assert len(await incidents(sessionmaker)) == 10
    assert await count(sessionmaker, Flip.id, Flip.attempts == 1) == 10


async def test_the_engine_wakes_on_the_event_and_wakes_the_next_stage(sessionmaker, clock):
    mon = await server_with_monitor(sessionmaker, "web-1")
    downstream = asyncio.Event()
    eng = IncidentEngine(sessionmaker, clock, EngineConfig(sweep_interval_s=60), downstream=[downstream])
    task = asyncio.create_task(eng.run())
    try:
        await asyncio.sleep(0)
        await flip(sessionmaker, mon.id, clock.now(), "UP", "DOWN")
        eng.wake.set()
        await asyncio.wait_for(downstream.wait(), 5)
        assert len(await incidents(sessionmaker)) == 1
    finally:
        eng.stop()
        await asyncio.wait_for(task, 5)


async def test_a_start_up_burst_of_recoveries_is_claimed_at_once_and_a_real_failure_still_opens(
        sessionmaker, clock):
    monitors = [await server_with_monitor(sessionmaker, f"web-{i}") for i in range(30)]
    eng = engine(sessionmaker, clock)
    await flip(sessionmaker, monitors[0].id, clock.now(), "UP", "DOWN")
    await step(eng)
    for m in monitors:  # e.g. every monitor's first UNKNOWN -> UP after a restart, and web-0 recovering
        await flip(sessionmaker, m.id, clock.advance(1), "UNKNOWN", "UP")
    await flip(sessionmaker, monitors[1].id, clock.advance(1), "UP", "DOWN")
    assert await eng.process_pending() == 31
    first, second = await incidents(sessionmaker)
    assert first.recovering_since is not None and second.monitor_id == monitors[1].id
    assert await count(sessionmaker, Flip.id, Flip.processed_at.is_(None)) == 0
