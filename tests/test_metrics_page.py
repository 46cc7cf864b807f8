"""/metrics rendered whole, off the loop, once per cache interval: concurrent scrapes share one render, changes
show after the interval, and the cached body never reaches a caller the route refuses."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter

from dashboards.collectors import MetricsHub
from dashboards.metrics import CHUNK_LINES, ProbeExposition
from dashboards.metrics_page import MetricsPage
from dashboards.web.app import METRICS_PAGE, build_app
from dashboards.web.deps import WebDeps
from monitor.accounts import Role, create_user, issue_token
from monitor.catalog import MonitorConfig
from monitor.models import State
from monitor.policy import Policy
from monitor.runner import Latest
from probes import Outcome, ProbeResult


def _latest(i: int, outcome: Outcome = Outcome.UP) -> Latest:
    cfg = MonitorConfig(i, f"m{i}", "http", None, 60.0, Policy(),
                        {"monitor": f"m{i}", "service": f"s{i}", "customer": f"acme-{i}", "location": "thr",
                         "kind": "http", "instance": f"http://127.0.0.{i + 1}/"})
    return Latest(cfg, ProbeResult(outcome, "ok", "", 0.01 * (i + 1)),
                  State.DOWN if outcome is Outcome.DOWN else State.UP)


async def _world(db, clock, ttl_s: float = 5.0):
    latest = {i: _latest(i) for i in range(20)}
    registry = CollectorRegistry()
    checks = Counter("negahban_test_checks", "checks", registry=registry)
    gathers = []

    async def gather(session, now):
        gathers.append(now)
        return []

    hub = MetricsHub(registry, db.sessionmaker, clock)
    hub.add("counting", gather, ttl_s=1.0)  # shorter than the page's: the page decides how often it runs
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=registry,
                   probe_exposition=ProbeExposition(lambda: latest, clock.monotonic), metrics_hub=hub,
                   metrics_cache_seconds=ttl_s)
    async with db.sessionmaker() as s, s.begin():
        noc = await create_user(s, "prometheus", Role.NOC)
        tech = await create_user(s, "tech", Role.TECHNICIAN)
        tokens = {"noc": await issue_token(s, noc.id, "scrape", clock.now()),
                  "tech": await issue_token(s, tech.id, "t", clock.now())}
    return latest, checks, gathers, build_app(deps), tokens


async def test_ten_concurrent_scrapes_cost_one_render_and_get_the_same_body(db, clock):
    latest, checks, gathers, app, tokens = await _world(db, clock)
    auth = {"Authorization": f"Bearer {tokens['noc']}"}
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:

        async def scrape() -> bytes:
            resp = await client.get("/metrics", headers=auth)
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
            return await resp.read()

        bodies = await asyncio.gather(*(scrape() for _ in range(10)))
    assert len(set(bodies)) == 1
    assert app[METRICS_PAGE].renders == 1 and len(gathers) == 1
    body = bodies[0].decode()
    assert body.count("probe_success{") == 20 and "negahban_test_checks_total 0.0" in body


async def test_changes_appear_once_the_cache_interval_has_passed(db, clock):
    latest, checks, gathers, app, tokens = await _world(db, clock, ttl_s=5.0)
    auth = {"Authorization": f"Bearer {tokens['noc']}"}
    down = 'probe_success{customer="acme-3",instance="http://127.0.0.4/",kind="http",location="thr",' \
           'monitor="m3",service="s3"} 0.0'
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        first = await (await client.get("/metrics", headers=auth)).text()
        latest[3] = _latest(3, Outcome.DOWN)
        checks.inc()
        clock.advance(4.9)
        cached = await (await client.get("/metrics", headers=auth)).text()
        clock.advance(0.1)
        fresh = await (await client.get("/metrics", headers=auth)).text()
    assert cached == first and down not in cached and "negahban_test_checks_total 0.0" in cached
    assert down in fresh and "negahban_test_checks_total 1.0" in fresh
    assert app[METRICS_PAGE].renders == 2 and len(gathers) == 2


async def test_the_cached_body_is_not_given_to_callers_the_route_refuses(db, clock):
    latest, checks, gathers, app, tokens = await _world(db, clock)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        warm = await client.get("/metrics", headers={"Authorization": f"Bearer {tokens['noc']}"})
        assert warm.status == 200 and "acme-1" in await warm.text()
        anonymous = await client.get("/metrics")
        assert anonymous.status == 401 and "acme" not in await anonymous.text()
        technician = await client.get("/metrics", headers={"Authorization": f"Bearer {tokens['tech']}"})
        assert technician.status == 403 and "acme" not in await technician.text()
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-a-token"})
        assert wrong.status == 401 and "acme" not in await wrong.text()
    assert app[METRICS_PAGE].renders == 1


async def test_a_page_without_exposition_or_hub_renders_the_registry_alone(clock):
    registry = CollectorRegistry()
    Counter("negahban_alone", "x", registry=registry).inc(3)
    page = MetricsPage(registry, clock, ttl_s=0)
    first = await page.body()
    second = await page.body()
    assert b"negahban_alone_total 3.0" in first and first == second
    assert page.renders == 2  # a zero interval caches nothing


async def test_a_body_of_many_pieces_arrives_whole_and_as_the_exposition_renders_it(db, clock):
    latest, checks, gathers, app, tokens = await _world(db, clock)
    latest.update({i: _latest(i, Outcome.DOWN if i % 9 == 0 else Outcome.UP) for i in range(20, 2 * CHUNK_LINES + 7)})
    page = app[METRICS_PAGE]
    chunks = await page.chunks()
    assert len(chunks) > 6  # three families of 2,007 lines each, in pieces of CHUNK_LINES
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        resp = await client.get("/metrics", headers={"Authorization": f"Bearer {tokens['noc']}"})
        body = await resp.read()
    expected = ProbeExposition(lambda: latest, clock.monotonic).render()
    assert body.startswith(expected) and body == b"".join(chunks)
    assert int(resp.headers["Content-Length"]) == len(body)
    assert body.count(b"\nprobe_success{") == len(latest)
