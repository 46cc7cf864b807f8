"""A real Prometheus (Debian's binary) scrapes the running service on loopback, and every query of every
Grafana panel returns data through Prometheus's HTTP API."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from dashboards.grafana_build import build
from monitor.accounts import Role, create_user, issue_token
from monitor.settings import load_settings
from negahban.service import build_service

pytestmark = pytest.mark.integration
PROMETHEUS = Path("/usr/bin/prometheus")
# Grafana's template variables, replaced the way Grafana would for "All" and a one-minute range.
SUBSTITUTE = {"$customer": ".*", "$service": ".*", "$__range": "1m", "$__rate_interval": "1m"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def all_panel_queries() -> list[tuple[str, str, str]]:
    out = []
    for name, text in build().items():
        for panel in json.loads(text)["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for k, v in SUBSTITUTE.items():
                    expr = expr.replace(k, v)
                out.append((name, panel["title"], expr))
    return out


async def _target() -> web.AppRunner:
    app = web.Application()
    async def ok(request):
        return web.Response(text="ok")

    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def _inventory(tmp: Path, port: int) -> Path:
    path = tmp / "inventory.yaml"
    path.write_text(f"""
datacenters: [{{name: dc1, location: tehran}}]
servers: [{{name: web1, address: 127.0.0.1, datacenter: dc1, service: acme-web}}]
customers: [{{name: acme, verified: true, services: [{{name: acme-web}}]}}]
monitors:
  - {{name: acme-home, kind: http, target: "http://127.0.0.1:{port}/", server: web1, service: acme-web,
     interval: 5}}
""", encoding="utf-8")
    return path


@pytest.fixture
async def service(tmp_path):
    target = await _target()
    port = target.addresses[0][1]
    settings = load_settings({}, database_url=f"sqlite+aiosqlite:///{tmp_path}/ngb.db", listen_port=_free_port(),
                             inventory_file=str(_inventory(tmp_path, port)), cookie_secure=False)
    svc = await build_service(settings)
    await svc.start()
    async with svc.sessionmaker() as s, s.begin():
        scraper = await create_user(s, "prometheus", Role.NOC)
        svc.scrape_token = await issue_token(s, scraper.id, "scrape", svc.clock.now())
    try:
        yield svc
    finally:
        await svc.stop()
        await target.cleanup()


@pytest.fixture
def prometheus(service, tmp_path):
    if not PROMETHEUS.exists():
        pytest.fail("prometheus missing: apt-get install prometheus")
    web_port = _free_port()
    config = tmp_path / "prometheus.yml"
    token_file = tmp_path / "negahban.token"
    token_file.write_text(service.scrape_token, encoding="utf-8")
    target = f"127.0.0.1:{service.settings.listen_port}"
    # The documented scrape config (README): a NOC service account's token in a file; and one without.
    config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: negahban
    authorization: {{credentials_file: {token_file}}}
    static_configs: [{{targets: ["{target}"]}}]
  - job_name: anonymous
    static_configs: [{{targets: ["{target}"]}}]
""", encoding="utf-8")
    proc = subprocess.Popen(
        [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{web_port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"))  # noqa: SIM115
    yield f"http://127.0.0.1:{web_port}"
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


async def _query(http: aiohttp.ClientSession, base: str, expr: str) -> list | None:
    try:
        async with http.get(f"{base}/api/v1/query", params={"query": expr}) as resp:
            body = await resp.json()
    except (aiohttp.ClientError, ValueError):
        return None
    assert body.get("status") != "error" or body.get("errorType") != "bad_data", f"{expr}: {body}"
    return body.get("data", {}).get("result") if body.get("status") == "success" else None


async def _wait_for_data(base: str, queries: list[tuple[str, str, str]], bound_s: float) -> dict:
    """Poll until every query returns at least one series, or the bound passes; return the empty ones."""
    loop = asyncio.get_running_loop()
    deadline, missing = loop.time() + bound_s, {q[2]: q for q in queries}
    async with aiohttp.ClientSession() as http:
        while missing and loop.time() < deadline:
            for expr in list(missing):
                if await _query(http, base, expr):
                    del missing[expr]
            if missing:
                await asyncio.sleep(0.5)  # polling interval under a deadline
    return missing


async def test_every_grafana_panel_query_returns_data_from_a_real_prometheus(service, prometheus):
    checks = service.scheduler
    await checks.reload()
    for cfg in list(checks.catalog.values()):
        await service.runner.check(cfg)
    missing = await _wait_for_data(prometheus, all_panel_queries(), bound_s=60)
    assert not missing, "panels without data:\n" + "\n".join(f"{d} / {t}: {e}" for d, t, e in missing.values())


async def test_prometheus_without_the_token_is_refused_and_sees_no_customer(service, prometheus):
    missing = await _wait_for_data(prometheus, [("", "", 'up{job="anonymous"} == 0'),
                                                ("", "", 'up{job="negahban"} == 1')], bound_s=60)
    assert not missing
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{service.settings.listen_port}/metrics") as resp:
            assert resp.status == 401 and "acme" not in await resp.text()
        result = await _query(http, prometheus, 'count({job="anonymous", customer!=""})')
    assert not result  # no series of the anonymous job names a customer
