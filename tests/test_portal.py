"""The customer portal, the uptime report and the status page: Persian, scoped to the customer, uptime
time-weighted with maintenance left out."""

from __future__ import annotations

import io
import re
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from dashboards.availability import MonitorHistory, Span, spans_uptime
from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from dashboards.web.html import TEHRAN
from incidents.models import Incident, IncidentAffected
from monitor.accounts import Role, create_user, issue_token
from monitor.models import Customer, Flip, MaintenanceWindow, Monitor, MonitorState, Service, State
from tickets.ledger.models import LedgerEntry

DAY = Span(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))
H = timedelta(hours=1)


def _h(n: float) -> datetime:
    return DAY.start + n * H


@pytest.mark.parametrize("initial,flips,maintenance,ratio,maint_h", [
    (State.UP, [], [], 1.0, 0),
    (State.UP, [(_h(6), State.DOWN), (_h(7), State.UP)], [], 23 / 24, 0),
    (State.UP, [(_h(6), State.DOWN), (_h(7), State.UP)], [(_h(6), _h(7))], 1.0, 1),   # planned: left out
    (State.UP, [(_h(6), State.DOWN), (_h(8), State.UP)], [(_h(7), _h(9))], 21 / 22, 2),
    (State.UNKNOWN, [(_h(12), State.UP)], [], 1.0, 0),                                 # unknown counts for nothing
    (State.UNKNOWN, [], [], None, 0),
    (State.UP, [(_h(0), State.DEGRADED)], [], 1.0, 0),                                 # degraded is available
    (State.UP, [(_h(18), State.UNREACHABLE)], [], 18 / 24, 0),
])
def test_a_days_uptime_is_time_weighted_and_leaves_maintenance_out(initial, flips, maintenance, ratio, maint_h):
    [u] = spans_uptime([MonitorHistory(1, initial, flips, maintenance)], [DAY], now=DAY.end + H)
    assert u.ratio == (pytest.approx(ratio) if ratio is not None else None)
    assert u.maintenance_s == maint_h * 3600


def test_a_service_adds_up_its_monitors_and_days_carry_the_state_over():
    days = [DAY, Span(DAY.end, DAY.end + 24 * H)]
    a = MonitorHistory(1, State.UP, [(_h(23), State.DOWN)], [])
    b = MonitorHistory(2, State.UP, [], [])
    first, second = spans_uptime([a, b], days, now=DAY.end + 48 * H)
    assert first.ratio == pytest.approx(47 / 48)
    assert second.ratio == pytest.approx(0.5)   # monitor 1 stayed DOWN all the next day


def test_time_after_now_has_not_happened_yet():
    [u] = spans_uptime([MonitorHistory(1, State.UP, [(_h(1), State.DOWN)], [])], [DAY], now=_h(2))
    assert u.ratio == pytest.approx(0.5)


# A Saturday, 10:00 in Tehran: office hours.
SATURDAY_10 = datetime(2026, 11, 28, 10, 0, tzinfo=TEHRAN).astimezone(UTC)


async def _world(sm, now):
    async with sm.begin() as s:
        a = Customer(name="acme", display_name="شرکت آکمه", verified=True)
        b = Customer(name="beta", display_name="zz-secret-beta", verified=True)
        s.add_all([a, b])
        await s.flush()
        sa = Service(name="acme-web", display_name="وب آکمه", customer_id=a.id, public_status=True)
        sa2 = Service(name="acme-mail", display_name="ایمیل آکمه", customer_id=a.id)
        sb = Service(name="beta-db", display_name="zz-secret-db", customer_id=b.id, public_status=False)
        s.add_all([sa, sa2, sb])
        await s.flush()
        ma = Monitor(name="acme-web-http", kind="http", target="http://127.0.0.1:9/", service_id=sa.id)
        mb = Monitor(name="beta-db-tcp", kind="tcp", target="127.0.0.1:9", service_id=sb.id)
        s.add_all([ma, mb])
        await s.flush()
        start = now - timedelta(days=40)
        s.add_all([Flip(monitor_id=ma.id, at=start, old_state="UNKNOWN", new_state="UP"),
                   Flip(monitor_id=ma.id, at=now - timedelta(hours=5), old_state="UP", new_state="DOWN"),
                   Flip(monitor_id=ma.id, at=now - timedelta(hours=4), old_state="DOWN", new_state="UP"),
                   MonitorState(monitor_id=ma.id, state="UP", since=now - timedelta(hours=4)),
                   MaintenanceWindow(title="ارتقای سوئیچ", starts_at=now + timedelta(days=2),
                                     ends_at=now + timedelta(days=2, hours=2), customer_id=a.id, created_at=now)])
        await _incidents_and_money(s, now, a.id, b.id, sa.id, sb.id)
        ua = await create_user(s, "alice", Role.CUSTOMER, customer_id=a.id)
        un = await create_user(s, "nora", Role.NOC)
        return {"a": sa.id, "b": sb.id, "alice": await issue_token(s, ua.id, "t", now),
                "nora": await issue_token(s, un.id, "t", now)}


async def _incidents_and_money(s, now, a, b, sa, sb):
    for key, cust, svc, opened, hours in (("inc-a", a, sa, now - timedelta(hours=5), 1.0),
                                           ("zz-secret-inc", b, sb, now - timedelta(hours=3), 2.0)):
        inc = Incident(dedup_key=key, source="monitor", severity="urgent", status="resolved", title=key,
                       service_id=svc, customer_id=cust, opened_at=opened, resolved_at=opened + timedelta(hours=hours),
                       duration_s=hours * 3600)
        s.add(inc)
        await s.flush()
        s.add(IncidentAffected(incident_id=inc.id, key=f"service:{svc}", service_id=svc, customer_id=cust,
                               added_at=opened))
    s.add(LedgerEntry(customer_id=a, kind="visit", amount_rials=2_500_000, idempotency_key="v1",
                      posted_at=now - timedelta(days=1), description="visit"))
    s.add(LedgerEntry(customer_id=b, kind="visit", amount_rials=7_777_770, idempotency_key="v2",
                      posted_at=now - timedelta(days=1), description="zz-secret-visit"))


@pytest.fixture
async def portal(db, clock):
    clock.set(SATURDAY_10)
    w = await _world(db.sessionmaker, clock.now())
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(),
                   support_channels=[("تلفن اضطراری", "021-00000000"), ("تلگرام", "@negahban_support")])
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        w["client"] = client
        w["as_alice"] = {"Authorization": f"Bearer {w['alice']}"}
        yield w


async def test_a_customer_sees_only_their_services_in_persian_rtl(portal):
    html = await (await portal["client"].get("/portal", headers=portal["as_alice"])).text()
    assert 'dir="rtl"' in html and "وب آکمه" in html and "ایمیل آکمه" in html
    assert "zz-secret" not in html
    assert html.count('class="uptime-bar"') == 2
    assert 'data-open="true"' in html                  # Saturday 10:00 Tehran: phone support is open
    card = html.split(f'data-service="{portal["a"]}"', 1)[1]
    month = re.search(r'class="month-uptime">([^<]+)<', card).group(1)
    assert re.fullmatch(r"[۰-۹]+٫[۰-۹]+٪", month)        # Persian digits, decimal separator and percent


async def test_the_portal_shows_the_customers_own_statement_of_the_month(portal):
    html = await (await portal["client"].get("/portal", headers=portal["as_alice"])).text()
    assert "صورت‌حساب آذر ۱۴۰۵" in html and "۲۵۰٬۰۰۰ تومان" in html
    assert "۷۷۷٬۷۷۷" not in html


async def test_the_service_page_lists_its_incidents_with_durations(portal):
    html = await (await portal["client"].get(f"/portal/services/{portal['a']}", headers=portal["as_alice"])).text()
    assert html.count('<tr class="incident">') == 1 and '<td class="duration">۱ ساعت</td>' in html


async def test_phone_support_is_shown_closed_on_friday(portal, clock):
    clock.set(SATURDAY_10 - timedelta(days=1))
    html = await (await portal["client"].get("/portal", headers=portal["as_alice"])).text()
    assert 'data-open="false"' in html


async def test_another_customers_service_and_report_are_not_found(portal):
    for path in (f"/portal/services/{portal['b']}", f"/portal/services/{portal['b']}/report",
                 f"/portal/services/{portal['b']}/report.pdf"):
        resp = await portal["client"].get(path, headers=portal["as_alice"])
        assert resp.status == 404 and "zz-secret" not in await resp.text()


async def test_the_service_page_has_a_bar_monthly_uptime_and_a_response_time_chart(portal):
    html = await (await portal["client"].get(f"/portal/services/{portal['a']}", headers=portal["as_alice"])).text()
    assert "دسترس‌پذیری ماهانه" in html and '<svg' in html and 'class="chart"' in html
    assert html.count('class="day ') == 90


async def test_the_monthly_report_gives_time_weighted_uptime(portal, clock):
    # One hour down in the current Jalali month so far (Azar 1405 began 2026-11-22 00:00 Tehran).
    resp = await portal["client"].get(f"/portal/services/{portal['a']}/report?month=1405-09",
                                      headers=portal["as_alice"])
    html = await resp.text()
    assert resp.status == 200 and "آذر ۱۴۰۵" in html
    elapsed_h = (clock.now() - datetime(2026, 11, 22, tzinfo=TEHRAN)).total_seconds() / 3600
    expected = f"{(1 - 1 / elapsed_h) * 100:.3f}".translate(str.maketrans("0123456789.", "۰۱۲۳۴۵۶۷۸۹٫"))
    assert f'class="uptime">{expected}٪' in html
    assert "۱ ساعت" in html
    assert html.count('<tr class="incident">') == 1 and "zz-secret" not in html


async def test_a_bad_month_is_refused_naming_the_field(portal):
    resp = await portal["client"].get(f"/portal/services/{portal['a']}/report?month=1405-13",
                                      headers=portal["as_alice"])
    assert resp.status == 400 and (await resp.json())["field"] == "month"


async def test_the_year_report_has_twelve_months(portal):
    html = await (await portal["client"].get(f"/portal/services/{portal['a']}/report?year=1405",
                                             headers=portal["as_alice"])).text()
    assert "سال ۱۴۰۵" in html and "فروردین ۱۴۰۵" in html and "اسفند ۱۴۰۵" in html


@pytest.mark.integration
async def test_the_pdf_report_is_rendered_by_chromium_with_a_persian_font(portal):
    from pypdf import PdfReader

    resp = await portal["client"].get(f"/portal/services/{portal['a']}/report.pdf?month=1405-09",
                                      headers=portal["as_alice"])
    body = await resp.read()
    assert resp.status == 200 and body.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(body))
    fonts = {str(f.get_object().get("/BaseFont")) for p in reader.pages
             for f in (p.get("/Resources", {}).get("/Font", {}) or {}).values()}
    assert any("Arabic" in f for f in fonts), fonts     # Noto Naskh/Sans Arabic from fonts-noto-core
    # Shaped glyphs come back as Arabic presentation forms; NFKC maps them to the letters that were written.
    text = unicodedata.normalize("NFKC", "".join(p.extract_text() for p in reader.pages))
    assert "شرکت آکمه" in text and "گزارش" in text and "آذر" in text, text[:300]


async def test_the_status_page_shows_opted_in_services_maintenance_and_other_channels(portal):
    resp = await portal["client"].get("/status")
    html = await resp.text()
    assert resp.status == 200 and "وب آکمه" in html
    assert "ایمیل آکمه" not in html and "zz-secret" not in html      # not opted in
    assert "ارتقای سوئیچ" in html and "@negahban_support" in html


@pytest.mark.parametrize(("query", "field"), [("year=99999", "year"), ("year=1299", "year"),
                                             ("month=99999-01", "month"), ("month=1405-00", "month")])
async def test_a_report_for_a_jalali_year_out_of_range_is_refused_naming_the_field(portal, query, field):
    for path in ("report", "report.pdf"):
        resp = await portal["client"].get(f"/portal/services/{portal['a']}/{path}?{query}",
                                          headers=portal["as_alice"])
        assert resp.status == 400 and (await resp.json())["field"] == field
