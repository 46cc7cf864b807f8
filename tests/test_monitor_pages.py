"""The staff monitor pages on the real service (built by ``build_service`` with a ManualClock, served by aiohttp
on loopback, SQLite and PostgreSQL): who may open them, the state and latest check from the runner's memory
after real checks of loopback targets, uptime computed from flips the test wrote, the last 50 flips, the open
incident made by the real incident engine, the parents from the runner's topology, a voted monitor's table of
locations with a blind one, bad filters named, escaping. Last, one story in real Chromium: NOC screen -> a
monitor's tile -> its page."""

from __future__ import annotations

import dataclasses
import re
import socket
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import select, update

from dashboards.web.fa import duration_fa, percent
from dashboards.web.html import jalali
from monitor.accounts import Role, create_user
from monitor.models import Flip, Monitor, MonitorState, Service
from monitor.settings import load_settings
from negahban.service import build_service
from tests.engine.helpers import Target, apply_yaml
from tests.incident_support import incidents

HTML = {"Accept": "text/html,application/xhtml+xml"}
NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# web1-http's history, written by the test: up since ten days ago, down for an hour three hours ago.
FIRST_UP = NOW - timedelta(days=10)
DOWN_AT, UP_AGAIN = NOW - timedelta(hours=3), NOW - timedelta(hours=2)


def _dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _inventory(t: Target) -> str:
    return f"""
locations:
  - {{name: east, display_name: شرق, canaries: ['tcp:127.0.0.1:{t.port}']}}
  - {{name: west, display_name: غرب, canaries: ['tcp:127.0.0.1:{t.port}']}}
devices:
  - {{name: sw1, kind: switch, address: 127.0.0.1}}
customers: [{{name: acme, verified: true, services: [{{name: acme-web}}]}}]
servers:
  - {{name: web1, address: 127.0.0.1, parent: sw1, service: acme-web}}
monitors:
  - {{name: sw1-http, kind: http, target: "{t.url('sw')}", interval: 10, timeout_s: 2, device: sw1}}
  - {{name: web1-http, kind: http, target: "{t.url('web')}", interval: 10, timeout_s: 2, server: web1}}
  - {{name: api-http, kind: http, target: "{t.url('api')}", interval: 10, timeout_s: 2, service: acme-web}}
  - {{name: web-voted, kind: tcp, target: '127.0.0.1:{t.port}', service: acme-web, interval: 30,
     locations: [east, west]}}
"""


async def _ids(sm) -> dict[str, int]:
    async with sm() as s:
        return dict((await s.execute(select(Monitor.name, Monitor.id))).all())


async def _history(sm, mid: int) -> None:
    """Old flips, already handled by the incident engine (``processed_at``): history, not news."""
    async with sm.begin() as s:
        s.add(Flip(monitor_id=mid, at=FIRST_UP, old_state="UNKNOWN", new_state="UP", reason="first_check",
                   processed_at=FIRST_UP))
        s.add(Flip(monitor_id=mid, at=DOWN_AT, old_state="UP", new_state="DOWN", reason="status_mismatch",
                   message="HTTP 503", processed_at=DOWN_AT))
        s.add(Flip(monitor_id=mid, at=UP_AGAIN, old_state="DOWN", new_state="UP", reason="recovered",
                   processed_at=UP_AGAIN))
        s.add(MonitorState(monitor_id=mid, state="UP", since=UP_AGAIN, last_check_at=UP_AGAIN))


class World:
    def __init__(self, db, clock) -> None:
        self.db, self.clock, self.target = db, clock, Target()

    async def start(self) -> World:
        self.clock.set(NOW)
        await self.target.start()
        sm = self.db.sessionmaker
        await apply_yaml(sm, _inventory(self.target), self.clock.now())
        self.ids = await _ids(sm)
        await _history(sm, self.ids["web1-http"])
        async with sm.begin() as s:
            for name, role in (("nora", Role.NOC), ("tim", Role.TECHNICIAN), ("fred", Role.FINANCE)):
                await create_user(s, name, role, password=f"{name}-pass-1")
            cid = (await s.execute(select(Service.customer_id).where(Service.name == "acme-web"))).scalar()
            await create_user(s, "alice", Role.CUSTOMER, customer_id=cid, password="alice-pass-1")
        settings = load_settings({}, database_url=self.db.url, incident_recovery_hold_seconds=60,
                                 cookie_secure=False)
        self.service = await build_service(settings, clock=self.clock, registry=CollectorRegistry())
        await self.service.runner.load_states()
        await self.service.scheduler.reload(force=True)
        self.client = TestClient(TestServer(self.service.app, host="127.0.0.1"))
        await self.client.start_server()
        return self

    def cfg(self, name: str):
        return self.service.scheduler.catalog[self.ids[name]]

    async def check(self, name: str, times: int = 1) -> None:
        for _ in range(times):
            await self.service.runner.check(self.cfg(name))
            self.clock.advance(10)

    async def close(self) -> None:
        await self.client.close()
        await self.target.close()
        await self.service.probe_ctx.close()
        await self.service.extras["http"].close()
        await self.service.engine.dispose()


@pytest.fixture
async def world(db, clock):
    w = await World(db, clock).start()
    try:
        yield w
    finally:
        await w.close()


async def _login(client, username: str) -> None:
    form = await (await client.get("/login")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    resp = await client.post("/login", data={"username": username, "password": f"{username}-pass-1",
                                             "csrf": token, "next": ""},
                             cookies={"ngb_login_csrf": token}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    client.session.cookie_jar.update_cookies({"ngb_session": resp.cookies["ngb_session"].value})


async def _page(client, path: str, status: int = 200) -> str:
    resp = await client.get(path, headers=HTML)
    assert resp.status == status, (resp.status, await resp.text())
    return await resp.text()


def _rows(html: str, cls: str) -> list[str]:
    return re.findall(rf'<tr class="{cls}[^"]*"[^>]*>(.*?)</tr>', html, re.S)


def _cell(html: str, selector_class: str) -> str:
    inner = re.search(rf'class="{selector_class}"[^>]*>(.*?)</(?:dd|td)>', html, re.S).group(1)
    return unescape(re.sub(r"<[^>]+>", "", inner)).strip()


async def test_anonymous_is_sent_to_login_and_customers_and_finance_are_refused(world):
    client, mid = world.client, world.ids["web1-http"]
    for path in (f"/monitors/{mid}", "/monitors"):
        resp = await client.get(path, headers=HTML, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == f"/login?next={path}"
    for who in ("alice", "fred"):
        await _login(client, who)
        for path in (f"/monitors/{mid}", "/monitors"):
            html = await _page(client, path, 403)
            assert "دسترسی ندارید" in html and "web1-http" not in html
    for who in ("tim", "nora"):
        await _login(client, who)
        assert "web1-http" in await _page(client, f"/monitors/{mid}")
    await _page(client, "/monitors/999999", 404)


async def test_the_page_shows_the_flips_and_the_uptime_they_make(world):
    await _login(world.client, "nora")
    html = await _page(world.client, f"/monitors/{world.ids['web1-http']}")
    flips = _rows(html, "flip")
    assert len(flips) == 3
    # Newest first, each with its Jalali time and reason.
    for row, (at, reason) in zip(flips, [(UP_AGAIN, "recovered"), (DOWN_AT, "status_mismatch"),
                                         (FIRST_UP, "first_check")], strict=True):
        assert jalali(at) in row and reason in row
    assert "HTTP 503" in flips[1]
    down_s = (UP_AGAIN - DOWN_AT).total_seconds()
    for label, span in (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30))):
        known = min(span, NOW - FIRST_UP).total_seconds()  # nothing is known before the first flip
        row = re.search(rf'data-range="{label}">(.*?)</tr>', html, re.S).group(1)
        assert f'class="ratio">{percent(1 - down_s / known)}<' in row, (label, row)
        assert f'class="down">{duration_fa(down_s)}<' in row
    assert 'data-state="UP"' in html and jalali(UP_AGAIN) in _cell(html, "since")


async def test_the_state_and_the_latest_check_come_from_the_runner_and_the_parents_from_its_topology(world):
    await world.check("sw1-http")
    await world.check("web1-http")
    await _login(world.client, "tim")
    html = await _page(world.client, f"/monitors/{world.ids['web1-http']}")
    assert _cell(html, "kind") == "http" and world.target.url("web") in html
    assert "web1" in _cell(html, "server") and "acme-web" in _cell(html, "service")
    assert "acme" in _cell(html, "customer")
    latest = re.search(r'<section class="card" id="latest">(.*?)</section>', html, re.S).group(1)
    assert 'data-outcome="up"' in latest and "برقرار" in latest
    memory = world.service.runner.latest[world.ids["web1-http"]]
    phases = re.findall(r'data-phase="([a-z_]+)"', latest)
    assert phases and set(phases) == set(memory.result.phases)
    assert jalali(world.service.runner.memories[world.ids["web1-http"]].last_check_at) in html
    parents = _rows(html, "parent")
    assert len(parents) == 1 and "sw1-http" in parents[0] and 'data-state="UP"' in html.split("parents")[-1]
    assert f'href="/monitors/{world.ids["sw1-http"]}"' in parents[0]
    # The switch's own page: no parents, no flips written by the test, the first check's flip from the runner.
    html = await _page(world.client, f"/monitors/{world.ids['sw1-http']}")
    assert _rows(html, "parent") == [] and len(_rows(html, "flip")) == 1 and "first_check" in html


async def test_a_failing_monitor_links_its_open_incident_and_the_incident_page_links_back(world):
    world.target.status["api"] = 503
    await world.check("api-http", 5)
    await world.service.extras["incidents"].engine.process_pending()
    (inc,) = await incidents(world.db.sessionmaker)
    await _login(world.client, "nora")
    mid = world.ids["api-http"]
    html = await _page(world.client, f"/monitors/{mid}")
    assert f'<a class="open-incident" href="/incidents/{inc.id}">' in html
    assert 'data-state="DOWN"' in html and "status_mismatch" in html and "503" in html
    incident_html = await _page(world.client, f"/incidents/{inc.id}")
    assert f'href="/monitors/{mid}"' in incident_html
    healthy = await _page(world.client, f"/monitors/{world.ids['web1-http']}")
    assert "open-incident" not in healthy


async def test_a_voted_monitor_shows_each_locations_latest_check_and_the_blind_one(world):
    runner, cfg = world.service.runner, world.cfg("web-voted")
    dead = dataclasses.replace(cfg, spec=cfg.spec.model_copy(update={"target": f"127.0.0.1:{_dead_port()}"}))
    up, refused = await runner.probe(cfg), await runner.probe(dead)
    assert (up.outcome, refused.outcome) == ("up", "down")
    at = world.clock.now()
    await runner.apply_located(cfg, "east", up, at)
    await runner.apply_located(cfg, "west", refused, at)
    await runner.location_canary("west", 0, refused)  # west's only canary fails: west is blind
    await _login(world.client, "nora")
    html = await _page(world.client, f"/monitors/{cfg.id}")
    rows = dict(re.findall(r'<tr class="location[^"]*" data-location="(\w+)" data-outcome="(\w*)"', html))
    assert rows == {"east": "up", "west": "down"}
    (west,) = [r for r in _rows(html, "location") if "غرب" in r]
    assert "blind" in west and refused.reason in west and jalali(at) in west
    assert "class=\"warning blind-list\"" in html and "east" not in html.split("blind-list")[1].split("</p>")[0]
    # A monitor of the central location alone has no table.
    assert 'id="locations"' not in await _page(world.client, f"/monitors/{world.ids['web1-http']}")


async def test_the_page_lists_the_last_fifty_flips_newest_first(world):
    mid = world.ids["api-http"]
    async with world.db.sessionmaker.begin() as s:
        for i in range(60):
            old, new = ("UP", "DOWN") if i % 2 == 0 else ("DOWN", "UP")
            s.add(Flip(monitor_id=mid, at=NOW - timedelta(hours=60 - i), old_state=old, new_state=new,
                       reason=f"r{i}", processed_at=NOW))
    await _login(world.client, "nora")
    flips = _rows(await _page(world.client, f"/monitors/{mid}"), "flip")
    assert len(flips) == 50 and "r59" in flips[0] and "r10" in flips[-1]
    assert not any(">r9<" in f for f in flips)


async def test_the_list_filters_by_state_and_kind_and_a_bad_value_is_a_400_naming_the_field(world):
    await world.check("sw1-http")
    await _login(world.client, "nora")
    names = lambda html: re.findall(r'class="monitor-link" href="/monitors/\d+"><bdi>([^<]+)<', html)  # noqa: E731
    every = sorted(await _ids(world.db.sessionmaker))  # the service adds its own (self-check) monitors
    assert "web1-http" in every and names(await _page(world.client, "/monitors")) == every
    assert names(await _page(world.client, "/monitors?kind=tcp")) == ["web-voted"]
    assert names(await _page(world.client, "/monitors?state=UP")) == ["sw1-http", "web1-http"]
    assert names(await _page(world.client, "/monitors?state=UP&kind=tcp")) == []
    for query, field in (("state=FINE", "state"), ("kind=ftp", "kind"), ("page=0", "page")):
        html = await _page(world.client, f"/monitors?{query}", 400)
        assert f'<code dir="ltr">{field}</code>' in html and query.split("=")[1] in html
    html = await _page(world.client, "/monitors?state=%3Cscript%3E", 400)
    assert "<script>" not in html and "&lt;script&gt;" in html


async def test_a_monitor_name_with_markup_is_escaped_and_staff_may_read_english(world):
    mid = world.ids["web1-http"]
    async with world.db.sessionmaker.begin() as s:
        await s.execute(update(Monitor).where(Monitor.id == mid).values(name='<script>alert("x")</script>'))
    await _login(world.client, "nora")
    for path in (f"/monitors/{mid}", "/monitors"):
        html = await _page(world.client, path)
        assert '<script>alert("x")' not in html and "&lt;script&gt;alert(" in html
    html = await _page(world.client, f"/monitors/{mid}")
    assert "آخرین بررسی" in html and 'dir="rtl"' in html
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
    resp = await world.client.post("/lang", data={"lang": "en", "csrf": csrf, "next": f"/monitors/{mid}"},
                                   allow_redirects=False)
    assert resp.status == 303
    html = await _page(world.client, f"/monitors/{mid}")
    assert "Latest check" in html and "Last 24 hours" in html and 'dir="ltr"' in html


# --- one story in a real browser ----------------------------------------------------------------------

@pytest.fixture
def chromium_path() -> str:
    from dashboards.pdf import CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium missing: apt-get install chromium")
    return CHROMIUM


@pytest.mark.integration
async def test_a_noc_engineer_opens_a_monitor_from_the_noc_screen(world, chromium_path):
    from playwright.async_api import async_playwright, expect

    from dashboards.pdf import CHROMIUM_FLAGS

    await world.check("sw1-http")
    await world.check("web1-http")
    base = str(world.client.make_url("")).rstrip("/")
    mid = world.ids["web1-http"]
    ARTIFACTS.mkdir(exist_ok=True)
    violations: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path, args=list(CHROMIUM_FLAGS))
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: violations.append(m.text)
                    if m.type == "error" and "Content Security Policy" in m.text else None)
            await page.goto(f"{base}/login")
            await page.fill("input[name=username]", "nora")
            await page.fill("input[name=password]", "nora-pass-1")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/noc")
            # An UP monitor is counted on the wall, not drawn: the engineer searches for it (a plain form).
            await page.fill("#q", "web1-http")
            await page.press("#q", "Enter")
            await page.click(f'.tile[data-id="{mid}"] a.monitor-link', timeout=10_000)
            await page.wait_for_url(f"{base}/monitors/{mid}")
            await expect(page.locator("article.monitor-page")).to_have_attribute("data-state", "UP")
            await expect(page.locator("h1")).to_have_text("web1-http")
            await expect(page.locator("tr.flip")).to_have_count(3)
            await expect(page.locator("tr.parent")).to_contain_text("sw1-http")
            await page.screenshot(path=str(ARTIFACTS / f"monitor-page-{world.db.kind}.png"), full_page=True)
        finally:
            await browser.close()
    assert violations == [], violations


async def test_a_web_node_without_the_runner_reads_state_check_parents_and_locations_from_the_database(world):
    from dashboards.web.app import build_app
    from dashboards.web.deps import WebDeps

    await world.check("sw1-http")
    await world.check("web1-http")
    world.target.status["api"] = 503
    await world.check("api-http", 5)
    runner, cfg = world.service.runner, world.cfg("web-voted")
    await runner.apply_located(cfg, "east", await runner.probe(cfg), world.clock.now())
    await runner.flush()  # what the runner batches reaches the database
    deps = WebDeps(sessionmaker=world.db.sessionmaker, clock=world.clock, registry=CollectorRegistry(),
                   cookie_secure=False)
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        await _login(client, "nora")
        html = await _page(client, f"/monitors/{world.ids['web1-http']}")
        assert 'class="muted source"' in html  # says where it read from
        latest = re.search(r'<section class="card" id="latest">(.*?)</section>', html, re.S).group(1)
        # Successful checks are not stored one by one: the page says so instead of "not checked yet".
        assert "data-outcome" not in latest and 'class="muted stored-note"' in latest
        assert jalali(runner.memories[world.ids["web1-http"]].last_check_at) in latest
        parents = _rows(html, "parent")
        assert len(parents) == 1 and "sw1-http" in parents[0] and 'data-state="UP"' in parents[0]
        failing = await _page(client, f"/monitors/{world.ids['api-http']}")
        latest = re.search(r'<section class="card" id="latest">(.*?)</section>', failing, re.S).group(1)
        assert 'data-outcome="down"' in latest and "status_mismatch" in latest and "stored-note" in latest
        assert 'data-state="DOWN"' in failing
        html = await _page(client, f"/monitors/{cfg.id}")
        rows = dict(re.findall(r'<tr class="location[^"]*" data-location="(\w+)" data-outcome="(\w*)"', html))
        assert rows == {"east": "up", "west": ""}
