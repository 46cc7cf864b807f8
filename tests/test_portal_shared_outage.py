"""A switch dies (issue 11, item 8): through the real runner and incident engine, then the real portal and
report routes, logged in through the login form. Customer A, whose server sits behind the switch, sees one
"قطعی شبکه" with its Jalali start, end and duration and no internal name; the time counts as downtime in A's
uptime; customer B, not behind the switch, sees nothing; nobody sees another customer behind the switch."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from dashboards.web.fa import duration_fa, percent
from dashboards.web.html import TEHRAN, jalali
from incidents.engine import EngineConfig, IncidentEngine
from incidents.models import Incident, Status
from monitor.accounts import Role, create_user
from monitor.models import Customer, Flip, Service
from tests.engine.helpers import Engine, Target, apply_yaml

# A Saturday morning in Azar 1405, Tehran time.
START = datetime(2026, 11, 28, 10, 0, tzinfo=TEHRAN)
MONTH = "1405-09"
# Names the customers must never see: the device, its monitor, the monitors, the other customer behind it.
INTERNAL = ("zz-core-sw", "zz-sw-mgmt", "alpha-web-http", "beta-web-http", "gamma", "parent_down",
            "status_mismatch", "switch")
PASSWORDS = {"alice": "alice-pass-1", "bob": "bob-pass-1"}


def _inventory(t: Target) -> str:
    return f"""
devices:
  - {{name: zz-core-sw, kind: switch, address: 127.0.0.1}}
customers:
  - {{name: alpha, display_name: "شرکت آلفا", verified: true, services: [{{name: alpha-web, display_name: "وب آلفا"}}]}}
  - {{name: beta, display_name: "شرکت بتا", verified: true, services: [{{name: beta-web, display_name: "وب بتا"}}]}}
  - {{name: gamma, display_name: "zz-gamma-co", verified: true, services: [{{name: gamma-db, display_name: "zz-gamma-db"}}]}}
servers:
  - {{name: alpha-vps, address: 127.0.0.1, parent: zz-core-sw, service: alpha-web}}
  - {{name: beta-vps, address: 127.0.0.1, service: beta-web}}
  - {{name: gamma-vps, address: 127.0.0.1, parent: zz-core-sw, service: gamma-db}}
monitors:
  - {{name: zz-sw-mgmt, kind: http, target: "{t.url('sw')}", interval: 10, timeout_s: 2, device: zz-core-sw}}
  - {{name: alpha-web-http, kind: http, target: "{t.url('alpha')}", interval: 30, timeout_s: 2, server: alpha-vps}}
  - {{name: beta-web-http, kind: http, target: "{t.url('beta')}", interval: 10, timeout_s: 2, server: beta-vps}}
  - {{name: gamma-http, kind: http, target: "{t.url('gamma')}", interval: 10, timeout_s: 2, server: gamma-vps}}
"""


def _unavailable(flips: list[Flip], until: datetime) -> list[tuple[datetime, datetime]]:
    """The spans a monitor's own flips put it in DOWN or UNREACHABLE."""
    out, since = [], None
    for f in flips:
        failing = f.new_state in ("DOWN", "UNREACHABLE")
        if failing and since is None:
            since = f.at
        elif not failing and since is not None:
            out.append((since, f.at))
            since = None
    return out + ([(since, until)] if since is not None else [])


def _union_s(spans: list[tuple[datetime, datetime]]) -> float:
    total, end = 0.0, None
    for s, e in sorted(spans):
        s = max(s, end) if end else s
        if e > s:
            total += (e - s).total_seconds()
        end = max(end, e) if end else e
    return total


async def _flips(site, name: str) -> list[Flip]:
    async with site["sm"]() as s:
        return list((await s.execute(select(Flip).where(Flip.monitor_id == site["monitors"][name])
                                     .order_by(Flip.at, Flip.id))).scalars())


async def _outage(sm, clock, target: Target) -> dict[str, int]:
    """Everything up; then the switch and what is behind it fail for about five minutes; then recovery."""
    runtime = await Engine.create(sm, clock)
    engine = IncidentEngine(sm, clock, EngineConfig(recovery_hold_s=60))
    try:
        await runtime.scheduler.reload(force=True)
        monitors = {c.name: c.id for c in runtime.scheduler.catalog.values()}
        for _ in range(40):
            await runtime.step(1)
            await engine.process_pending()
        for path in ("sw", "alpha", "gamma"):
            target.status[path] = 503
        for _ in range(60):
            await runtime.step(1)
            await engine.process_pending()
        for _ in range(24):
            await runtime.step(10)
            await engine.process_pending()
        target.status.clear()
        for _ in range(150):
            await runtime.step(1)
            await engine.process_pending()
            await engine.sweep()
    finally:
        await runtime.close()
    return monitors


@pytest.fixture
async def site(db, clock):
    clock.set(START)
    target = await Target().start()
    try:
        await apply_yaml(db.sessionmaker, _inventory(target), clock.now())
        monitors = await _outage(db.sessionmaker, clock, target)
    finally:
        await target.close()
    async with db.sessionmaker.begin() as s:
        ids = {c.name: c.id for c in (await s.execute(select(Customer))).scalars()}
        svc = {x.name: x.id for x in (await s.execute(select(Service))).scalars()}
        await create_user(s, "alice", Role.CUSTOMER, customer_id=ids["alpha"], password=PASSWORDS["alice"])
        await create_user(s, "bob", Role.CUSTOMER, customer_id=ids["beta"], password=PASSWORDS["bob"])
    clock.advance(minutes=10)
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False)
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        yield {"client": client, "sm": db.sessionmaker, "svc": svc, "monitors": monitors}


async def _login(client, username: str) -> None:
    client.session.cookie_jar.clear()
    form = await (await client.get("/login")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    resp = await client.post("/login", data={"username": username, "password": PASSWORDS[username],
                                             "csrf": token, "next": ""},
                             cookies={"ngb_login_csrf": token}, allow_redirects=False)
    assert resp.status in (302, 303), await resp.text()


async def _pages(client, service_id: int) -> dict[str, str]:
    out = {}
    for name, path in (("home", "/portal"), ("service", f"/portal/services/{service_id}"),
                       ("report", f"/portal/services/{service_id}/report?month={MONTH}")):
        resp = await client.get(path)
        assert resp.status == 200, (path, resp.status)
        out[name] = await resp.text()
    return out


async def _the_incident(site) -> Incident:
    async with site["sm"]() as s:
        (inc,) = (await s.execute(select(Incident))).scalars()
    assert inc.status == Status.RESOLVED and inc.monitor_id == site["monitors"]["zz-sw-mgmt"]
    return inc


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr class="incident">(.*?)</tr>', html)


async def test_the_switch_outage_is_in_the_customers_portal_and_report_as_a_network_outage(site):
    inc = await _the_incident(site)
    await _login(site["client"], "alice")
    pages = await _pages(site["client"], site["svc"]["alpha-web"])
    for name in ("service", "report"):
        (row,) = _rows(pages[name])
        assert "قطعی شبکه" in row, name
        assert jalali(inc.opened_at) in row and jalali(inc.resolved_at) in row
        assert re.search(r"[۰-۹]{4}/[۰-۹]{2}/[۰-۹]{2} [۰-۹]{2}:[۰-۹]{2}", row)
        assert f'<td class="duration">{duration_fa(inc.duration_s)}</td>' in row
    for name, html in pages.items():
        for word in INTERNAL:
            assert word not in html, (name, word)


async def test_the_outage_lasts_from_the_switch_going_down_to_its_recovery(site):
    inc = await _the_incident(site)
    switch = _unavailable(await _flips(site, "zz-sw-mgmt"), inc.resolved_at)
    assert len(switch) == 1 and switch[0] == (inc.opened_at, inc.resolved_at)
    assert 4 * 60 < inc.duration_s < 7 * 60
    await _login(site["client"], "alice")
    (row,) = _rows((await _pages(site["client"], site["svc"]["alpha-web"]))["service"])
    assert duration_fa((switch[0][1] - switch[0][0]).total_seconds()) in row


async def test_the_customers_uptime_counts_the_switch_outage_as_downtime(site, clock):
    inc = await _the_incident(site)
    own = await _flips(site, "alpha-web-http")
    mine = _unavailable(own, clock.now())
    assert any(f.new_state == "UNREACHABLE" for f in own)
    # The server's own monitor (every 30 s) confirms later than the switch: the difference is what the
    # switch's incident adds, as if the monitor had been UNREACHABLE from the switch's confirmed failure.
    assert mine[0][0] > inc.opened_at
    down_s = _union_s(mine + [(inc.opened_at, inc.resolved_at)])
    known_s = (clock.now() - own[0].at).total_seconds()
    expected = percent(1 - down_s / known_s, 3)
    await _login(site["client"], "alice")
    pages = await _pages(site["client"], site["svc"]["alpha-web"])
    assert f'class="uptime">{expected}<' in pages["report"]
    assert f"<b>{duration_fa(down_s)}</b>" in pages["report"]
    assert f'class="month-uptime">{expected}<' in pages["home"]


async def test_a_customer_not_behind_the_switch_sees_no_outage(site):
    await _login(site["client"], "bob")
    pages = await _pages(site["client"], site["svc"]["beta-web"])
    for name, html in pages.items():
        assert "قطعی شبکه" not in html and not _rows(html), name
        for word in INTERNAL + ("آلفا",):
            assert word not in html, (name, word)
    assert 'class="uptime">۱۰۰٫۰۰۰٪<' in pages["report"]
    assert 'class="month-uptime">۱۰۰٫۰۰۰٪<' in pages["home"]


async def test_the_customer_behind_the_switch_cannot_open_the_other_affected_customers_service(site):
    await _login(site["client"], "alice")
    for path in (f"/portal/services/{site['svc']['gamma-db']}",
                 f"/portal/services/{site['svc']['gamma-db']}/report?month={MONTH}"):
        resp = await site["client"].get(path)
        assert resp.status == 404 and "gamma" not in await resp.text()


@pytest.mark.integration
async def test_the_pdf_report_names_no_device_and_carries_the_network_outage(site):
    import io
    import unicodedata

    from pypdf import PdfReader

    await _login(site["client"], "alice")
    resp = await site["client"].get(f"/portal/services/{site['svc']['alpha-web']}/report.pdf?month={MONTH}")
    assert resp.status == 200
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(await resp.read())).pages)
    for word in INTERNAL:
        assert word not in text, word
    # Extraction gives Arabic presentation forms in visual order: NFKC brings back the letters.
    (row,) = [line for line in unicodedata.normalize("NFKC", text).splitlines() if "شبکه" in line]
    assert "قطعی شبکه" in row and "برطرف شد" in row
