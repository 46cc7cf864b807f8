"""Finance's ledger and the NOC's maintenance planning in the browser, through the real HTTP routes after
logging in through the login form (SQLite and PostgreSQL): who may see them, the entries and the totals per
customer (checked against sums of the rows the test posted), the customer and Jalali month filters, marking a
fine paid through the form (CSRF required), amounts the API refuses refused here in Persian with the text
kept, escaping; the maintenance windows current/upcoming/past and the form to plan one; and one story in real
Chromium: finance filters a customer, marks a fine paid and sees the total change."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from html import escape, unescape
from pathlib import Path

import jdatetime
import pytest
from aiohttp.test_utils import TestClient, TestServer
from ledger_world import NOW, make_ledger_world
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from dashboards.pdf import CHROMIUM_FLAGS
from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from dashboards.web.html import TEHRAN, fa_digits, jalali
from dashboards.web.templating import catalog
from monitor.accounts import Role, create_user
from monitor.maintenance import create_window
from monitor.models import MaintenanceWindow, Monitor
from tests.web_forms import HTML
from tests.web_forms import csrf as _csrf
from tests.web_forms import get_page as _page
from tests.web_forms import login as _login
from tickets import fines
from tickets.ledger.models import LedgerEntry, PricedItem
from tickets.ledger.payments import record_payment
from tickets.models import Fine, Ticket
from tickets.sla import jalali_month_span

XSS = "<script>alert(1)</script><b>beta"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORDS = {"fin": Role.FINANCE, "adm": Role.ADMIN, "tec": Role.TECHNICIAN, "noc": Role.NOC,
             "cus": Role.CUSTOMER}
LEDGER_FA = catalog("fa")["Ledger"]
LAST_MONTH = NOW - timedelta(days=30)  # 1405/08 in Tehran; NOW is 1405/09/05


def _jmonth(at) -> tuple[int, int]:
    d = jdatetime.date.fromgregorian(date=at.astimezone(TEHRAN).date())
    return d.year, d.month


async def _world(sm):
    w = await make_ledger_world(sm, secret=XSS)
    async with sm.begin() as s:
        for name, role in PASSWORDS.items():
            await create_user(s, name, role, password=f"{name}-pass-1",
                              customer_id=w.customer_a if role is Role.CUSTOMER else None)
    # Entries of two months for two customers, posted through the services.
    fine_a = await fines.post_fine(sm, w.finance, w.ticket_a, amount_rials=1_200_000, due_at=NOW - timedelta(days=1),
                                   now=LAST_MONTH)
    fine_b = await fines.post_fine(sm, w.finance, w.ticket_b, amount_rials=3_400_000, due_at=NOW + timedelta(days=9),
                                   now=NOW)
    fine_a2 = await fines.post_fine(sm, w.finance, w.ticket_a, amount_rials=500_000, due_at=NOW + timedelta(days=5),
                                    now=NOW)
    await record_payment(sm, w.finance, customer_id=w.customer_a, amount_rials=250_000, reference="bank-77",
                         now=NOW + timedelta(hours=1))
    return w, {"a": fine_a, "b": fine_b, "a2": fine_a2}


@pytest.fixture
async def site(db, clock):
    clock.set(NOW + timedelta(hours=2))
    w, fs = await _world(db.sessionmaker)
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False)
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        yield {"client": client, "sm": db.sessionmaker, "w": w, "fines": fs, "clock": clock}








def _totals(html: str) -> dict[int, int]:
    """Customer id -> the net rials the page states (``data-rials``), from the totals table."""
    out = {}
    for cid, row in re.findall(r'<tr class="total" data-customer="(\d+)">(.*?)</tr>', html, re.S):
        out[int(cid)] = int(re.search(r'class="net" data-rials="(-?\d+)"', row).group(1))
    return out


def _entries(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="entry" data-id="(\d+)"', html)]


def _fines(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="fine[^"]*" data-id="(\d+)"', html)]


async def _db_entries(sm, *where) -> list[LedgerEntry]:
    async with sm() as s:
        return list((await s.execute(select(LedgerEntry).where(*where))).scalars().all())


def _sums(rows) -> dict[int, int]:
    out: dict[int, int] = {}
    for e in rows:
        out[e.customer_id] = out.get(e.customer_id, 0) + e.amount_rials
    return out


async def _count(sm, model) -> int:
    async with sm() as s:
        return int(await s.scalar(select(func.count()).select_from(model)))


# --- who may see what ---------------------------------------------------------------------------------------

async def test_only_finance_and_admins_see_the_ledger_and_only_noc_and_admins_plan_maintenance(site):
    client, fine = site["client"], site["fines"]["a"]
    for path in ("/ledger", "/noc/maintenance"):
        resp = await client.get(path, headers=HTML, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == f"/login?next={path}", path
    assert (await client.post(f"/ledger/fines/{fine.id}/paid", data={})).status == 401
    assert (await client.post("/noc/maintenance", data={})).status == 401
    for who in ("cus", "tec", "noc"):
        await _login(client, who)
        status, html = await _page(client, "/ledger")
        assert status == 403 and "دسترسی ندارید" in html and "۱٬۲۰۰٬۰۰۰" not in html, who
        home = await _page(client, "/portal" if who == "cus" else "/noc")
        resp = await client.post(f"/ledger/fines/{fine.id}/paid", data={"csrf": _csrf(home[1])}, headers=HTML)
        assert resp.status == 403, who
    for who in ("cus", "tec", "fin"):
        await _login(client, who)
        status, html = await _page(client, "/noc/maintenance")
        assert status == 403 and "دسترسی ندارید" in html, who
    for who in ("fin", "adm"):
        await _login(client, who)
        status, html = await _page(client, "/ledger")
        assert status == 200 and 'dir="rtl"' in html and '<a href="/ledger" aria-current="page">' in html, who
    for who in ("noc", "adm"):
        await _login(client, who)
        status, html = await _page(client, "/noc/maintenance")
        assert status == 200 and '<a href="/noc/maintenance" aria-current="page">' in html, who
    async with site["sm"]() as s:
        assert (await s.get(Fine, fine.id)).paid_at is None


# --- entries, totals and filters ----------------------------------------------------------------------------

async def test_the_totals_per_customer_are_the_sums_of_the_entries(site):
    client, sm, w = site["client"], site["sm"], site["w"]
    await _login(client, "fin")
    status, html = await _page(client, "/ledger")
    rows = await _db_entries(sm)
    assert status == 200 and len(rows) == 4
    assert _totals(html) == _sums(rows) and set(_totals(html)) == {w.customer_a, w.customer_b}
    assert sorted(_entries(html)) == sorted(e.id for e in rows)
    assert _entries(html)[0] == max(rows, key=lambda e: e.posted_at).id  # newest first
    net = sum(e.amount_rials for e in rows)
    assert f'class="net-all" data-rials="{net}"' in html
    # Amounts are integer rials, Persian digits and the Persian thousands separator.
    for total in _sums(rows).values():
        assert total > 0 and fa_digits(f"{total:,}".replace(",", "٬")) + " ریال" in html
    payment = next(e for e in rows if e.kind == "payment")
    assert "\u2066-۲۵۰٬۰۰۰\u2069 ریال" in html and payment.amount_rials == -250_000
    assert jalali(payment.posted_at) in html and ">پرداخت<" in html and ">جریمه<" in html
    assert 'class="customer">acme<' in html or ">acme</a>" in html


async def test_the_customer_and_month_filters(site):
    client, sm, w = site["client"], site["sm"], site["w"]
    await _login(client, "fin")
    status, html = await _page(client, f"/ledger?customer={w.customer_a}")
    mine = await _db_entries(sm, LedgerEntry.customer_id == w.customer_a)
    assert status == 200 and sorted(_entries(html)) == sorted(e.id for e in mine)
    assert _totals(html) == _sums(mine) and f'<option value="{w.customer_a}" selected>' in html
    assert sorted(_fines(html)) == sorted([site["fines"]["a"].id, site["fines"]["a2"].id])

    year, month = _jmonth(LAST_MONTH)
    start, end = jalali_month_span(year, month)
    typed = fa_digits(f"{year}/{month:02d}")  # typed in Persian digits
    status, html = await _page(client, f"/ledger?month={typed}")
    in_month = await _db_entries(sm, LedgerEntry.posted_at >= start, LedgerEntry.posted_at < end)
    assert status == 200 and len(in_month) == 1 and _entries(html) == [in_month[0].id]
    assert _totals(html) == _sums(in_month) and f'value="{typed}"' in html

    year, month = _jmonth(NOW)
    start, end = jalali_month_span(year, month)
    status, html = await _page(client, f"/ledger?customer={w.customer_a}&month={year}-{month}")
    both = await _db_entries(sm, LedgerEntry.customer_id == w.customer_a, LedgerEntry.posted_at >= start,
                             LedgerEntry.posted_at < end)
    assert status == 200 and sorted(_entries(html)) == sorted(e.id for e in both) and len(both) == 2
    assert _totals(html) == _sums(both)

    status, html = await _page(client, "/ledger?month=1390/01")
    assert status == 200 and _entries(html) == [] and "هیچ ردیفی در دفتر" in html

    for query, message, kept in (("month=13/1405", "ماه را به صورت سال و ماه شمسی", 'value="13/1405"'),
                                 ("month=1405/13", "ماه را به صورت سال و ماه شمسی", 'value="1405/13"'),
                                 ("customer=999999", "مشتری را از فهرست برگزینید", None),
                                 ("customer=abc", "مشتری را از فهرست برگزینید", None),
                                 (f"customer={2**63}", "مشتری را از فهرست برگزینید", None)):
        status, html = await _page(client, f"/ledger?{query}")
        assert status == 400 and message in html and _entries(html) == [], query
        assert kept is None or kept in html


async def test_the_pager_keeps_the_filters(site):
    client, sm, w = site["client"], site["sm"], site["w"]
    for n in range(55):  # 55 more payments: two pages of customer A
        await record_payment(sm, w.finance, customer_id=w.customer_a, amount_rials=1_000 + n, reference=f"p-{n}",
                             now=NOW + timedelta(minutes=n))
    await _login(client, "fin")
    status, first = await _page(client, f"/ledger?customer={w.customer_a}")
    mine = await _db_entries(sm, LedgerEntry.customer_id == w.customer_a)
    assert status == 200 and len(_entries(first)) == 50 and "صفحه ۱ / ۲" in first
    assert _totals(first) == _sums(mine)  # over every entry, not the page
    link = unescape(re.search(r'<a rel="next" href="([^"]+)"', first).group(1))
    assert f"customer={w.customer_a}" in link and "page=2" in link
    status, second = await _page(client, "/ledger" + link)
    assert sorted(_entries(first) + _entries(second)) == sorted(e.id for e in mine)


# --- marking a fine paid ------------------------------------------------------------------------------------

async def test_marking_a_fine_paid_through_the_form_needs_the_csrf_token(site):
    client, sm, w, fine = site["client"], site["sm"], site["w"], site["fines"]["a"]
    await _login(client, "fin")
    status, html = await _page(client, f"/ledger?customer={w.customer_a}")
    before = _totals(html)[w.customer_a]
    assert f'action="/ledger/fines/{fine.id}/paid"' in html
    for data in ({}, {"csrf": "forged"}):
        resp = await client.post(f"/ledger/fines/{fine.id}/paid", data=data | {"customer": str(w.customer_a)},
                                 headers=HTML, allow_redirects=False)
        assert resp.status == 403
    async with sm() as s:
        assert (await s.get(Fine, fine.id)).paid_at is None
    assert len(await _db_entries(sm)) == 4

    resp = await client.post(f"/ledger/fines/{fine.id}/paid",
                             data={"csrf": _csrf(html), "customer": str(w.customer_a), "month": ""},
                             headers=HTML, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/ledger?customer={w.customer_a}&done=paid"
    status, html = await _page(client, resp.headers["Location"])
    mine = await _db_entries(sm, LedgerEntry.customer_id == w.customer_a)
    assert status == 200 and "جریمه پرداخت‌شده ثبت شد" in html
    assert _totals(html) == _sums(mine) and _totals(html)[w.customer_a] == before - fine.amount_rials
    assert fine.id not in _fines(html) and site["fines"]["a2"].id in _fines(html)
    payment = [e for e in mine if e.fine_id == fine.id and e.kind == "payment"]
    assert [p.amount_rials for p in payment] == [-fine.amount_rials]
    async with sm() as s:
        assert (await s.get(Fine, fine.id)).paid_at is not None
    # Again (a double click): harmless, nothing more is posted.
    again = await client.post(f"/ledger/fines/{fine.id}/paid", data={"csrf": _csrf(html)}, allow_redirects=False)
    assert again.status == 303 and len(await _db_entries(sm, LedgerEntry.customer_id == w.customer_a)) == len(mine)
    missing = await client.post("/ledger/fines/999999/paid", data={"csrf": _csrf(html)}, headers=HTML)
    assert missing.status == 404


# --- charging agreed work -----------------------------------------------------------------------------------

async def test_a_charge_through_the_form_is_posted_like_the_api_posts_it(site):
    client, sm, w = site["client"], site["sm"], site["w"]
    await _login(client, "fin")
    status, html = await _page(client, "/ledger")
    resp = await client.post("/ledger/items", data={
        "csrf": _csrf(html), "ticket_id": fa_digits(w.ticket_b), "kind": "out_of_scope",
        "amount_rials": "۲٬۵۰۰٬۰۰۰", "description": "نصب نرم‌افزار خارج از قرارداد", "customer": "", "month": ""},
        allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ledger?done=item"
    status, html = await _page(client, resp.headers["Location"])
    charged = await _db_entries(sm, LedgerEntry.kind == "out_of_scope")
    assert [(e.customer_id, e.amount_rials, e.ticket_id) for e in charged] == [(w.customer_b, 2_500_000, w.ticket_b)]
    assert "هزینه در دفتر ثبت شد" in html and charged[0].id in _entries(html)
    assert _totals(html) == _sums(await _db_entries(sm))


@pytest.mark.parametrize("typed, message", [
    (str(2**63), "حداکثر ۱٬۰۰۰٬۰۰۰٬۰۰۰٬۰۰۰٬۰۰۰ ریال"),
    (str(2**64 + 1), "حداکثر ۱٬۰۰۰٬۰۰۰٬۰۰۰٬۰۰۰٬۰۰۰ ریال"),
    ("-5000", "دست‌کم ۱ ریال"),
    ("0", "دست‌کم ۱ ریال"),
    ("12.5", "بدون اعشار"),
    ("دو میلیون", "بدون اعشار"),
    ("", "بدون اعشار"),
])
async def test_an_amount_the_api_refuses_is_refused_in_persian_with_the_text_kept(site, typed, message):
    client, sm, w = site["client"], site["sm"], site["w"]
    await _login(client, "fin")
    status, html = await _page(client, "/ledger")
    description = "کار <b>ویژه</b> & بیشتر"
    resp = await client.post("/ledger/items", data={
        "csrf": _csrf(html), "ticket_id": str(w.ticket_a), "kind": "package", "amount_rials": typed,
        "description": description}, headers=HTML)
    text = await resp.text()
    assert resp.status == 400 and resp.content_type == "text/html" and message in text
    assert f'id="f-amount" value="{escape(typed)}" dir="ltr" inputmode="numeric" aria-invalid="true"' in text
    assert f">{escape(description)}</textarea>" in text and '<option value="package" selected>' in text
    assert await _count(sm, PricedItem) == 0 and len(await _db_entries(sm)) == 4
    # The JSON API refuses the same amount.
    try:
        number = int(typed)
    except ValueError:
        return
    api = await client.post("/api/v1/ledger/items", json={"ticket_id": w.ticket_a, "kind": "package",
                                                           "amount_rials": number},
                            headers={"X-CSRF-Token": _csrf(html)})
    assert api.status == 400 and (await api.json())["field"] == "amount_rials"


async def test_a_ticket_in_scope_or_unknown_is_refused_in_persian(site):
    client, sm, w = site["client"], site["sm"], site["w"]
    async with sm.begin() as s:
        (await s.get(Ticket, w.ticket_a)).scope = "in"
    await _login(client, "adm")
    status, html = await _page(client, "/ledger")
    for ticket, message in ((str(w.ticket_a), "در محدودهٔ پشتیبانی است"), ("999999", "شمارهٔ یک تیکت موجود"),
                            ("x1", "شمارهٔ یک تیکت موجود"), (str(2**63), "شمارهٔ یک تیکت موجود")):
        resp = await client.post("/ledger/items", data={"csrf": _csrf(html), "ticket_id": ticket,
                                                        "kind": "out_of_scope", "amount_rials": "1000"},
                                 headers=HTML)
        text = await resp.text()
        assert resp.status == 400 and message in text and f'value="{ticket}"' in text, ticket
    assert await _count(sm, PricedItem) == 0
    resp = await client.post("/ledger/items", data={"ticket_id": str(w.ticket_b), "kind": "out_of_scope",
                                                    "amount_rials": "1000"}, headers=HTML)
    assert resp.status == 403 and await _count(sm, PricedItem) == 0  # no CSRF token


async def test_a_customer_name_with_markup_is_escaped(site):
    client, sm, w = site["client"], site["sm"], site["w"]
    await create_window(sm, starts_at=NOW, ends_at=NOW + timedelta(hours=4), now=NOW, customer_id=w.customer_b,
                        title=XSS)
    await _login(client, "adm")
    for path in ("/ledger", f"/ledger?customer={w.customer_b}", "/noc/maintenance"):
        status, html = await _page(client, path)
        assert status == 200 and XSS not in html and escape(XSS) in html and "<script" not in html, path


# --- maintenance --------------------------------------------------------------------------------------------

def _windows(html: str) -> dict[int, str]:
    return {int(i): when for i, when in re.findall(r'<tr class="window" data-id="(\d+)" data-when="(\w+)">', html)}


async def _monitor(sm) -> int:
    async with sm.begin() as s:
        m = Monitor(name="acme-web", kind="tcp", target="127.0.0.1:9")
        s.add(m)
        await s.flush()
        return m.id


async def test_maintenance_windows_are_listed_current_upcoming_and_past(site):
    client, sm, w, clock = site["client"], site["sm"], site["w"], site["clock"]
    now = clock.now()
    mon = await _monitor(sm)
    current = await create_window(sm, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1), now=now,
                                  monitor_id=mon, title="تعویض دیسک")
    upcoming = await create_window(sm, starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=2, hours=3),
                                   now=now, customer_id=w.customer_a, title="ارتقای هسته")
    past = await create_window(sm, starts_at=now - timedelta(days=3), ends_at=now - timedelta(days=2), now=now,
                               monitor_id=mon, title="جابه‌جایی رک")
    weekly = await create_window(sm, starts_at=now - timedelta(days=30), rrule="FREQ=WEEKLY", duration_s=7200,
                                 now=now, monitor_id=mon, title="پشتیبان‌گیری هفتگی")
    await _login(client, "noc")
    status, html = await _page(client, "/noc/maintenance")
    assert status == 200
    assert _windows(html) == {current.id: "current", upcoming.id: "upcoming", past.id: "past",
                              weekly.id: "upcoming"}
    assert jalali(upcoming.starts_at) in html and jalali(past.ends_at) in html and "acme" in html
    next_weekly = now - timedelta(days=30) + timedelta(days=35)  # the weekly occurrence after now
    assert jalali(next_weekly) in html and "FREQ=WEEKLY" in html and "۲ ساعت" in html
    clock.set(next_weekly + timedelta(minutes=30))
    await _login(client, "noc")  # days later: a new session
    status, html = await _page(client, "/noc/maintenance")
    assert _windows(html)[weekly.id] == "current" and _windows(html)[upcoming.id] == "past"
    assert _windows(html)[current.id] == "past"


async def test_planning_a_window_through_the_form(site):
    client, sm, w = site["client"], site["sm"], site["w"]
    mon = await _monitor(sm)
    await _login(client, "noc")
    status, html = await _page(client, "/noc/maintenance")
    form = {"csrf": _csrf(html), "title": "ارتقای سوئیچ", "scope": "monitor", "target": fa_digits(mon),
            "starts_at": "۱۴۰۵/۰۹/۱۰ ۰۲:۰۰", "ends_at": "1405/09/10 04:30", "rrule": "", "duration_min": ""}
    resp = await client.post("/noc/maintenance", data=form, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/noc/maintenance?done=created"
    async with sm() as s:
        rows = (await s.execute(select(MaintenanceWindow))).scalars().all()
    assert len(rows) == 1 and rows[0].monitor_id == mon and rows[0].title == "ارتقای سوئیچ"
    start = jdatetime.datetime(1405, 9, 10, 2, 0).togregorian().replace(tzinfo=TEHRAN)
    assert rows[0].starts_at.replace(tzinfo=UTC) == start and rows[0].ends_at - rows[0].starts_at == timedelta(
        hours=2, minutes=30)
    status, html = await _page(client, resp.headers["Location"])
    assert "پنجرهٔ نگهداری ثبت شد" in html and _windows(html) == {rows[0].id: "upcoming"}
    assert "۱۴۰۵/۰۹/۱۰ ۰۲:۰۰" in html and "۱۴۰۵/۰۹/۱۰ ۰۴:۳۰" in html

    weekly = form | {"scope": "customer", "target": str(w.customer_a), "ends_at": "", "rrule": "FREQ=WEEKLY;BYDAY=FR",
                     "duration_min": "۹۰"}
    resp = await client.post("/noc/maintenance", data=weekly, allow_redirects=False)
    assert resp.status == 303
    async with sm() as s:
        series = (await s.execute(select(MaintenanceWindow).where(MaintenanceWindow.customer_id == w.customer_a))
                  ).scalar_one()
    assert (series.rrule, series.duration_s, series.ends_at) == ("FREQ=WEEKLY;BYDAY=FR", 5400, None)


@pytest.mark.parametrize("change, field, message", [
    ({"starts_at": "1405/13/01 02:00"}, "f-starts", "تاریخ و ساعت شمسی"),
    ({"starts_at": "tomorrow"}, "f-starts", "تاریخ و ساعت شمسی"),
    ({"ends_at": "1405/09/10 01:00"}, "f-ends", "پایانی پس از آغازش"),
    ({"ends_at": ""}, "f-ends", "پایانی پس از آغازش"),
    ({"target": "999999"}, "f-target", "با این شماره نیست"),
    ({"target": str(2**63)}, "f-target", "با این شماره نیست"),
    ({"scope": "galaxy"}, None, "چه چیزی را در بر می‌گیرد"),
    ({"rrule": "FREQ=SOMETIMES", "duration_min": "60"}, "f-rrule", "قاعدهٔ تکرار درست نیست"),
    ({"rrule": "FREQ=DAILY", "duration_min": ""}, "f-duration", "طولش را به دقیقه"),
    ({"title": "ب" * 201}, "f-title", "حداکثر ۲۰۰ نویسه"),
])
async def test_a_refused_window_is_shown_again_in_persian_and_nothing_is_written(site, change, field, message):
    client, sm = site["client"], site["sm"]
    mon = await _monitor(sm)
    await _login(client, "adm")
    status, html = await _page(client, "/noc/maintenance")
    form = {"csrf": _csrf(html), "title": "کار <b>شبانه</b>", "scope": "monitor", "target": str(mon),
            "starts_at": "1405/09/10 02:00", "ends_at": "1405/09/10 04:00", "rrule": "", "duration_min": ""} | change
    resp = await client.post("/noc/maintenance", data=form, headers=HTML)
    text = await resp.text()
    assert resp.status == 400 and message in text, change
    assert f'value="{escape(form["title"])}"' in text and f'value="{escape(form["starts_at"])}"' in text
    if field:
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', text), field
    assert await _count(sm, MaintenanceWindow) == 0


# --- the story in a real browser ----------------------------------------------------------------------------



@pytest.mark.integration
async def test_finance_filters_a_customer_marks_a_fine_paid_and_sees_the_total_change(db, clock, chromium_path):
    from playwright.async_api import async_playwright, expect

    clock.set(NOW + timedelta(hours=2))
    ARTIFACTS.mkdir(exist_ok=True)
    w, fs = await _world(db.sessionmaker)
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False)
    server = TestServer(build_app(deps), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    errors: list[str] = []
    before = _sums(await _db_entries(db.sessionmaker, LedgerEntry.customer_id == w.customer_a))[w.customer_a]
    fine = fs["a"]
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium_path, args=list(CHROMIUM_FLAGS))
            page = await (await browser.new_context()).new_page()
            page.on("console", lambda m: errors.append(f"{m.text} {m.location}") if m.type == "error" else None)
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            await page.goto(f"{base}/login")
            await page.fill("input[name=username]", "fin")
            await page.fill("input[name=password]", "fin-pass-1")
            await page.click("button[type=submit]")
            await page.wait_for_url(re.compile(r"/(noc|portal|ledger)"))
            await page.goto(f"{base}/ledger")
            await expect(page.locator("h1")).to_have_text(LEDGER_FA)
            await page.select_option("#f-customer", str(w.customer_a))
            await page.click("#apply-filters")
            await page.wait_for_url(re.compile(rf"/ledger\?customer={w.customer_a}"))
            total = page.locator(f'tr.total[data-customer="{w.customer_a}"] .net')
            await expect(total).to_have_attribute("data-rials", str(before))
            await expect(page.locator(f'tr.total[data-customer="{w.customer_b}"]')).to_have_count(0)
            await page.screenshot(path=str(ARTIFACTS / f"ledger-{db.kind}.png"), full_page=True)
            await page.locator(f'tr.fine[data-id="{fine.id}"] .mark-paid button').click()
            await page.wait_for_url(re.compile(r"done=paid"))
            await expect(page.locator(".notice")).to_contain_text("جریمه پرداخت‌شده ثبت شد")
            after = before - fine.amount_rials
            await expect(total).to_have_attribute("data-rials", str(after))
            await expect(total).to_have_text(fa_digits(f"{after:,}".replace(",", "٬")) + " ریال")
            await expect(page.locator(f'tr.fine[data-id="{fine.id}"]')).to_have_count(0)
            await page.screenshot(path=str(ARTIFACTS / f"ledger-paid-{db.kind}.png"), full_page=True)
            await browser.close()
    finally:
        await server.close()
    assert errors == [], errors
    async with db.sessionmaker() as s:
        assert (await s.get(Fine, fine.id)).paid_at is not None
