"""The staff incident pages on the real app (aiohttp on loopback, SQLite and PostgreSQL): who may open them,
the timeline merged from events, flips, notices and public updates, and the forms (acknowledge, note,
public update, resolve) that call the same services as the API, with CSRF, Persian refusals that keep what
was typed, and escaping. Last, one story in real Chromium: NOC screen -> incident page -> acknowledge ->
Persian public update -> an anonymous visitor reads it on /status."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from dashboards.web.html import jalali
from dashboards.web.status_routes import STATUS_CACHE, STATUS_TTL_S
from incidents.affected import affected_by_monitor
from incidents.models import Audience, Incident, IncidentEvent, Notification, Severity, Source, Status
from incidents.statuspage.models import PublicUpdate
from incidents.store import open_incident
from monitor.accounts import Role, create_user
from monitor.models import Customer, Flip, Monitor, MonitorState, Server, Service
from tests.incident_support import channel
from tests.web_forms import HTML
from tests.web_forms import csrf as _csrf
from tests.web_forms import login as _login

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
UPDATE_FA = "سرور اصلی از دسترس خارج شده است و در حال بررسی آن هستیم."
RESOLVED_FA = "سرور اصلی دوباره در دسترس است."


async def _world(sm, now) -> dict:
    await channel(sm, "noc-hook", Audience.NOC)
    async with sm.begin() as s:
        c = Customer(name="acme", display_name="شرکت آکمه", verified=True)
        s.add(c)
        await s.flush()
        svc = Service(name="acme-web", display_name="وب آکمه", customer_id=c.id, public_status=True)
        s.add(svc)
        await s.flush()
        srv = Server(name="web1", address="127.0.0.1", service_id=svc.id)
        s.add(srv)
        await s.flush()
        m = Monitor(name="acme-web-http", kind="http", target="http://127.0.0.1:9/", service_id=svc.id,
                    server_id=srv.id)
        s.add(m)
        await s.flush()
        s.add(Flip(monitor_id=m.id, at=now, old_state="UP", new_state="DOWN", reason="status_mismatch",
                   message="HTTP 503"))
        s.add(MonitorState(monitor_id=m.id, state="DOWN", since=now))
        inc = await open_incident(s, key=f"monitor:{m.id}", source=Source.MONITOR, severity=Severity.URGENT,
                                  title="acme-web-http is DOWN", opened_at=now, now=now,
                                  affected=await affected_by_monitor(s, m), monitor_id=m.id, service_id=svc.id,
                                  customer_id=c.id)
        users = {}
        for name, role in (("nora", Role.NOC), ("tim", Role.TECHNICIAN), ("fred", Role.FINANCE)):
            users[name] = (await create_user(s, name, role, password=f"{name}-pass-1")).id
        await create_user(s, "alice", Role.CUSTOMER, customer_id=c.id, password="alice-pass-1")
    return {"incident": inc.id, "monitor": m.id, "users": users}


@pytest.fixture
async def site(db, clock):
    clock.set(NOW)
    world = await _world(db.sessionmaker, clock.now())
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False)
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        yield client, db.sessionmaker, world






async def _page(client, iid: int) -> str:
    resp = await client.get(f"/incidents/{iid}", headers=HTML)
    assert resp.status == 200, resp.status
    return await resp.text()


async def _incident(sm, iid: int) -> Incident:
    async with sm() as s:
        return await s.get(Incident, iid)


async def _count(sm, model) -> int:
    async with sm() as s:
        return (await s.execute(select(func.count()).select_from(model))).scalar_one()


def _textarea(html: str, ident: str) -> str:
    return unescape(re.search(rf'<textarea[^>]*id="{ident}"[^>]*>(.*?)</textarea>', html, re.S).group(1))


async def test_anonymous_is_sent_to_login_and_customers_and_finance_are_refused(site):
    client, _, world = site
    iid = world["incident"]
    for path in (f"/incidents/{iid}", "/incidents"):
        resp = await client.get(path, headers=HTML, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == f"/login?next={path}"
    for who in ("alice", "fred"):
        await _login(client, who)
        for path in (f"/incidents/{iid}", "/incidents"):
            resp = await client.get(path, headers=HTML)
            assert resp.status == 403 and "دسترسی ندارید" in await resp.text()
            assert "acme-web-http" not in await resp.text()


async def test_the_page_shows_facts_affected_and_a_merged_timeline(site):
    client, sm, world = site
    await _login(client, "tim")
    html = await _page(client, world["incident"])
    assert 'dir="rtl"' in html and "acme-web-http is DOWN" in html
    assert '<dd class="priority">ضروری</dd>' in html
    assert f'<dd class="opened">{jalali(NOW)}</dd>' in html and "۱۴۰۵" in html
    assert "شرکت آکمه" in html and "وب آکمه" in html and "web1" in html
    sources = re.findall(r'data-source="(\w+)" data-kind="(\w*)"', html)
    assert ("flip", "DOWN") in sources and ("event", "opened") in sources and ("notification", "opened") in sources
    assert "HTTP 503" in html and "noc-hook (webhook)" in html and "در انتظار فرستادن" in html
    # The monitor still fails: the resolve form says so. A technician may not speak on the status page.
    assert "پایشگر هنوز خطا نشان می‌دهد" in html and 'id="resolve-confirm"' in html
    assert f'action="/incidents/{world["incident"]}/updates"' not in html
    other = await client.get("/incidents/999999", headers=HTML)
    assert other.status == 404


async def test_acknowledging_through_the_form_records_who_and_when(site, clock):
    client, sm, world = site
    iid = world["incident"]
    await _login(client, "nora")
    csrf = _csrf(await _page(client, iid))
    clock.advance(minutes=3)
    resp = await client.post(f"/incidents/{iid}/acknowledge", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/incidents/{iid}"
    row = await _incident(sm, iid)
    assert row.status == Status.ACKNOWLEDGED and row.acknowledged_by == world["users"]["nora"]
    html = await _page(client, iid)
    assert f"{jalali(NOW + timedelta(minutes=3))} · توسط <bdi>nora</bdi>" in html
    assert ("event", "acknowledged") in re.findall(r'data-source="(\w+)" data-kind="(\w*)"', html)
    assert 'id="acknowledge"' not in html  # nothing left to acknowledge


async def test_a_form_without_the_session_csrf_token_changes_nothing(site):
    client, sm, world = site
    iid = world["incident"]
    await _login(client, "nora")
    for path, data in (("acknowledge", {}), ("notes", {"text": "یادداشت"}), ("updates", {"text": UPDATE_FA}),
                       ("acknowledge", {"csrf": "forged"})):
        resp = await client.post(f"/incidents/{iid}/{path}", data=data, headers=HTML, allow_redirects=False)
        assert resp.status == 403
    assert (await _incident(sm, iid)).status == Status.TRIGGERED
    assert await _count(sm, PublicUpdate) == 0
    async with sm() as s:
        kinds = (await s.execute(select(IncidentEvent.kind).where(IncidentEvent.incident_id == iid))).scalars()
        assert list(kinds) == ["opened"]


async def test_a_public_update_from_the_form_appears_on_the_public_status_page(site):
    client, sm, world = site
    iid = world["incident"]
    await _login(client, "nora")
    csrf = _csrf(await _page(client, iid))
    resp = await client.post(f"/incidents/{iid}/updates", data={"csrf": csrf, "text": UPDATE_FA,
                                                                 "status": "investigating"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/incidents/{iid}#updates"
    html = await _page(client, iid)
    assert UPDATE_FA in html and ("update", "investigating") in re.findall(
        r'data-source="(\w+)" data-kind="(\w*)"', html)
    async with TestClient(TestServer(client.app, host="127.0.0.1")) as anonymous:
        status = await (await anonymous.get("/status", headers=HTML)).text()
    assert UPDATE_FA in status and "در حال بررسی" in status and "قطعی" in status
    assert "acme-web-http" not in status and "status_mismatch" not in status  # no internal names (rule 4)


async def test_a_public_update_that_is_not_persian_is_refused_and_kept_in_the_form(site):
    client, sm, world = site
    iid = world["incident"]
    await _login(client, "nora")
    csrf = _csrf(await _page(client, iid))
    typed = "we are looking into it <b>now</b>"
    resp = await client.post(f"/incidents/{iid}/updates", data={"csrf": csrf, "text": typed,
                                                                 "status": "identified"})
    assert resp.status == 400
    html = await resp.text()
    assert "باید به زبان فارسی و با خط فارسی نوشته شود" in html
    assert _textarea(html, "update-text") == typed and "<b>now</b>" not in html
    assert '<option value="identified" selected>' in html
    bad_status = await client.post(f"/incidents/{iid}/updates", data={"csrf": csrf, "text": UPDATE_FA,
                                                                       "status": "fixed"})
    assert bad_status.status == 400 and "یکی از وضعیت‌های فهرست" in await bad_status.text()
    assert _textarea(await bad_status.text(), "update-text") == UPDATE_FA
    assert await _count(sm, PublicUpdate) == 0


async def test_a_technician_may_not_post_a_public_update(site):
    client, sm, world = site
    await _login(client, "tim")
    csrf = _csrf(await _page(client, world["incident"]))
    resp = await client.post(f"/incidents/{world['incident']}/updates", data={"csrf": csrf, "text": UPDATE_FA},
                             headers=HTML)
    assert resp.status == 403 and await _count(sm, PublicUpdate) == 0


async def test_notes_are_escaped_and_an_empty_one_is_refused(site):
    client, sm, world = site
    iid = world["incident"]
    await _login(client, "tim")
    csrf = _csrf(await _page(client, iid))
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    resp = await client.post(f"/incidents/{iid}/notes", data={"csrf": csrf, "text": attack},
                             allow_redirects=False)
    assert resp.status == 303
    html = await _page(client, iid)
    assert attack not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert ("event", "note") in re.findall(r'data-source="(\w+)" data-kind="(\w*)"', html)
    empty = await client.post(f"/incidents/{iid}/notes", data={"csrf": csrf, "text": "   "})
    assert empty.status == 400 and "یادداشت نمی‌تواند خالی باشد" in await empty.text()
    assert _textarea(await empty.text(), "note-text") == "   "
    async with sm() as s:
        notes = (await s.execute(select(IncidentEvent.text).where(IncidentEvent.kind == "note"))).scalars().all()
    assert notes == [attack]


async def test_resolving_needs_a_reason_and_while_failing_a_confirmation(site, clock):
    client, sm, world = site
    iid = world["incident"]
    await _login(client, "nora")
    csrf = _csrf(await _page(client, iid))
    no_reason = await client.post(f"/incidents/{iid}/resolve", data={"csrf": csrf, "text": " ", "confirm": "yes"})
    assert no_reason.status == 400 and "دلیل الزامی است" in await no_reason.text()
    unconfirmed = await client.post(f"/incidents/{iid}/resolve", data={"csrf": csrf, "text": "سوییچ عوض شد"})
    assert unconfirmed.status == 400 and "تأیید را علامت بزنید" in await unconfirmed.text()
    assert _textarea(await unconfirmed.text(), "resolve-text") == "سوییچ عوض شد"
    assert (await _incident(sm, iid)).status == Status.TRIGGERED
    clock.advance(minutes=10)
    done = await client.post(f"/incidents/{iid}/resolve", data={"csrf": csrf, "text": "سوییچ عوض شد",
                                                                 "confirm": "yes"}, allow_redirects=False)
    assert done.status == 303
    row = await _incident(sm, iid)
    assert row.status == Status.RESOLVED and row.resolved_at == NOW + timedelta(minutes=10)
    html = await _page(client, iid)
    assert 'id="resolve"' not in html and 'id="add-note"' in html  # post-mortem notes stay possible
    again = await client.post(f"/incidents/{iid}/acknowledge", data={"csrf": csrf})
    assert again.status == 400 and "دیگر تغییر نمی‌کند" in await again.text()


async def test_the_list_shows_open_incidents_first_then_the_resolved_ones_paged(site, clock):
    client, sm, world = site
    async with sm.begin() as s:
        for n in range(51):
            at = NOW - timedelta(days=2, hours=n)
            s.add(Incident(dedup_key=f"old-{n}", source="monitor", severity="important", status="resolved",
                           title=f"old outage {n}", opened_at=at, resolved_at=at + timedelta(minutes=30),
                           duration_s=1800.0))
    await _login(client, "nora")
    html = await (await client.get("/incidents", headers=HTML)).text()
    rows = re.findall(r'<tr class="incident (open|resolved)" data-id="(\d+)"', html)
    assert rows[0] == ("open", str(world["incident"])) and [k for k, _ in rows].count("open") == 1
    assert len(rows) == 51 and "old outage 0<" in html and "old outage 50<" not in html
    assert "۳۰ دقیقه" in html and "مهم" in html and 'rel="next" href="?page=2"' in html
    second = await (await client.get("/incidents?page=2", headers=HTML)).text()
    assert "old outage 50<" in second and "old outage 0<" not in second
    assert 'href="/incidents" aria-current="page"' in html  # the navigation links here


async def test_notices_show_their_delivery_state(site):
    client, sm, world = site
    async with sm.begin() as s:
        n = (await s.execute(select(Notification))).scalars().one()
        n.status, n.last_error, n.sent_at = "failed", "connection refused", NOW + timedelta(seconds=5)
    await _login(client, "nora")
    html = await _page(client, world["incident"])
    assert 'delivery-failed">ناموفق<' in html and "connection refused" in html


# --- one story in a real browser ----------------------------------------------------------------------



@pytest.mark.integration
async def test_a_noc_engineer_acknowledges_and_publishes_and_a_visitor_reads_it(db, clock, chromium_path):
    from playwright.async_api import async_playwright, expect

    from dashboards.pdf import CHROMIUM_FLAGS

    clock.set(NOW)
    world = await _world(db.sessionmaker, clock.now())
    iid = world["incident"]
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False)
    server = TestServer(build_app(deps), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    ARTIFACTS.mkdir(exist_ok=True)
    violations: list[str] = []
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium_path, args=list(CHROMIUM_FLAGS))
            staff = await browser.new_page(viewport={"width": 1280, "height": 900})
            staff.on("console", lambda m: violations.append(m.text)
                     if m.type == "error" and "Content Security Policy" in m.text else None)
            await staff.goto(f"{base}/login")
            await staff.fill("input[name=username]", "nora")
            await staff.fill("input[name=password]", "nora-pass-1")
            await staff.click("button[type=submit]")
            await staff.wait_for_url(f"{base}/noc")
            # From the NOC screen's incident card to the incident's page.
            await staff.click(f'.incident[data-id="{iid}"] a.open-incident', timeout=10_000)
            await staff.wait_for_url(f"{base}/incidents/{iid}")
            await expect(staff.locator("dd.status")).to_have_attribute("data-status", "triggered")
            await staff.click("#acknowledge")
            await staff.wait_for_url(f"{base}/incidents/{iid}")
            await expect(staff.locator("dd.status")).to_have_attribute("data-status", "acknowledged")
            await expect(staff.locator("dd.acknowledged")).to_contain_text("nora")
            await staff.fill("#update-text", UPDATE_FA)
            await staff.select_option("#update-status", "investigating")
            await staff.click("#publish")
            await staff.wait_for_url(f"{base}/incidents/{iid}#updates")
            await expect(staff.locator(".public-update p")).to_have_text(UPDATE_FA)
            await staff.screenshot(path=str(ARTIFACTS / f"incident-page-{db.kind}.png"), full_page=True)
            visitor = await (await browser.new_context()).new_page()
            await visitor.goto(f"{base}/status")
            await expect(visitor.locator(".incidents-public .public-update p")).to_have_text(UPDATE_FA)
            assert "acme-web-http" not in await visitor.content()
            await visitor.screenshot(path=str(ARTIFACTS / f"status-update-{db.kind}.png"), full_page=True)
            # A second update, then resolved with a reason: the visitor reads the incident under the past ones,
            # with both updates, newest first.
            clock.advance(minutes=20)
            await staff.fill("#update-text", RESOLVED_FA)
            await staff.select_option("#update-status", "resolved")
            await staff.click("#publish")
            await staff.wait_for_url(f"{base}/incidents/{iid}#updates")
            await staff.fill("#resolve-text", "سرور اصلی دوباره راه‌اندازی شد")
            await staff.check("#resolve-confirm")
            await staff.click("#resolve")
            await expect(staff.locator("dd.status")).to_have_attribute("data-status", "resolved")
            clock.advance(seconds=STATUS_TTL_S + 1)
            await visitor.reload()   # the old page at once; one render in the background replaces it
            await server.app[STATUS_CACHE].settled()
            await visitor.reload()
            past = visitor.locator(f'.incidents-public.past .incident-public[data-id="{iid}"]')
            await expect(past.locator(".public-update p")).to_have_text([RESOLVED_FA, UPDATE_FA])
            await expect(visitor.locator(f'.incidents-public:not(.past) [data-id="{iid}"]')).to_have_count(0)
            await visitor.screenshot(path=str(ARTIFACTS / f"status-history-{db.kind}.png"), full_page=True)
            await browser.close()
    finally:
        await server.close()
    assert violations == [], violations
