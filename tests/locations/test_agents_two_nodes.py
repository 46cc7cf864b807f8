"""Agents and several engine nodes (PostgreSQL): a batch may reach any node; the node holding a monitor votes
its results, the node that took the batch counts them in uptime, and nothing is counted or voted twice."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from dashboards.web.api_agents import INGEST
from dashboards.web.deps import DEPS
from monitor.agents import issue_location_token
from monitor.inventory import apply_inventory, parse_inventory
from monitor.models import LocationResult, RollupFine
from monitor.settings import load_settings
from negahban.service import build_service
from tests.locations.support import flips_of, monitor_id

INVENTORY = """
locations: [{name: east, display_name: شرق}]
monitors:
  - {name: web, kind: tcp, target: '127.0.0.1:9', interval: 30, locations: [east]}
"""


@pytest.fixture
async def nodes(pg_db, clock):
    inv, specs = parse_inventory(INVENTORY)
    await apply_inventory(pg_db.sessionmaker, inv, specs, clock.now())
    async with pg_db.sessionmaker.begin() as s:
        token = await issue_location_token(s, "east", clock.now())
    out = {}
    for name in ("a", "b"):
        svc = await build_service(load_settings({}, database_url=pg_db.url, node_name=name, shards=8),
                                  clock=clock, registry=CollectorRegistry())
        await svc.runner.load_states()
        await svc.scheduler.reload(force=True)
        await svc.scheduler.cluster.start()
        client = TestClient(TestServer(svc.app, host="127.0.0.1"))
        await client.start_server()
        out[name] = (svc, client)
    for _ in range(2):
        for svc, _ in out.values():
            await svc.scheduler.leases()
    yield out, token
    for svc, client in out.values():
        await client.close()
        await svc.probe_ctx.close()
        await svc.extras["http"].close()
        await svc.engine.dispose()


async def test_a_batch_taken_by_the_node_that_does_not_hold_the_monitor_is_voted_by_the_one_that_does(
        nodes, pg_db, clock):
    out, token = nodes
    web = await monitor_id(pg_db, "web")
    holder = next(n for n, (svc, _) in out.items() if svc.scheduler.mine(web))
    other = "b" if holder == "a" else "a"
    assert not out[other][0].scheduler.mine(web)
    inbox = out[holder][0].app[DEPS].services[INGEST].inbox
    assert await inbox() == 0  # the first look only sets where to read from
    for i, outcome in enumerate(("up", "down", "down")):
        clock.advance(30)
        body = {"agent": "east-1", "seq": i + 1, "results": [
            {"monitor_id": web, "at": clock.now().isoformat(), "outcome": outcome, "reason": "refused"}]}
        resp = await out[other][1].post("/api/v1/agent/results", json=body,
                                        headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 200 and (await resp.json())["accepted"] == 1
        assert await inbox() == 1
        assert await inbox() == 0  # each result voted once
    holder_svc, other_svc = out[holder][0], out[other][0]
    assert web not in other_svc.runner.memories
    assert holder_svc.runner.memories[web].state.value == "DOWN"
    assert [f.new_state for f in await flips_of(pg_db, web)] == ["UP", "DOWN"]
    for svc, _ in out.values():
        await svc.runner.flush()
    async with pg_db.sessionmaker() as s:
        checks = (await s.execute(select(func.sum(RollupFine.checks)).where(RollupFine.monitor_id == web))
                  ).scalar_one()
        rows = (await s.execute(select(func.count()).select_from(LocationResult))).scalar_one()
    assert checks == 3 and rows == 3  # counted once, by the node that took them
