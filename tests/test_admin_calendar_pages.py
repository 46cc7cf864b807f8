"""The office calendar in the admin's browser (SQLite and PostgreSQL), through the real HTTP routes after
logging in through the login form: only admins see it; it lists the coming holidays and closures with Jalali
dates in Persian digits; a closure added through the form (Jalali dates, Persian digits) closes those days and
recomputes the open tickets' due times; refusals (an end before the start, a day in the past, no reason, a date
that is not one) are the page again in Persian with the field marked, the form as typed and nothing written;
CSRF; withdrawing a closure and opening the office on a seeded holiday. The story in real Chromium is in
``test_admin_calendar_story.py``."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html import unescape

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from dashboards.web.admin_calendar_pages import parse_jalali_day
from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from monitor.accounts import Role, create_user, principal_of
from monitor.errors import InvalidInput
from monitor.models import Customer, Service
from tests.web_forms import HTML
from tests.web_forms import csrf as _csrf
from tests.web_forms import get_page as _page
from tests.web_forms import login as _login
from tickets import calendar_admin, intake
from tickets.calendar import TEHRAN
from tickets.models import Ticket

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)  # Saturday 1405/09/07, 10:30 in Tehran
SUNDAY = date(2026, 11, 29)  # 1405/09/08, a working day
HOLIDAY = date(2026, 12, 23)  # a seeded holiday (a Wednesday)


async def _world(sm):
    async with sm.begin() as s:
        a = Customer(name="acme", display_name="شرکت آکمه", verified=True)
        s.add(a)
        await s.flush()
        sa = Service(name="acme-web", display_name="وب آکمه", customer_id=a.id)
        s.add(sa)
        await s.flush()
        users = {name: await create_user(s, name, role, customer_id=a.id if role == Role.CUSTOMER else None,
                                         password=f"{name}-pass-1")
                 for name, role in (("alice", Role.CUSTOMER), ("tara", Role.TECHNICIAN), ("nora", Role.NOC),
                                    ("fred", Role.FINANCE), ("ada", Role.ADMIN))}
        return {"service": sa.id} | {k: principal_of(u) for k, u in users.items()}


@pytest.fixture
async def site(db, clock):
    clock.set(NOW)
    world = await _world(db.sessionmaker)
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False)
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        world.update(client=client, sm=db.sessionmaker)
        yield world


def _rows(html: str) -> list[tuple[str, str, str]]:
    return [(d, k, unescape(re.sub(r"<[^>]+>", " ", body)))
            for d, k, body in re.findall(r'<tr class="day [^"]*" data-day="([^"]+)" data-kind="([^"]+)">(.*?)</tr>',
                                         html, re.S)]


async def _closures(sm) -> list[tuple[date, str]]:
    return [(c.day, c.name) for c in await calendar_admin.list_changes(sm) if c.kind == "closure"]


async def _ticket_on(site, day: date) -> Ticket:
    when = datetime(day.year, day.month, day.day, 10, 0, tzinfo=TEHRAN).astimezone(UTC)
    ticket = await intake.open_ticket(site["sm"], site["alice"], {
        "department": "technical", "service_id": site["service"], "subject": "قطعی سرور",
        "body": "سرور من از صبح قطع است و سایت بالا نمی‌آید", "server_address": "192.0.2.10",
        "started_at": "امروز ساعت ۸ صبح", "priority": "important"}, now=when)
    return ticket


async def _post(client, path: str, data: dict, html: str):
    return await client.post(path, data=data | {"csrf": _csrf(html)}, headers=HTML, allow_redirects=False)


@pytest.mark.parametrize("text, day", [
    ("1405/09/08", SUNDAY), ("۱۴۰۵/۰۹/۰۸", SUNDAY), ("١٤٠٥-9-8", SUNDAY), ("", None), ("  ", None)])
def test_jalali_days_are_read_in_any_digits(text, day):
    assert parse_jalali_day(text, "day") == day


@pytest.mark.parametrize("text", ["1405/13/01", "1405/12/31", "tomorrow", "2026-11-29", "1405/09"])
def test_a_text_that_is_no_jalali_day_is_refused_naming_the_field(text):
    with pytest.raises(InvalidInput) as caught:
        parse_jalali_day(text, "until")
    assert caught.value.field == "until"


async def test_only_admins_see_the_office_calendar(site):
    client = site["client"]
    resp = await client.get("/admin/calendar", headers=HTML, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login?next=/admin/calendar"
    for who in ("alice", "tara", "nora", "fred"):
        await _login(client, who)
        status, html = await _page(client, "/admin/calendar")
        assert status == 403 and "دسترسی ندارید" in html and 'href="/admin/calendar"' not in html, who
        resp = await _post(client, "/admin/calendar/closures", {"day": "1405/09/08", "name": "برق"}, html)
        assert resp.status == 403, who
    assert await _closures(site["sm"]) == []
    await _login(client, "ada")
    status, html = await _page(client, "/admin/calendar")
    assert status == 200 and 'dir="rtl"' in html
    assert '<a href="/admin/calendar" aria-current="page">تقویم کاری</a>' in html


async def test_the_calendar_lists_the_coming_holidays_in_jalali_with_persian_digits(site):
    client = site["client"]
    await _login(client, "ada")
    status, html = await _page(client, "/admin/calendar")
    rows = _rows(html)
    assert status == 200 and rows and all(k == "holiday" for _d, k, _t in rows)
    days = [date.fromisoformat(d) for d, _k, _t in rows]
    assert days == sorted(days) and days[0] >= NOW.date() and days[-1] < NOW.date() + timedelta(days=366)
    holiday = next(text for d, _k, text in rows if d == HOLIDAY.isoformat())
    assert "۱۴۰۵/۱۰/۰۲" in holiday and "تعطیل رسمی" in holiday and not re.search(r"[0-9]", holiday)


async def test_a_closure_added_through_the_form_closes_its_days_and_recomputes_open_tickets(site):
    client, sm = site["client"], site["sm"]
    ticket = await _ticket_on(site, SUNDAY)
    assert ticket.sla_band == "office"
    await _login(client, "ada")
    _s, html = await _page(client, "/admin/calendar")
    resp = await _post(client, "/admin/calendar/closures",
                       {"day": "۱۴۰۵/۰۹/۰۸", "until": "۱۴۰۵/۰۹/۰۹", "name": "جابه‌جایی دفتر"}, html)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/calendar?done=closed"
    assert await _closures(sm) == [(SUNDAY, "جابه‌جایی دفتر"), (SUNDAY + timedelta(days=1), "جابه‌جایی دفتر")]
    async with sm() as s:
        t = await s.get(Ticket, ticket.id)
        assert (t.sla_band, t.first_response_due) == ("outside", ticket.opened_at + timedelta(hours=3))
    status, html = await _page(client, "/admin/calendar?done=closed")
    assert "تعطیلی ثبت شد" in html
    closed = [(d, text) for d, k, text in _rows(html) if k == "closure"]
    assert [d for d, _t in closed] == ["2026-11-29", "2026-11-30"]
    assert "۱۴۰۵/۰۹/۰۸" in closed[0][1] and "جابه‌جایی دفتر" in closed[0][1]

    resp = await _post(client, "/admin/calendar/withdraw", {"day": "2026-11-29", "kind": "closure"}, html)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/calendar?done=withdrawn"
    assert await _closures(sm) == [(SUNDAY + timedelta(days=1), "جابه‌جایی دفتر")]
    async with sm() as s:
        t = await s.get(Ticket, ticket.id)
        assert (t.sla_band, t.first_response_due) == ("office", ticket.opened_at + timedelta(hours=1))


@pytest.mark.parametrize("form, field, words", [
    ({"day": "1405/09/08", "until": "1405/09/07", "name": "برق"}, "until", "پیش از روز آغاز"),
    ({"day": "1405/09/06", "until": "", "name": "برق"}, "day", "گذشته است"),
    ({"day": "1405/09/08", "until": "", "name": "  "}, "name", "دلیل تعطیلی را بنویسید"),
    ({"day": "1405/13/08", "until": "", "name": "برق"}, "day", "به تقویم شمسی بنویسید"),
    ({"day": "", "until": "", "name": "برق"}, "day", "به تقویم شمسی بنویسید"),
    ({"day": "1405/09/08", "until": "فردا", "name": "برق"}, "until", "به تقویم شمسی بنویسید"),
])
async def test_a_refused_closure_is_the_page_again_in_persian_with_the_form_as_typed(site, form, field, words):
    client = site["client"]
    await _login(client, "ada")
    _s, html = await _page(client, "/admin/calendar")
    resp = await _post(client, "/admin/calendar/closures", form, html)
    html = await resp.text()
    assert resp.status == 400 and words in unescape(html)
    assert re.search(rf'<input[^>]*name="{field}"[^>]*aria-invalid="true"', html)
    assert len(re.findall(r'aria-invalid="true"', html)) == 1
    for name, value in form.items():
        if value.strip():
            assert re.search(rf'name="{name}"[^>]*value="{re.escape(value)}"', unescape(html)), name
    assert await _closures(site["sm"]) == []


async def test_a_form_without_the_csrf_token_is_refused_and_writes_nothing(site):
    client = site["client"]
    await _login(client, "ada")
    for path, data in (("closures", {"day": "1405/09/08", "name": "برق"}),
                       ("removals", {"day": HOLIDAY.isoformat()}),
                       ("withdraw", {"day": HOLIDAY.isoformat(), "kind": "removed"})):
        for extra in ({}, {"csrf": "forged"}):
            resp = await client.post(f"/admin/calendar/{path}", data=data | extra, headers=HTML,
                                     allow_redirects=False)
            assert resp.status == 403, (path, extra)
    assert await calendar_admin.list_changes(site["sm"]) == []


async def test_the_office_may_work_on_a_seeded_holiday_and_the_holiday_be_restored(site):
    client, sm = site["client"], site["sm"]
    ticket = await _ticket_on(site, HOLIDAY)
    assert ticket.sla_band == "outside"
    await _login(client, "ada")
    _s, html = await _page(client, "/admin/calendar")
    resp = await _post(client, "/admin/calendar/removals", {"day": HOLIDAY.isoformat()}, html)
    assert resp.status == 303
    status, html = await _page(client, "/admin/calendar?done=opened")
    assert ("2026-12-23", "removed") in [(d, k) for d, k, _t in _rows(html)] and "دفتر در این تعطیل" in html
    async with sm() as s:
        assert (await s.get(Ticket, ticket.id)).sla_band == "office"
    resp = await _post(client, "/admin/calendar/removals", {"day": SUNDAY.isoformat()}, html)
    assert resp.status == 400 and "در فهرست تعطیلات رسمی نیست" in await resp.text()
    resp = await _post(client, "/admin/calendar/withdraw", {"day": HOLIDAY.isoformat(), "kind": "removed"}, html)
    assert resp.status == 303
    async with sm() as s:
        assert (await s.get(Ticket, ticket.id)).sla_band == "outside"
    assert await calendar_admin.list_changes(sm) == []
