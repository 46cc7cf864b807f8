"""A real browser (Playwright driving Debian's chromium) on the real app on loopback: a customer logs in,
sees only their services and opens a report; another customer's service is unreachable by URL; the NOC
screen updates live. Screenshots of the NOC screen, the portal and the status page go to test-artifacts/."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import expect
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from dashboards.pdf import CHROMIUM_FLAGS
from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from incidents.models import Incident, IncidentAffected
from monitor.accounts import Role, create_user
from monitor.models import Customer, Datacenter, Flip, Monitor, MonitorState, Server, Service, State

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


class _Item:
    def __init__(self, state: State) -> None:
        self.state = state


async def _world(sm, now):
    async with sm.begin() as s:
        a = Customer(name="acme", display_name="شرکت آکمه", verified=True)
        b = Customer(name="beta", display_name="zz-secret-beta", verified=True)
        dc = Datacenter(name="afranet", location="tehran")
        s.add_all([a, b, dc])
        await s.flush()
        sa = Service(name="acme-web", display_name="وب آکمه", customer_id=a.id, public_status=True)
        sb = Service(name="beta-db", display_name="zz-secret-db", customer_id=b.id)
        s.add_all([sa, sb])
        await s.flush()
        srv = Server(name="web1", address="127.0.0.1", datacenter_id=dc.id, service_id=sa.id)
        s.add(srv)
        await s.flush()
        mons = [Monitor(name=f"acme-web-{i}", kind="http", target=f"http://127.0.0.1:9/{i}", service_id=sa.id,
                        server_id=srv.id) for i in range(3)]
        mons.append(Monitor(name="beta-db-tcp", kind="tcp", target="127.0.0.1:9", service_id=sb.id))
        s.add_all(mons)
        await s.flush()
        for m in mons:
            s.add(Flip(monitor_id=m.id, at=now - timedelta(days=30), old_state="UNKNOWN", new_state="UP"))
            s.add(MonitorState(monitor_id=m.id, state="UP", since=now - timedelta(days=30)))
        s.add(Flip(monitor_id=mons[0].id, at=now - timedelta(days=3), old_state="UP", new_state="DOWN"))
        s.add(Flip(monitor_id=mons[0].id, at=now - timedelta(days=3) + timedelta(hours=2), old_state="DOWN",
                   new_state="UP"))
        inc = Incident(dedup_key="acme-web-0", source="monitor", severity="urgent", status="triggered",
                       title="acme-web-0 is DOWN", service_id=sa.id, customer_id=a.id, opened_at=now)
        s.add(inc)
        await s.flush()
        s.add(IncidentAffected(incident_id=inc.id, key=f"service:{sa.id}", service_id=sa.id, customer_id=a.id,
                               added_at=now))
        await create_user(s, "alice", Role.CUSTOMER, customer_id=a.id, password="alice-pass-1")
        await create_user(s, "nora", Role.NOC, password="nora-pass-1")
        return {"a": sa.id, "b": sb.id, "monitors": [m.id for m in mons]}


@pytest.fixture
async def site(db, clock):
    clock.set(NOW)
    world = await _world(db.sessionmaker, clock.now())
    latest: dict = {}
    runner = type("LiveStates", (), {"latest": latest})()
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False,
                   # webhooks offered (and audited with the page), reaching public addresses only
                   services={"runner": runner, "status_webhook_allow": []},
                   support_channels=[("تلفن اضطراری", "۰۲۱-۰۰۰۰۰۰۰۰")])
    server = TestServer(build_app(deps), host="127.0.0.1")
    await server.start_server()
    world.update(base=str(server.make_url("")).rstrip("/"), deps=deps, latest=latest, kind=db.kind)
    ARTIFACTS.mkdir(exist_ok=True)
    yield world
    await server.close()




class _CspWatchingBrowser:
    """Pages whose console is watched: a Content-Security-Policy violation fails the test that caused it."""

    def __init__(self, browser) -> None:
        self.browser, self.violations = browser, []

    def _console(self, msg) -> None:
        if msg.type == "error" and "Content Security Policy" in msg.text:
            self.violations.append(msg.text)

    async def new_page(self, **kw):
        page = await self.browser.new_page(**kw)
        page.on("console", self._console)
        return page


@pytest.fixture
async def browser(chromium_path):
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path, args=list(CHROMIUM_FLAGS))
        watched = _CspWatchingBrowser(b)
        yield watched
        await b.close()
    assert watched.violations == [], watched.violations


async def _login(page, base, username, password):
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")


async def test_a_customer_logs_in_sees_only_their_services_and_opens_a_report(site, browser):
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await _login(page, site["base"], "alice", "alice-pass-1")
    await page.wait_for_url(f"{site['base']}/portal")
    assert await page.locator("html").get_attribute("dir") == "rtl"
    titles = await page.locator("article.service h2 a").all_inner_texts()
    assert titles == ["وب آکمه"]
    assert "zz-secret" not in await page.content()
    await page.screenshot(path=str(ARTIFACTS / f"portal-{site['kind']}.png"), full_page=True)
    await page.click("article.service h2 a")
    await page.wait_for_url(f"{site['base']}/portal/services/{site['a']}")
    await page.click("table.months a >> nth=0")
    await page.wait_for_selector("main.report")
    assert "گزارش دسترس‌پذیری" in await page.inner_text("h1")
    assert await page.locator(".uptime").inner_text() != "—"
    await page.screenshot(path=str(ARTIFACTS / f"report-{site['kind']}.png"), full_page=True)
    other = await page.goto(f"{site['base']}/portal/services/{site['b']}")
    assert other.status == 404 and "zz-secret" not in await page.content()


async def test_the_status_page_shows_the_public_service(site, browser):
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    resp = await page.goto(f"{site['base']}/status")
    assert resp.status == 200
    assert await page.locator("article.service h2").count() == 1
    await page.screenshot(path=str(ARTIFACTS / f"status-{site['kind']}.png"), full_page=True)


async def test_the_noc_wall_counts_every_monitor_and_follows_state_changes_live(site, browser):
    page = await browser.new_page(viewport={"width": 1440, "height": 900})
    await _login(page, site["base"], "nora", "nora-pass-1")
    await page.wait_for_url(f"{site['base']}/noc")
    # Everything is UP: no tile, the four monitors counted in the summary and in their groups.
    await expect(page.locator('#summary [data-state="UP"]')).to_have_attribute("data-count", "4")
    await expect(page.locator("#all-clear")).to_have_count(1)
    assert await page.locator(".tile").count() == 0
    # Locator waits, not wait_for_function: the page's CSP (no 'unsafe-eval') refuses Playwright's string eval.
    await expect(page.locator("#live")).to_have_attribute("data-live", "on", timeout=10_000)
    first = site["monitors"][0]
    site["latest"][first] = _Item(State.DOWN)
    site["deps"].services["noc_feed"].poke()
    tile = page.locator(f'#problems .tile[data-id="{first}"][data-state="DOWN"]')
    await expect(tile).to_have_count(1, timeout=10_000)
    await expect(tile.locator(".badge")).to_contain_text("قطع")
    await expect(page.locator('#summary [data-state="DOWN"]')).to_have_attribute("data-count", "1")
    await page.fill("#q", "beta")  # filters as one types; the same search works as a form without JavaScript
    await expect(page.locator(".tile")).to_have_count(1, timeout=10_000)
    await expect(page).to_have_url(re.compile(r"/noc\?q=beta$"))
    await page.fill("#q", "")
    await expect(page.locator(".tile")).to_have_count(1, timeout=10_000)
    # acme's three behind datacenter afranet (one failing), beta's monitor in no datacenter.
    await expect(page.locator("#groups .group.has-problems")).to_have_attribute("data-key", "afranet")
    await expect(page.locator("#groups .group")).to_have_count(2)
    await page.click(".incident button.ack")
    await expect(page.locator(".incident .status")).to_have_attribute("data-status", "acknowledged",
                                                                      timeout=10_000)
    await page.click(".incident button.assign")
    await expect(page.locator(".incident .status .assignee")).to_have_text("nora", timeout=10_000)
    await page.screenshot(path=str(ARTIFACTS / f"noc-{site['kind']}.png"), full_page=True)
    # No one-click resolve on the wall: the card sends the engineer to the incident page and its reason.
    assert await page.locator(".incident button.resolve").count() == 0
    await expect(page.locator(".incident a.resolve-link")).to_have_attribute("href", re.compile(r"#actions$"))


async def test_the_noc_follows_a_live_outage_from_tile_to_incident_page_to_resolve_with_reason(site, browser):
    page = await browser.new_page(viewport={"width": 1440, "height": 900})
    await _login(page, site["base"], "nora", "nora-pass-1")
    await page.wait_for_url(f"{site['base']}/noc")
    await expect(page.locator("#live")).to_have_attribute("data-live", "on", timeout=10_000)
    first = site["monitors"][0]
    # The runner's flip: the state in memory (what the wall reads live) and in the database (what the
    # incident page reads), then the feed is nudged as the runner's on_flip does.
    async with site["deps"].sessionmaker.begin() as s:
        (await s.get(MonitorState, first)).state = "DOWN"
        (await s.execute(select(Incident))).scalars().one().monitor_id = first
    site["latest"][first] = _Item(State.DOWN)
    site["deps"].services["noc_feed"].poke()
    tile = page.locator(f'#problems .tile[data-id="{first}"]')
    await expect(tile).to_have_attribute("data-state", "DOWN", timeout=10_000)
    await expect(tile.locator(".who")).to_contain_text("acme-web")
    await tile.locator("a.tile-incident").click()
    await page.wait_for_url(re.compile(r"/incidents/\d+$"))
    await expect(page.locator("dd.status")).to_have_attribute("data-status", "triggered")
    await page.fill("#resolve-text", "کابل شبکهٔ سرور عوض شد")
    # Still failing: the page says so and refuses to resolve without the confirmation.
    await expect(page.locator("#resolve-confirm")).to_have_count(1)
    await page.check("#resolve-confirm")
    await page.click("#resolve")
    await expect(page.locator("dd.status")).to_have_attribute("data-status", "resolved", timeout=10_000)
    await expect(page.locator("#timeline")).to_contain_text("کابل شبکهٔ سرور عوض شد")
    await page.screenshot(path=str(ARTIFACTS / f"noc-resolved-incident-{site['kind']}.png"), full_page=True)
    await page.goto(f"{site['base']}/noc")
    await expect(page.locator("#incidents .none")).to_have_count(1)
    await expect(page.locator(f'#problems .tile[data-id="{first}"] a.tile-incident')).to_have_count(0)


async def test_a_customer_files_a_ticket_in_the_browser_and_sees_it_listed(site, browser):
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await _login(page, site["base"], "alice", "alice-pass-1")
    await page.wait_for_url(f"{site['base']}/portal")
    await page.click("a[href='/portal/tickets/new'] >> nth=0")
    await page.wait_for_url(f"{site['base']}/portal/tickets/new")
    await page.select_option("#f-department", "technical")
    await page.select_option("#f-service_id", str(site["a"]))
    await page.fill("#f-subject", "کندی وب‌سایت")
    await page.fill("#f-server_address", "127.0.0.1")
    await page.fill("#f-started_at", "امروز ساعت ۹ صبح")
    await page.fill("#f-body", "صفحه‌های سایت از صبح خیلی کند باز می‌شوند")
    await page.check("input[name=priority][value=important]")
    await page.screenshot(path=str(ARTIFACTS / f"ticket-new-{site['kind']}.png"), full_page=True)
    await page.click("#submit-ticket")
    await page.wait_for_url(re.compile(r"/portal/tickets/\d+$"))
    assert "کندی وب‌سایت" in await page.inner_text("h1")
    await page.click("a[href='/portal/tickets'] >> nth=0")
    await page.wait_for_url(f"{site['base']}/portal/tickets")
    rows = page.locator("tr.ticket")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("کندی وب‌سایت")
    await expect(rows.first.locator(".status")).to_have_text("باز")
    await page.screenshot(path=str(ARTIFACTS / f"tickets-{site['kind']}.png"), full_page=True)


async def test_a_customer_reads_the_uptime_report_and_files_a_ticket_after_a_refusal(site, browser):
    """The portal's pages in Chromium: the service and its report in Jalali dates and Persian digits, then a
    ticket whose required field is missing is refused in Persian with the typed text kept, and filed."""
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await _login(page, site["base"], "alice", "alice-pass-1")
    await page.wait_for_url(f"{site['base']}/portal")
    await page.click("article.service h2 a")
    await page.wait_for_url(f"{site['base']}/portal/services/{site['a']}")
    await expect(page.locator("h1")).to_contain_text("وب آکمه")
    await expect(page.locator("table.months tbody tr").first).to_contain_text("آذر ۱۴۰۵")  # 2026-11-28
    await page.click("table.months a >> nth=0")
    await page.wait_for_url(re.compile(r"/report\?month=1405-09$"))
    report = page.locator("main.report")
    await expect(report.locator("h1")).to_contain_text("گزارش دسترس‌پذیری وب آکمه — آذر ۱۴۰۵")
    await expect(report.locator(".uptime")).to_have_text(re.compile(r"^[۰-۹]+٫[۰-۹]{3}٪$"))
    details = await report.locator("table").last.locator("tbody tr td:first-child").all_inner_texts()
    assert details[0] == "۱۴۰۵/۰۹/۰۱" and details[6] == "۱۴۰۵/۰۹/۰۷" and len(details) == 30  # Azar's days
    await expect(report.locator("tr.incident")).to_have_count(1)  # opened today, still going
    text = await report.inner_text()
    assert not re.search(r"[0-9]", text), "a Latin digit on the Persian report"
    assert "acme-web" not in text and "DOWN" not in text  # no internal names or states
    await page.screenshot(path=str(ARTIFACTS / f"report-azar-{site['kind']}.png"), full_page=True)

    await page.goto(f"{site['base']}/portal/tickets/new")
    await page.select_option("#f-department", "technical")
    await page.select_option("#f-service_id", str(site["a"]))
    await page.fill("#f-subject", "قطعی وب‌سایت")
    await page.fill("#f-started_at", "امروز ساعت ۱۰ صبح")
    body = "وب‌سایت از ساعت ده صبح باز نمی‌شود"
    await page.fill("#f-body", body)
    await page.check("input[name=priority][value=urgent]")
    await page.click("#submit-ticket")  # the server's address is left out
    refusal = page.locator(".refusal")
    await expect(refusal).to_contain_text("این موارد را کامل کنید")
    await expect(refusal).to_contain_text("نشانی سرور")
    assert not re.search(r"[A-Za-z_]{4,}", (await refusal.inner_text()).replace("IP", "")), "a code shown"
    await expect(page.locator("label.bad[for=f-server_address]")).to_have_count(1)
    await expect(page.locator("#f-body")).to_have_value(body)
    await expect(page.locator("#f-subject")).to_have_value("قطعی وب‌سایت")
    await expect(page.locator("#f-started_at")).to_have_value("امروز ساعت ۱۰ صبح")
    await expect(page.locator("input[name=priority][value=urgent]")).to_be_checked()
    await page.screenshot(path=str(ARTIFACTS / f"ticket-refused-{site['kind']}.png"), full_page=True)
    await page.fill("#f-server_address", "127.0.0.1")
    await page.click("#submit-ticket")
    await page.wait_for_url(re.compile(r"/portal/tickets/\d+$"))
    await expect(page.locator("h1")).to_contain_text("قطعی وب‌سایت")
    await expect(page.locator(".thread .msg.customer p")).to_have_text(body)
    await expect(page.locator(".meta")).to_contain_text("۱۴۰۵/۰۹/۰۷")
