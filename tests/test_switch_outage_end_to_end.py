"""A switch with 20 servers behind it dies: through the real scheduler, runner and evaluate (the engine's
dependency topology), then the incident engine, exactly one urgent incident lists the 20 servers and each
affected customer gets one notice."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from incidents.engine import EngineConfig, IncidentEngine
from incidents.models import Audience, IncidentAffected, Severity, Status
from monitor.models import Customer
from tests.engine.helpers import Engine, Target, apply_yaml
from tests.incident_support import channel, count, incidents, notices

SERVERS = [f"s{i}" for i in range(20)]
CUSTOMERS = 7


def _inventory(t: Target) -> str:
    customers = "\n".join(f"  - {{name: c{c}, verified: true, services: [{{name: svc-c{c}}}]}}"
                          for c in range(CUSTOMERS))
    servers = "\n".join(f"  - {{name: {s}, address: 127.0.0.1, parent: sw, service: svc-c{i % CUSTOMERS}}}"
                        for i, s in enumerate(SERVERS))
    mons = "\n".join(f'  - {{name: {s}-web, kind: http, target: "{t.url(s)}", interval: 10, timeout_s: 2, '
                     f"server: {s}}}" for s in SERVERS)
    return f"""
devices:
  - {{name: sw, kind: switch, address: 127.0.0.1}}
customers:
{customers}
servers:
{servers}
monitors:
  - {{name: sw-mgmt, kind: http, target: "{t.url('sw')}", interval: 10, timeout_s: 2, device: sw}}
{mons}
"""


@pytest.fixture
async def target():
    t = await Target().start()
    yield t
    await t.close()


async def test_a_switch_outage_through_the_real_runner_opens_one_incident_for_twenty_servers(
        sessionmaker, clock, target):
    await apply_yaml(sessionmaker, _inventory(target), clock.now())
    async with sessionmaker() as s:
        customer_ids = list((await s.execute(select(Customer.id))).scalars())
    channels = [await channel(sessionmaker, f"hook-{c}", customer_id=c) for c in customer_ids]
    noc = await channel(sessionmaker, "noc", Audience.NOC)
    runtime = await Engine.create(sessionmaker, clock)
    incidents_engine = IncidentEngine(sessionmaker, clock, EngineConfig(recovery_hold_s=60))
    try:
        await runtime.scheduler.reload(force=True)
        for _ in range(20):
            await runtime.step(1)
        for path in ("sw", *SERVERS):
            target.status[path] = 503
        for _ in range(40):
            await runtime.step(1)
            await incidents_engine.process_pending()
        (inc,) = await incidents(sessionmaker)
        assert (inc.severity, inc.monitor_id) == (Severity.URGENT, runtime.id("sw-mgmt"))
        servers = await count(sessionmaker, func.distinct(IncidentAffected.server_id),
                              IncidentAffected.incident_id == inc.id)
        assert servers == 20
        opened = sorted(n.channel_id for n in await notices(sessionmaker, kind="opened"))
        assert opened == sorted([c.id for c in channels] + [noc.id])
        target.status.clear()
        for _ in range(120):
            await runtime.step(1)
            await incidents_engine.process_pending()
            await incidents_engine.sweep()
        (inc,) = await incidents(sessionmaker)
        assert inc.status == Status.RESOLVED
        resolved = sorted(n.channel_id for n in await notices(sessionmaker, kind="resolved"))
        assert resolved == opened
    finally:
        await runtime.close()
