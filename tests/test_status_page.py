"""The public status page and its Atom feed on SQLite and PostgreSQL: the banner follows the public
services' states, each service has 90 day cells whose figures come from its flips, incidents show with their
public updates, nothing internal leaks, and what staff typed is escaped in the page and in the feed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import expect
from prometheus_client import CollectorRegistry

from dashboards.availability import MonitorHistory, spans_uptime
from dashboards.portal import last_days
from dashboards.status import Overall, overall
from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from dashboards.web.fa import percent
from dashboards.web.html import TEHRAN, jalali_date
from incidents.models import Incident, IncidentAffected
from incidents.statuspage.models import PublicUpdate
from monitor.models import Customer, Flip, Monitor, MonitorState, Service, State
from tests.test_browser import ARTIFACTS, browser  # noqa: F401  (fixtures used by name)

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)   # 13:00 in Tehran
ATOM = "{http://www.w3.org/2005/Atom}"
XSS = "<script>alert('x')</script>"
# Ten Tehran days ago, 02:00 to 05:36 local: 3.6 hours down.
OUTAGE_START = datetime(2026, 11, 18, 2, 0, tzinfo=TEHRAN).astimezone(UTC)
OUTAGE_END = OUTAGE_START + timedelta(hours=3, minutes=36)
INTERNAL = ("acme-", "web-http-probe", "mail-smtp-probe", "dns-udp-probe", "zz-secret", "status_mismatch",
            "connect_refused", "is DOWN")

SERVICES = (("acme-web", "وب آکمه", "میزبانی", "web-http-probe"),
            ("acme-mail", "ایمیل آکمه", "میزبانی", "mail-smtp-probe"),
            ("acme-dns", "دی‌ان‌اس آکمه", "", "dns-udp-probe"))


async def _world(sm, states: dict[str, str]):
    """Three public services of one customer (two in a group), one private; their monitors UP for 100 days
    but for the web monitor's outage ten days ago; two published incidents and one old one."""
    out: dict = {"monitors": {}, "services": {}}
    async with sm.begin() as s:
        c = Customer(name="acme", display_name="شرکت آکمه", verified=True)
        s.add(c)
        await s.flush()
        for name, title, group, monitor in SERVICES:
            svc = Service(name=name, display_name=title, customer_id=c.id, public_status=True, status_group=group)
            s.add(svc)
            await s.flush()
            m = Monitor(name=monitor, kind="http", target="http://127.0.0.1:9/", service_id=svc.id)
            s.add(m)
            await s.flush()
            out["monitors"][monitor], out["services"][name] = m.id, svc.id
            s.add(Flip(monitor_id=m.id, at=NOW - timedelta(days=100), old_state="UNKNOWN", new_state="UP"))
            s.add(MonitorState(monitor_id=m.id, state=states.get(monitor, "UP"), since=NOW - timedelta(hours=1),
                               data={"reason": "status_mismatch", "message": "HTTP 503"}))
        private = Service(name="zz-secret-db", display_name="zz-secret-db", customer_id=c.id)
        s.add(private)
        await s.flush()
        web = out["monitors"]["web-http-probe"]
        s.add_all([Flip(monitor_id=web, at=OUTAGE_START, old_state="UP", new_state="DOWN", reason="connect_refused"),
                   Flip(monitor_id=web, at=OUTAGE_END, old_state="DOWN", new_state="UP")])
        web_svc, mail_svc = out["services"]["acme-web"], out["services"]["acme-mail"]
        current = Incident(dedup_key="web-http-probe", source="monitor", severity="urgent", status="triggered",
                           title="web-http-probe is DOWN", summary="status_mismatch HTTP 503", service_id=web_svc,
                           customer_id=c.id, opened_at=NOW - timedelta(hours=1))
        past = Incident(dedup_key="mail-smtp-probe", source="monitor", severity="important", status="resolved",
                        title="mail-smtp-probe is DOWN", service_id=None, customer_id=c.id,
                        opened_at=NOW - timedelta(days=3), resolved_at=NOW - timedelta(days=3) + timedelta(hours=2))
        old = Incident(dedup_key="dns-udp-probe", source="monitor", severity="urgent", status="resolved",
                       title="dns-udp-probe is DOWN", service_id=out["services"]["acme-dns"], customer_id=c.id,
                       opened_at=NOW - timedelta(days=20), resolved_at=NOW - timedelta(days=20) + timedelta(hours=1))
        hidden = Incident(dedup_key="zz-secret-db", source="monitor", severity="urgent", status="triggered",
                          title="zz-secret-db is DOWN", service_id=private.id, customer_id=c.id,
                          opened_at=NOW - timedelta(hours=2))
        s.add_all([current, past, old, hidden])
        await s.flush()
        s.add(IncidentAffected(incident_id=past.id, key=f"monitor:{out['monitors']['mail-smtp-probe']}",
                               service_id=mail_svc, customer_id=c.id, added_at=past.opened_at))
        s.add_all([
            PublicUpdate(incident_id=current.id, at=NOW - timedelta(minutes=50), status="investigating",
                         text="در حال بررسی قطعی وب هستیم."),
            PublicUpdate(incident_id=current.id, at=NOW - timedelta(minutes=20), status="identified",
                         text=f"علت پیدا شد {XSS} و & در حال رفع است."),
            PublicUpdate(incident_id=past.id, at=past.resolved_at, status="resolved", text="ایمیل دوباره برقرار است."),
        ])
        out.update(current=current.id, past=past.id, old=old.id, hidden=hidden.id)
    return out


async def _client(db, clock, states=None):
    clock.set(NOW)
    world = await _world(db.sessionmaker, states or {})
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False,
                   support_channels=[("تلفن اضطراری", "۰۲۱-۰۰۰۰۰۰۰۰")])
    return world, TestClient(TestServer(build_app(deps), host="127.0.0.1"))


@pytest.fixture
async def status(db, clock):
    world, client = await _client(db, clock)
    async with client:
        world["client"] = client
        world["kind"] = db.kind
        yield world


@pytest.mark.parametrize(("states", "expected"), [
    ([], Overall.EMPTY), (["UP", "UP", "UP"], Overall.OPERATIONAL), (["UP", "MAINTENANCE", "UNKNOWN"], Overall.OPERATIONAL),
    (["UP", "DEGRADED", "UP"], Overall.PARTIAL), (["DOWN", "UP", "UP"], Overall.PARTIAL),
    (["DOWN", "UNREACHABLE", "UP"], Overall.MAJOR), (["DOWN"], Overall.MAJOR), (["DOWN", "UP"], Overall.PARTIAL),
])
def test_the_banner_is_worked_out_from_the_states(states, expected):
    assert overall(states) == expected


@pytest.mark.parametrize(("states", "overall_key", "words"), [
    ({}, "operational", "همهٔ سرویس‌ها برقرارند"),
    ({"web-http-probe": "DOWN"}, "partial", "قطعی بخشی از سرویس‌ها"),
    ({"web-http-probe": "DOWN", "mail-smtp-probe": "UNREACHABLE"}, "major", "قطعی گسترده"),
])
async def test_the_banner_follows_the_public_services_states(db, clock, states, overall_key, words):
    _world_ids, client = await _client(db, clock, states)
    async with client:
        html = await (await client.get("/status")).text()
    banner = re.search(r'<section class="banner[^"]*"[^>]*data-overall="(\w+)">\s*<p>([^<]+)</p>', html)
    assert banner.groups() == (overall_key, words)


async def test_services_are_grouped_each_with_ninety_day_cells(status):
    html = await (await status["client"].get("/status")).text()
    groups = re.findall(r'<h2 class="group-title">([^<]+)</h2>', html)
    assert groups == ["میزبانی"]                       # the named group; the ungrouped service comes after it
    listed = html.split('class="status-group"', 1)[1]
    order = [listed.index(t) for t in ("ایمیل آکمه", "وب آکمه", "دی‌ان‌اس آکمه")]
    assert order == sorted(order)
    for sid in status["services"].values():
        card = html.split(f'data-service="{sid}"', 1)[1].split("</article>", 1)[0]
        cells = re.findall(r'<li class="(\w+)" title="([^"]+)"></li>', card.split('<ol class="bar days"', 1)[1])
        assert len(cells) == 90
        assert all(re.fullmatch(r"[۰-۹]{4}/[۰-۹]{2}/[۰-۹]{2}: [۰-۹]+٫[۰-۹]+٪", t) for _, t in cells), cells[:3]
    assert "zz-secret" not in html


async def test_the_day_of_a_known_outage_shows_its_percent(status):
    html = await (await status["client"].get("/status")).text()
    card = html.split(f'data-service="{status["services"]["acme-web"]}"', 1)[1].split("</article>", 1)[0]
    cells = re.findall(r'<li class="(\w+)" title="([^"]+)"></li>', card)
    days = last_days(90, NOW)
    index = next(i for i, d in enumerate(days) if d.start <= OUTAGE_START < d.end)
    expected = 1 - (OUTAGE_END - OUTAGE_START).total_seconds() / (days[index].end - days[index].start).total_seconds()
    assert cells[index] == ("bad", f"{jalali_date(days[index].start)}: {percent(expected)}")
    # The same figure as the engine's arithmetic, and every other day whole.
    [engine] = spans_uptime([MonitorHistory(1, State.UP, [(OUTAGE_START, State.DOWN), (OUTAGE_END, State.UP)], [])],
                            [days[index]], NOW)
    assert engine.ratio == pytest.approx(expected)
    assert [c for i, c in enumerate(cells) if c[0] != "good"] == [cells[index]]


async def test_incidents_show_with_their_public_updates_and_nothing_internal(status):
    html = await (await status["client"].get("/status")).text()
    current = html.split('class="incidents-public current"', 1)[1].split("</section>", 1)[0]
    past = html.split('class="incidents-public past"', 1)[1].split("</section>", 1)[0]
    assert f'data-id="{status["current"]}"' in current and "در حال بررسی قطعی وب هستیم." in current
    assert "وب آکمه" in current and "قطعی" in current and "شناسایی شد" in current
    assert f'data-id="{status["past"]}"' in past and "ایمیل دوباره برقرار است." in past and "ایمیل آکمه" in past
    assert f'data-id="{status["old"]}"' not in html           # resolved 20 days ago
    assert f'data-id="{status["hidden"]}"' not in html        # on a service not opted in
    for word in INTERNAL:
        assert word not in html, word


async def test_a_public_update_is_escaped_in_the_page(status):
    html = await (await status["client"].get("/status")).text()
    assert XSS not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; و &amp; در" in html


async def test_the_page_links_its_atom_feed_and_the_feed_has_every_public_update_newest_first(status):
    html = await (await status["client"].get("/status")).text()
    assert '<link rel="alternate" type="application/atom+xml" href="/status/feed.atom"' in html
    resp = await status["client"].get("/status/feed.atom")
    assert resp.status == 200 and resp.content_type == "application/atom+xml"
    raw = await resp.read()
    assert XSS.encode() not in raw
    feed = ET.fromstring(raw)
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}id").endswith("/status/feed.atom") and feed.findtext(f"{ATOM}title")
    entries = feed.findall(f"{ATOM}entry")
    texts = [e.findtext(f"{ATOM}content") for e in entries]
    assert texts == [f"علت پیدا شد {XSS} و & در حال رفع است.", "در حال بررسی قطعی وب هستیم.",
                     "ایمیل دوباره برقرار است."]
    times = [datetime.fromisoformat(e.findtext(f"{ATOM}updated")) for e in entries]
    assert times == sorted(times, reverse=True) and all(t.tzinfo is not None for t in times)
    assert datetime.fromisoformat(feed.findtext(f"{ATOM}updated")) == times[0]
    assert [e.findtext(f"{ATOM}title") for e in entries] == ["قطعی: شناسایی شد", "قطعی: در حال بررسی",
                                                            "اختلال: برطرف شد"]
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(set(ids)) == 3 and all(e.find(f"{ATOM}link").get("href").endswith(
        f"/status#incident-{status['current']}") for e in entries[:2])
    for word in INTERNAL:
        assert word.encode() not in raw, word


@pytest.mark.integration
async def test_at_phone_width_the_banner_and_the_bars_read_right_to_left(db, clock, browser):  # noqa: F811
    status, client = await _client(db, clock, {"web-http-probe": "DOWN"})
    async with client:
        await _phone_checks(status, str(client.make_url("")).rstrip("/"), browser, db.kind)


async def _phone_checks(status, base, browser, kind):  # noqa: F811
    page = await browser.new_page(viewport={"width": 390, "height": 844})
    await page.goto(f"{base}/status")
    banner = page.locator("#banner")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("قطعی بخشی از سرویس‌ها")   # one of three services down
    box = await banner.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    card = page.locator(f'article.service[data-service="{status["services"]["acme-web"]}"]')
    cells = card.locator("ol.bar.days > li")
    await expect(cells).to_have_count(90)
    oldest, today = await cells.nth(0).bounding_box(), await cells.nth(89).bounding_box()
    assert oldest["x"] > today["x"]                       # right to left: the oldest day at the right
    assert today["x"] >= 0 and oldest["x"] + oldest["width"] <= 390 and today["width"] > 0
    ends = card.locator(".bar-ends span")
    first, last = await ends.nth(0).bounding_box(), await ends.nth(2).bounding_box()
    assert first["x"] > last["x"]                         # "90 days ago" at the right, "today" at the left
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"status-page-phone-{kind}.png"), full_page=True)


async def test_the_shared_page_is_sent_gzipped_to_who_accepts_it_and_plain_to_who_does_not(status):
    plain = await status["client"].get("/status", headers={"Accept-Encoding": "identity"})
    zipped = await status["client"].get("/status", headers={"Accept-Encoding": "gzip, deflate"})
    assert "Content-Encoding" not in plain.headers and zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding" and plain.content_type == "text/html"
    assert await zipped.text() == await plain.text()
    assert int(zipped.headers["Content-Length"]) * 5 < int(plain.headers["Content-Length"])
