"""From a real target on loopback, through the service's runner and ``evaluate``, to incidents and notices."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from incidents.models import Audience, Status
from monitor.inventory import apply_inventory, parse_inventory
from monitor.models import Customer, Flip
from monitor.settings import load_settings
from negahban.service import build_service
from tests.incident_support import after_passes, channel, count, incidents, notices
from tests.loopback import status_target
from tickets.auto_ticketing import AutoTicketer
from tickets.models import Ticket

HOLD_S = 120


async def _service(db, clock, port: int):
    inv, specs = parse_inventory(f"""
customers: [{{name: acme, verified: true, services: [{{name: acme-web}}]}}]
monitors:
  - {{name: acme-home, kind: http, target: "http://127.0.0.1:{port}/", service: acme-web, interval: 30,
     policy: {{down_after: 1, up_after: 1}}}}
""")
    await apply_inventory(db.sessionmaker, inv, specs, clock.now())
    async with db.sessionmaker() as s:
        customer_id = (await s.execute(select(Customer.id))).scalar_one()
    await channel(db.sessionmaker, "acme-hook", Audience.CUSTOMER, customer_id=customer_id)
    service = await build_service(load_settings({}, database_url=db.url, incident_recovery_hold_seconds=HOLD_S),
                                  clock=clock)
    await service.scheduler.reload()
    return service, next(iter(service.scheduler.catalog.values()))


async def _close(service) -> None:
    await service.probe_ctx.close()
    await service.extras["http"].close()
    await service.engine.dispose()


async def test_a_target_flapping_at_every_check_for_30_minutes_opens_exactly_one_incident(db, clock):
    status = {"code": 200}
    target = await status_target(status)
    service, cfg = await _service(db, clock, target.addresses[0][1])
    engine = service.extras["incidents"].engine
    try:
        for i in range(61):  # a check every 30 s for 30 minutes; the answer changes at every check
            status["code"] = 500 if i % 2 else 200
            await service.runner.check(cfg)
            await engine.process_pending()
            await engine.sweep()
            clock.advance(30)
        (only,) = await incidents(db.sessionmaker)
        assert only.status == Status.TRIGGERED
        # The target really flipped (how often depends on evaluate's own flap damping), and each new
        # failure after a recovery was absorbed by the same incident.
        flips = await count(db.sessionmaker, Flip.id)
        assert flips >= 3 and only.flap_count >= 1
        status["code"] = 200
        for _ in range(60):  # stays up until evaluate's flap damping ends and the recovery hold passes
            await service.runner.check(cfg)
            clock.advance(30)
            await engine.process_pending()
            await engine.sweep()
            if (await incidents(db.sessionmaker))[0].status == Status.RESOLVED:
                break
        (only,) = await incidents(db.sessionmaker)
        assert only.status == Status.RESOLVED
        sent = await notices(db.sessionmaker)
        assert [n.kind for n in sent] == ["opened", "resolved"]
        # The customer's webhook reads the Persian subject of its notice, never the monitor's name.
        assert all("acme-home" not in str(n.data) and "source" not in n.data and n.data["title"] == n.subject
                   for n in sent), [n.data for n in sent]
    finally:
        await _close(service)
        await target.cleanup()


async def test_a_committed_flip_reaches_an_incident_through_the_wake_up_not_the_sweep(db, clock):
    status = {"code": 500}
    target = await status_target(status)
    service, cfg = await _service(db, clock, target.addresses[0][1])
    workers = service.extras["incidents"]
    changed = asyncio.Event()
    workers.follow(changed)
    # The periodic sweep would take a minute: only the wake-up can be fast enough for this bound.
    workers.engine.config = type(workers.engine.config)(recovery_hold_s=HOLD_S, sweep_interval_s=60)
    workers.start()
    try:
        await service.runner.check(cfg)
        assert await count(db.sessionmaker, Flip.id) == 1
        await asyncio.wait_for(changed.wait(), 5)
        (inc,) = await incidents(db.sessionmaker)
        # The desk's stage is woken by the same change (its sweep would take a minute).
        ticketer = next(st for st in workers.stages if isinstance(st, AutoTicketer))

        async def ticket_exists() -> bool:
            return bool(await count(db.sessionmaker, Ticket.id, Ticket.incident_id == inc.id))

        await after_passes(ticketer.passed, ticket_exists)
        assert await count(db.sessionmaker, Ticket.id, Ticket.incident_id == inc.id) == 1
    finally:
        await workers.stop()
        await _close(service)
        await target.cleanup()
