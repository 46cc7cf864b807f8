"""Every page, for every role, in real Chromium: no console error, no uncaught page error, no same-origin
sub-resource that fails or answers 4xx/5xx; a full-page screenshot of each in
``test-artifacts/<role>/<page>.png`` (``public/`` for the pages anyone reads, with the status page also at
phone width, 390 px).

Which pages: the links of the role's navigation as the page shows them (so a page added to
``dashboards.web.templating.NAV`` is visited without touching this test), and two levels below: the first link
of each kind ("/desk/tickets/{id}", "/portal/services/{id}/report", ...) in those pages' content.
One browser; one context per role; one SQLite database (the pages' queries run on both databases in their
own tests)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from dashboards.pdf import CHROMIUM_FLAGS
from dashboards.web.app import ROUTE_TABLES, build_app
from dashboards.web.deps import WebDeps
from dashboards.web.templating import NAV
from incidents.models import Incident, IncidentAffected
from monitor.accounts import Role, create_user, principal_of
from monitor.maintenance import create_window
from monitor.models import Customer, Datacenter, Flip, Monitor, MonitorState, Server, Service
from tests.browser_watch import PageWatch, browser_login
from tickets import desk, fines, intake

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)  # Saturday 10:30 in Tehran
USERS = {Role.CUSTOMER: "alice", Role.TECHNICIAN: "tara", Role.FINANCE: "fred", Role.NOC: "nora",
         Role.ADMIN: "ada"}
PUBLIC = ("/login", "/status")
DEPTH = 2  # links followed below the navigation (a ticket, then its service's report)
# Not pages: downloads and feeds, API routes, and links that act (log out) or need a mailed token.
NOT_PAGES = re.compile(r"^/(api/|metrics|probe|healthz|readyz|hb/|fonts/|static/|logout|login|status/confirm/|"
                       r"status/unsubscribe/)|[./](pdf|csv|atom|json)$")


async def _world(sm) -> None:
    """Enough of everything that each page has rows to show: a public service with monitors, an outage,
    a ticket with an answer and a fine, a maintenance window."""
    async with sm.begin() as s:
        a = Customer(name="acme", display_name="شرکت آکمه", verified=True)
        dc = Datacenter(name="afranet", location="tehran")
        s.add_all([a, dc])
        await s.flush()
        sa = Service(name="acme-web", display_name="وب آکمه", customer_id=a.id, public_status=True)
        s.add(sa)
        await s.flush()
        srv = Server(name="web1", address="127.0.0.1", datacenter_id=dc.id, service_id=sa.id)
        s.add(srv)
        await s.flush()
        mons = [Monitor(name=f"acme-web-{i}", kind="http", target=f"http://127.0.0.1:9/{i}", service_id=sa.id,
                        server_id=srv.id) for i in range(2)]
        s.add_all(mons)
        await s.flush()
        for m in mons:
            s.add(Flip(monitor_id=m.id, at=NOW - timedelta(days=30), old_state="UNKNOWN", new_state="UP"))
            s.add(MonitorState(monitor_id=m.id, state="UP", since=NOW - timedelta(days=30)))
        s.add(Flip(monitor_id=mons[0].id, at=NOW - timedelta(days=3), old_state="UP", new_state="DOWN"))
        s.add(Flip(monitor_id=mons[0].id, at=NOW - timedelta(days=3, hours=-2), old_state="DOWN", new_state="UP"))
        inc = Incident(dedup_key="acme-web-0", source="monitor", severity="urgent", status="triggered",
                       title="acme-web-0 is DOWN", service_id=sa.id, customer_id=a.id, opened_at=NOW)
        s.add(inc)
        await s.flush()
        s.add(IncidentAffected(incident_id=inc.id, key=f"service:{sa.id}", service_id=sa.id, customer_id=a.id,
                               added_at=NOW))
        users = {role: principal_of(await create_user(
            s, name, role, customer_id=a.id if role == Role.CUSTOMER else None, password=f"{name}-pass-1"))
            for role, name in USERS.items()}
    ticket = await intake.open_ticket(sm, users[Role.CUSTOMER], {
        "department": "technical", "service_id": sa.id, "subject": "کندی وب‌سایت",
        "body": "صفحه‌های سایت از صبح خیلی کند باز می‌شوند", "server_address": "127.0.0.1",
        "started_at": "امروز ساعت ۹ صبح", "priority": "important"}, now=NOW - timedelta(hours=2))
    await desk.answer(sm, users[Role.TECHNICIAN], ticket.id, "حافظهٔ نهان پاک شد؛ دوباره بررسی کنید",
                      now=NOW - timedelta(hours=1))
    await fines.post_fine(sm, users[Role.FINANCE], ticket.id, amount_rials=2_000_000,
                          due_at=NOW + timedelta(days=7), now=NOW)
    await create_window(sm, starts_at=NOW + timedelta(days=2), ends_at=NOW + timedelta(days=2, hours=2),
                        now=NOW, title="ارتقای هسته", server_id=srv.id)


def _kind(path: str) -> str:
    """A page's kind: its path with each number as ``id`` ("/desk/tickets/7" -> "/desk/tickets/id")."""
    return re.sub(r"/\d+(?=/|$)", "/id", path)


def _shot_name(path: str) -> str:
    return _kind(path).strip("/").replace("/", "-") or "home"


async def _links(page, base: str, selector: str) -> list[str]:
    hrefs = await page.eval_on_selector_all(selector, "els => els.map(e => e.href)")
    origin = urlsplit(base).netloc
    paths = []
    for href in hrefs:
        url = urlsplit(href)
        if url.netloc == origin and not NOT_PAGES.search(url.path) and url.path not in paths:
            paths.append(url.path)
    return paths


async def _visit(page, base: str, path: str, shot: Path) -> None:
    response = await page.goto(f"{base}{path}")
    assert response is not None and response.status == 200, (path, response and response.status)
    assert response.headers.get("content-type", "").startswith("text/html"), path
    await page.wait_for_load_state("networkidle")
    shot.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(shot), full_page=True)


async def _walk_role(browser, base: str, role: Role) -> tuple[list[str], list[str]]:
    """Log in as ``role``, visit its navigation and one page of each kind linked below it; return the paths
    visited and what went wrong."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    watch = PageWatch(context, base)
    page = await context.new_page()
    await browser_login(page, base, USERS[role], f"{USERS[role]}-pass-1")
    nav = await _links(page, base, "nav.top ul.links a")
    seen_kinds = {_kind(p) for p in nav}
    queue, visited = [(path, 0) for path in nav], []
    while queue:
        path, depth = queue.pop(0)
        await _visit(page, base, path, ARTIFACTS / role.value / f"{_shot_name(path)}.png")
        visited.append(path)
        if depth < DEPTH:
            for below in await _links(page, base, "main a[href]"):
                if _kind(below) not in seen_kinds:
                    seen_kinds.add(_kind(below))
                    queue.append((below, depth + 1))
    await context.close()
    return visited, watch.problems


async def _walk_public(browser, base: str) -> list[str]:
    problems = []
    for width, suffix in ((1280, ""), (390, "-phone")):
        context = await browser.new_context(viewport={"width": width, "height": 844})
        watch = PageWatch(context, base)
        page = await context.new_page()
        for path in PUBLIC:
            await _visit(page, base, path, ARTIFACTS / "public" / f"{_shot_name(path)}{suffix}.png")
        await context.close()
        problems += watch.problems
    return problems


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_every_page_of_every_role_loads_without_a_console_error(db, clock, chromium_path):
    from playwright.async_api import async_playwright

    clock.set(NOW)
    await _world(db.sessionmaker)
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False,
                   support_channels=[("تلفن اضطراری", "۰۲۱-۰۰۰۰۰۰۰۰")])
    server = TestServer(build_app(deps), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    visited: dict[str, list[str]] = {}
    problems: list[str] = []
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium_path, args=list(CHROMIUM_FLAGS))
            problems += await _walk_public(browser, base)
            for role in USERS:
                visited[role.value], found = await _walk_role(browser, base, role)
                problems += [f"{role.value}: {x}" for x in found]
            await browser.close()
    finally:
        await server.close()
    assert problems == [], "\n".join(problems)
    for role in USERS:
        # Every navigation link of the role that this build has a page for was visited.
        registered = {e.path for t in ROUTE_TABLES for e in t.entries if e.method == "GET"}
        expected = [path for path, _label in NAV[role.value] if path in registered]
        assert expected and visited[role.value][:1] and set(expected) <= set(visited[role.value]), role
        for path in visited[role.value]:
            assert (ARTIFACTS / role.value / f"{_shot_name(path)}.png").stat().st_size > 0
    assert (ARTIFACTS / "public" / "status-phone.png").exists()
    print({role: visited[role] for role in visited})
