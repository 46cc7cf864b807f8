"""Issue 13's maintenance story through the pages, in Chromium, on the service's own runner and incident engine:
the NOC finds the monitor on /monitors, plans a window for it on /noc/maintenance (Jalali, Tehran time), a
visitor reads it on /status, and the monitor's target failing inside the window opens no incident; after the
window its next outage opens one. No console error on any page."""

from __future__ import annotations

import re
from datetime import timedelta

import jdatetime

from dashboards.pdf import CHROMIUM_FLAGS
from dashboards.web.html import TEHRAN
from incidents.models import Incident
from monitor.accounts import Role, create_user
from monitor.inventory import apply_inventory, parse_inventory
from monitor.settings import load_settings
from negahban.service import build_service
from tests.browser_watch import PageWatch, browser_login, start_site
from tests.loopback import status_target
from tests.test_browser import ARTIFACTS
from tests.test_portal_tickets import NOW

TITLE = "ارتقای سوئیچ مرکز داده"


def _jalali(at) -> str:
    return jdatetime.datetime.fromgregorian(datetime=at.astimezone(TEHRAN)).strftime("%Y/%m/%d %H:%M")


async def _incidents(sm) -> list[Incident]:
    async with sm() as s:
        return list((await s.execute(Incident.__table__.select())).all())


async def test_the_noc_plans_maintenance_the_status_page_shows_it_and_it_suppresses_the_incident(
        db, clock, chromium_path):
    from playwright.async_api import async_playwright, expect

    clock.set(NOW)
    status = {"code": 200}
    target = await status_target(status)
    port = target.addresses[0][1]
    inv, specs = parse_inventory(f"""
customers: [{{name: acme, display_name: شرکت آکمه, verified: true,
             services: [{{name: acme-web, display_name: وب آکمه, public_status: true}}]}}]
monitors:
  - {{name: acme-home, kind: http, target: "http://127.0.0.1:{port}/", service: acme-web, interval: 30,
     policy: {{down_after: 1, up_after: 1}}}}
""")
    await apply_inventory(db.sessionmaker, inv, specs, clock.now())
    async with db.sessionmaker.begin() as s:
        await create_user(s, "nora", Role.NOC, password="nora-pass-1")
    service = await build_service(load_settings({}, database_url=db.url, incident_recovery_hold_seconds=60),
                                  clock=clock)
    await service.scheduler.reload()
    cfg = next(iter(service.scheduler.catalog.values()))
    engine = service.extras["incidents"].engine
    await service.runner.check(cfg)
    server, base = await start_site(db.sessionmaker, clock)
    shots = ARTIFACTS / "maintenance-story"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium_path, args=list(CHROMIUM_FLAGS))
            noc_ctx, visitor_ctx = await browser.new_context(), await browser.new_context()
            watches = [PageWatch(noc_ctx, base), PageWatch(visitor_ctx, base)]
            noc = await noc_ctx.new_page()
            await browser_login(noc, base, "nora", "nora-pass-1", "/noc")
            # The monitor's number, from its page.
            await noc.click("nav.top a[href='/monitors']")
            await noc.click("a:has-text('acme-home') >> nth=0")
            await noc.wait_for_url(re.compile(r"/monitors/\d+$"))
            monitor_id = noc.url.rsplit("/", 1)[1]
            await noc.click("nav.top a[href='/noc/maintenance']")
            await noc.fill("#f-title", TITLE)
            await noc.select_option("#f-scope", "monitor")
            await noc.fill("#f-target", monitor_id)
            await noc.fill("#f-starts", _jalali(clock.now()))
            await noc.fill("#f-ends", _jalali(clock.now() + timedelta(hours=1)))
            await noc.click("#plan button[type=submit]")
            await noc.wait_for_url(f"{base}/noc/maintenance?done=created")
            await expect(noc.locator("body")).to_contain_text(TITLE)
            await noc.screenshot(path=str(shots / f"1-planned-{db.kind}.png"), full_page=True)

            visitor = await visitor_ctx.new_page()
            await visitor.goto(f"{base}/status")
            await expect(visitor.locator("li.maintenance")).to_contain_text(TITLE)
            assert "acme-home" not in await visitor.content()
            await visitor.screenshot(path=str(shots / f"2-status-{db.kind}.png"), full_page=True)

            # Inside the window the target fails: the monitor goes DOWN, and no incident opens.
            clock.advance(minutes=5)
            status["code"] = 503
            await service.runner.check(cfg)
            await service.runner.store.flush()
            await engine.process_pending()
            assert await _incidents(db.sessionmaker) == []
            await noc.goto(f"{base}/incidents")
            await expect(noc.locator("body")).not_to_contain_text("acme-home")

            # After the window: up, then down again, and this outage opens its incident.
            clock.advance(hours=1)
            status["code"] = 200
            await service.runner.check(cfg)
            clock.advance(minutes=1)
            status["code"] = 503
            await service.runner.check(cfg)
            await service.runner.store.flush()
            await engine.process_pending()
            assert len(await _incidents(db.sessionmaker)) == 1
            await noc.goto(f"{base}/incidents")
            await expect(noc.locator("body")).to_contain_text("acme-home")
            await browser.close()
    finally:
        await server.close()
        await target.cleanup()
        await service.probe_ctx.close()
        await service.extras["http"].close()
        await service.engine.dispose()
    problems = [x for w in watches for x in w.problems]
    assert problems == [], problems
