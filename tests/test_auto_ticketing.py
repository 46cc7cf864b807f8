"""Auto-ticketing: every incident opens exactly one ticket in the desk's queue, closed when it resolves."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from incidents.engine import EngineConfig, IncidentEngine
from incidents.lifecycle import resolve
from monitor.accounts import Principal, Role, create_user
from tests.incident_support import after_passes, flip, incidents, server_with_monitor, switch_with_monitor
from tickets.auto_ticketing import AutoTicketer
from tickets.models import Ticket, TicketMessage


async def tickets(sessionmaker) -> list[Ticket]:
    async with sessionmaker() as s:
        return list((await s.execute(select(Ticket).order_by(Ticket.id))).scalars())


async def down(sessionmaker, clock, mon, state="DOWN") -> None:
    await flip(sessionmaker, mon.id, clock.now(), "UP", state)
    await IncidentEngine(sessionmaker, clock, EngineConfig(recovery_hold_s=0)).process_pending()


async def test_each_incident_opens_exactly_one_ticket_with_its_priority_for_the_owning_service(
        sessionmaker, clock):
    web = await server_with_monitor(sessionmaker, "web-1")
    db = await server_with_monitor(sessionmaker, "db-1")
    await down(sessionmaker, clock, web)
    await down(sessionmaker, clock, db, "DEGRADED")
    ticketer = AutoTicketer(sessionmaker, clock)
    assert await ticketer.run_once() == 2
    assert await ticketer.run_once() == 0
    found = await tickets(sessionmaker)
    assert [(t.service_id, t.priority, t.source) for t in found] == [
        (web.service_id, "urgent", "monitoring"), (db.service_id, "important", "monitoring")]
    assert [t.incident_id for t in found] == [i.id for i in await incidents(sessionmaker)]


async def test_two_ticketers_racing_open_one_ticket_per_incident(sessionmaker, clock):
    for i in range(8):
        await down(sessionmaker, clock, await server_with_monitor(sessionmaker, f"web-{i}"))
    a, b = AutoTicketer(sessionmaker, clock), AutoTicketer(sessionmaker, clock)
    done = await asyncio.gather(a.run_once(), b.run_once())
    assert sum(done) == 8 and len(await tickets(sessionmaker)) == 8


async def test_the_ticket_closes_with_the_incident_summary_when_it_resolves(sessionmaker, clock):
    web = await server_with_monitor(sessionmaker, "web-1")
    await down(sessionmaker, clock, web)
    ticketer = AutoTicketer(sessionmaker, clock)
    await ticketer.run_once()
    (inc,) = await incidents(sessionmaker)
    async with sessionmaker() as s, s.begin():
        user = await create_user(s, "nora", Role.NOC)
    noc = Principal(user.id, user.username, Role.NOC)
    await resolve(sessionmaker, noc, inc.id, clock.advance(1800), "cable replaced")
    assert await ticketer.run_once() == 1
    assert await ticketer.run_once() == 0
    (ticket,) = await tickets(sessionmaker)
    assert ticket.status == "closed" and ticket.closed_at == clock.now()
    async with sessionmaker() as s:
        (msg,) = (await s.execute(select(TicketMessage).where(TicketMessage.ticket_id == ticket.id))).scalars()
    assert "برطرف شد" in msg.body and "۳۰ دقیقه" in msg.body


async def test_an_infrastructure_incident_without_an_owning_service_opens_no_ticket(sessionmaker, clock):
    _, sw = await switch_with_monitor(sessionmaker)
    await down(sessionmaker, clock, sw)
    assert await AutoTicketer(sessionmaker, clock).run_once() == 1  # claimed, nothing to open
    assert await tickets(sessionmaker) == []
    assert (await incidents(sessionmaker))[0].ticket_opened_at == clock.now()


async def _any_ticket(sessionmaker) -> bool:
    return bool(await tickets(sessionmaker))


async def test_the_ticketer_wakes_when_the_engine_commits(sessionmaker, clock):
    web = await server_with_monitor(sessionmaker, "web-1")
    ticketer = AutoTicketer(sessionmaker, clock, sweep_interval_s=60)
    engine = IncidentEngine(sessionmaker, clock, EngineConfig(sweep_interval_s=60), downstream=[ticketer.wake])
    tasks = [asyncio.create_task(engine.run()), asyncio.create_task(ticketer.run())]
    try:
        await flip(sessionmaker, web.id, clock.now(), "UP", "DOWN")
        engine.wake.set()
        # The sweeps would take a minute: only the wake-up can bring the ticket within the bound.
        await after_passes(ticketer.passed, lambda: _any_ticket(sessionmaker))
        assert len(await tickets(sessionmaker)) == 1
    finally:
        engine.stop()
        ticketer.stop()
        await asyncio.gather(*tasks)
