"""The walking skeleton end to end: a real HTTP target on loopback, probed by the scheduler's runner,
evaluated, stored, and exposed on /metrics with blackbox_exporter's names."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from monitor.accounts import Role, create_user, issue_token
from monitor.db import make_engine, make_sessionmaker
from monitor.inventory import apply_inventory, parse_inventory
from monitor.models import Flip, ProbeResultRow
from monitor.settings import load_settings
from negahban.service import build_service
from tests.loopback import status_target


async def test_a_probe_becomes_a_stored_result_a_flip_and_a_metric(db, clock):
    status = {"code": 200}
    target = await status_target(status)
    port = target.addresses[0][1]
    inv, specs = parse_inventory(f"""
customers: [{{name: acme, verified: true, services: [{{name: acme-web}}]}}]
monitors:
  - {{name: acme-home, kind: http, target: "http://127.0.0.1:{port}/", service: acme-web, interval: 30,
     policy: {{down_after: 2}}}}
""")
    await apply_inventory(db.sessionmaker, inv, specs, clock.now())
    registry = CollectorRegistry()
    service = await build_service(load_settings({}, database_url=db.url), clock=clock, registry=registry)
    try:
        await service.scheduler.reload()
        cfg = next(iter(service.scheduler.catalog.values()))
        assert (await service.runner.check(cfg)).flip.new_state == "UP"
        status["code"] = 500
        first = await service.runner.check(cfg)
        assert first.flip is None and first.retry_soon  # one failure is not yet an outage
        clock.advance(5)
        second = await service.runner.check(cfg)
        assert second.flip.new_state == "DOWN" and second.flip.reason == "status_mismatch"
        labels = {"monitor": "acme-home", "service": "acme-web", "customer": "acme", "location": "",
                  "kind": "http", "instance": cfg.spec.target}
        async with db.sessionmaker() as s, s.begin():
            scraper = await create_user(s, "prometheus", Role.NOC)
            token = await issue_token(s, scraper.id, "scrape", clock.now())
        async with TestClient(TestServer(service.app, host="127.0.0.1")) as client:
            anonymous = await client.get("/metrics")
            assert anonymous.status == 401 and "acme" not in await anonymous.text()
            assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
            text = await (await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})).text()
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for fam in text_string_to_metric_families(text) for s in fam.samples}
        assert samples[("probe_success", tuple(sorted(labels.items())))] == 0.0
        assert f'probe_success{{customer="acme",instance="{cfg.spec.target}",kind="http",location="",' \
               'monitor="acme-home"' in text
        assert "probe_duration_seconds{" in text
        await service.runner.flush()  # results without a flip are written in batches
        async with db.sessionmaker() as s:
            flips = (await s.execute(select(Flip.new_state).order_by(Flip.id))).scalars().all()
            results = (await s.execute(select(ProbeResultRow.outcome))).scalars().all()
        assert flips == ["UP", "DOWN"] and sorted(results) == ["down", "down", "up"]
    finally:
        await service.probe_ctx.close()
        await service.engine.dispose()
        await target.cleanup()


async def test_the_service_stops_cleanly_with_a_check_in_flight(db, clock):
    arrived, gate = asyncio.Event(), asyncio.Event()

    async def slow(request):
        arrived.set()
        await gate.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/", slow)
    target = web.AppRunner(app)
    await target.setup()
    await web.TCPSite(target, "127.0.0.1", 0).start()
    port = target.addresses[0][1]
    inv, specs = parse_inventory(f"""
monitors: [{{name: slow, kind: http, target: "http://127.0.0.1:{port}/", timeout_s: 8}}]
""")
    await apply_inventory(db.sessionmaker, inv, specs, clock.now())
    service = await build_service(load_settings({}, database_url=db.url, listen_port=0), clock=clock)
    await service.start()
    clock.advance(60)  # the monitor's planned start (its phase within its 60 s interval) has come
    await service.scheduler.tick()
    await asyncio.wait_for(arrived.wait(), 10)  # the scheduler's first check is at the target
    stopping = asyncio.create_task(service.stop())
    await asyncio.sleep(0)
    assert not stopping.done()
    gate.set()
    await asyncio.wait_for(stopping, 10)
    engine = make_engine(db.url)
    async with make_sessionmaker(engine)() as s:
        outcomes = (await s.execute(select(ProbeResultRow.outcome))).scalars().all()
    await engine.dispose()
    assert outcomes == ["up"]  # the in-flight check finished and was stored before the database closed
    await target.cleanup()
