"""The technicians' ticket desk in the browser, through the real HTTP routes after logging in through the login
form (SQLite and PostgreSQL): who may see it, the queue and its filters (the JSON queue's), the ticket's page
and its forms (answer, assign, priority, close) calling the API's services, refusals shown in Persian with the
typed text kept, CSRF, escaping; and one story in real Chromium from the customer's portal to the desk and
back."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import escape, unescape
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from dashboards.pdf import CHROMIUM_FLAGS
from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from dashboards.web.fa import PRIORITY_FA
from dashboards.web.html import jalali
from monitor.accounts import Role, create_user, principal_of
from monitor.models import Customer, Service
from tests.browser_watch import browser_login, start_site
from tests.web_forms import HTML
from tests.web_forms import csrf as _csrf
from tests.web_forms import get_page as _page
from tests.web_forms import login as _login
from tickets import intake
from tickets.models import Ticket, TicketMessage
from tickets.persian import MESSAGES, fa_digits

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)  # Saturday 10:30 in Tehran
XSS = "<script>alert(1)</script>"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


async def _world(sm):
    async with sm.begin() as s:
        a = Customer(name="acme", display_name="شرکت آکمه", verified=True)
        b = Customer(name="beta", display_name="شرکت بتا", verified=True)
        s.add_all([a, b])
        await s.flush()
        sa = Service(name="acme-web", display_name="وب آکمه", customer_id=a.id)
        sb = Service(name="beta-db", display_name="پایگاه بتا", customer_id=b.id)
        s.add_all([sa, sb])
        await s.flush()
        users = {
            "alice": await create_user(s, "alice", Role.CUSTOMER, customer_id=a.id, password="alice-pass-1"),
            "bob": await create_user(s, "bob", Role.CUSTOMER, customer_id=b.id, password="bob-pass-1"),
            "tara": await create_user(s, "tara", Role.TECHNICIAN, password="tara-pass-1"),
            "nora": await create_user(s, "nora", Role.NOC, password="nora-pass-1"),
            "fred": await create_user(s, "fred", Role.FINANCE, password="fred-pass-1"),
        }
        return {"a": sa.id, "b": sb.id} | {k: principal_of(u) for k, u in users.items()}


def _draft(service_id: int, subject: str, body: str, priority: str) -> dict:
    return {"department": "technical", "service_id": service_id, "subject": subject, "body": body,
            "server_address": "192.0.2.10", "started_at": "امروز ساعت ۸ صبح", "priority": priority}


@pytest.fixture
async def site(db, clock):
    clock.set(NOW)
    world = await _world(db.sessionmaker)
    sm = db.sessionmaker
    world["urgent"] = await intake.open_ticket(sm, world["alice"], _draft(
        world["a"], "قطعی کامل سرور", "سرور من از صبح قطع است و سایت بالا نمی‌آید", "urgent"), now=NOW)
    world["normal"] = await intake.open_ticket(sm, world["bob"], _draft(
        world["b"], f"{XSS} پرسش دربارهٔ پشتیبان‌گیری", "پشتیبان‌گیری شبانهٔ پایگاه داده چگونه تنظیم می‌شود",
        "normal"), now=NOW + timedelta(minutes=5))
    deps = WebDeps(sessionmaker=sm, clock=clock, registry=CollectorRegistry(), cookie_secure=False)
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        world.update(client=client, sm=sm, clock=clock)
        yield world








def _rows(html: str) -> dict[int, str]:
    return {int(i): row for i, row in re.findall(r'<tr class="ticket[^"]*" data-id="(\d+)">(.*?)</tr>', html, re.S)}


def _text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


async def test_only_technicians_noc_and_admins_see_the_desk(site):
    client, ticket = site["client"], site["urgent"]
    # Anonymous: a browser is sent to the login form and brought back; a form post is refused.
    status, _ = await _page(client, "/desk")
    resp = await client.get("/desk", headers=HTML, allow_redirects=False)
    assert status == 303 and resp.headers["Location"] == "/login?next=/desk"
    resp = await client.get(f"/desk/tickets/{ticket.id}", headers=HTML, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login?next=")
    assert (await client.post(f"/desk/tickets/{ticket.id}/answer", data={"body": "سلام"})).status == 401
    for who in ("alice", "fred"):
        await _login(client, who, f"{who}-pass-1")
        for path in ("/desk", f"/desk/tickets/{ticket.id}"):
            status, html = await _page(client, path)
            assert status == 403 and "دسترسی ندارید" in html and "قطعی کامل سرور" not in html, (who, path)
        resp = await client.post(f"/desk/tickets/{ticket.id}/answer", data={"body": "سلام", "csrf": _csrf(html)},
                                 headers=HTML)
        assert resp.status == 403
    for who in ("tara", "nora"):
        await _login(client, who, f"{who}-pass-1")
        status, html = await _page(client, "/desk")
        assert status == 200 and 'dir="rtl"' in html and set(_rows(html)) == {ticket.id, site["normal"].id}
        assert '<a href="/desk" aria-current="page">' in html  # the role's navigation links here
    async with site["sm"]() as s:
        assert (await s.execute(TicketMessage.__table__.select())).first() is None


async def test_the_queue_shows_each_open_ticket_and_filters_like_the_json_queue(site):
    client, urgent, normal = site["client"], site["urgent"], site["normal"]
    await _login(client, "tara", "tara-pass-1")
    status, html = await _page(client, "/desk")
    rows = _rows(html)
    assert status == 200 and list(rows) == [urgent.id, normal.id]  # by first-response due time
    row = rows[urgent.id]
    assert f">{fa_digits(urgent.id)}</a>" in row and "شرکت آکمه" in row and "قطعی کامل سرور" in row
    assert PRIORITY_FA["urgent"] in row and ">باز<" in row and "سپرده‌نشده" in row
    assert jalali(urgent.first_response_due) in row and "دیرکرد" not in row
    assert "acme" not in _text(row)  # the customer's display name, not the internal one
    assert PRIORITY_FA["normal"] in rows[normal.id] and "شرکت بتا" in rows[normal.id]

    # Past the due time, the ticket is marked overdue.
    site["clock"].set(urgent.first_response_due + timedelta(minutes=1))
    status, html = await _page(client, "/desk")
    assert f'<tr class="ticket overdue" data-id="{urgent.id}">' in html
    assert "دیرکرد" in _rows(html)[urgent.id] and "دیرکرد" not in _rows(html)[normal.id]

    status, html = await _page(client, "/desk?priority=urgent")
    assert status == 200 and list(_rows(html)) == [urgent.id]
    assert '<option value="urgent" selected>' in html
    api = await client.get("/api/v1/desk/queue?priority=urgent")
    assert [t["id"] for t in await api.json()] == [urgent.id]  # the same filter, the same service

    await client.post(f"/api/v1/tickets/{normal.id}/answer", json={"body": "در حال بررسی هستیم"},
                      headers={"X-CSRF-Token": _csrf(html)})
    status, html = await _page(client, "/desk?status=answered")
    assert status == 200 and list(_rows(html)) == [normal.id] and "پاسخ داده شده" in _rows(html)[normal.id]
    status, html = await _page(client, "/desk?status=open&priority=normal")
    assert status == 200 and _rows(html) == {} and "هیچ تیکت بازی" in html

    for query, field in (("status=closed", "status"), ("priority=huge", "priority"), ("page=0", "page")):
        status, html = await _page(client, f"/desk?{query}")
        assert status == 400 and f'<code dir="ltr">{field}</code>' in html and "پالایهٔ نادرست" in html, query
    api = await client.get("/api/v1/desk/queue?status=closed")
    assert api.status == 400 and (await api.json())["field"] == "status"


async def test_the_queue_pages_keep_the_filters(site):
    client = site["client"]
    extra = await intake.open_ticket(site["sm"], site["alice"], _draft(
        site["a"], "کندی ایمیل سازمانی", "ایمیل‌ها با تأخیر زیاد می‌رسند و گاهی برمی‌گردند", "normal"),
        now=NOW + timedelta(minutes=10))
    await _login(client, "nora", "nora-pass-1")
    status, first = await _page(client, "/desk?priority=normal&limit=1")
    assert status == 200 and list(_rows(first)) == [site["normal"].id]
    assert "صفحه ۱ / ۲" in first
    link = unescape(re.search(r'<a rel="next" href="([^"]+)"', first).group(1))
    assert "priority=normal" in link and "limit=1" in link and "page=2" in link
    status, second = await _page(client, "/desk" + link)
    assert status == 200 and list(_rows(second)) == [extra.id] and 'rel="prev"' in second
    assert 'rel="next"' not in second


async def test_answering_through_the_form_stores_it_and_stops_the_clock_as_the_api_does(site):
    client, urgent, normal = site["client"], site["urgent"], site["normal"]
    await _login(client, "tara", "tara-pass-1")
    status, html = await _page(client, f"/desk/tickets/{urgent.id}")
    assert status == 200
    assert "سرور من از صبح قطع است" in html and "وب آکمه" in html and "شرکت آکمه" in html
    assert jalali(urgent.first_response_due) in html and jalali(urgent.opened_at) in html
    assert f'action="/desk/tickets/{urgent.id}/answer"' in html and 'name="csrf" value="' in html
    later = NOW + timedelta(minutes=20)
    site["clock"].set(later)
    answer = "سلام، سرور را دوباره راه‌اندازی کردیم؛ لطفاً بررسی کنید"
    resp = await client.post(f"/desk/tickets/{urgent.id}/answer", data={"body": answer, "csrf": _csrf(html)},
                             headers=HTML, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/desk/tickets/{urgent.id}?done=answered"
    status, html = await _page(client, resp.headers["Location"])
    assert status == 200 and "پاسخ برای مشتری فرستاده شد" in html and answer in html and "tara" in html
    assert ">پاسخ داده شده<" in html
    # The JSON API answers the other ticket: both end the same way.
    api = await client.post(f"/api/v1/tickets/{normal.id}/answer", json={"body": "در حال بررسی هستیم"},
                            headers={"X-CSRF-Token": _csrf(html)})
    assert api.status == 201
    async with site["sm"]() as s:
        by_form, by_api = await s.get(Ticket, urgent.id), await s.get(Ticket, normal.id)
        assert by_form.first_response_at.replace(tzinfo=UTC) == later
        assert by_form.status == by_api.status == "answered" and by_api.first_response_at is not None
        stored = (await s.execute(TicketMessage.__table__.select().where(
            TicketMessage.ticket_id == urgent.id))).all()
        assert [(m.body, m.author_kind, m.author_id) for m in stored] == [(answer, "staff", site["tara"].user_id)]
    # The clock stopped: past the due time, the answered ticket is not overdue.
    site["clock"].set(urgent.first_response_due + timedelta(hours=1))
    status, html = await _page(client, "/desk")
    assert "دیرکرد" not in _rows(html)[urgent.id]
    # The customer reads the answer on the portal.
    await _login(client, "alice", "alice-pass-1")
    status, html = await _page(client, f"/portal/tickets/{urgent.id}")
    assert status == 200 and answer in html


async def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(site):
    client, ticket = site["client"], site["urgent"]
    await _login(client, "tara", "tara-pass-1")
    for path, data in (("answer", {"body": "سلام، بررسی شد"}), ("assign", {}), ("priority", {"priority": "normal"}),
                       ("close", {})):
        resp = await client.post(f"/desk/tickets/{ticket.id}/{path}", data=data, headers=HTML,
                                 allow_redirects=False)
        assert resp.status == 403, path
        forged = await client.post(f"/desk/tickets/{ticket.id}/{path}", data=data | {"csrf": "forged"},
                                   headers=HTML, allow_redirects=False)
        assert forged.status == 403, path
    async with site["sm"]() as s:
        t = await s.get(Ticket, ticket.id)
        assert (t.status, t.assignee_id, t.priority, t.first_response_at) == ("open", None, "urgent", None)
        assert (await s.execute(TicketMessage.__table__.select())).first() is None


async def test_a_latin_answer_is_refused_in_persian_and_the_text_is_kept(site):
    client, ticket = site["client"], site["urgent"]
    await _login(client, "tara", "tara-pass-1")
    status, html = await _page(client, f"/desk/tickets/{ticket.id}")
    typed = "we restarted the server, please check & tell us"
    resp = await client.post(f"/desk/tickets/{ticket.id}/answer",
                             data={"body": typed, "csrf": _csrf(html), "waiting_on_customer": "1"}, headers=HTML)
    html = await resp.text()
    assert resp.status == 400 and resp.content_type == "text/html"
    assert escape(MESSAGES["finglish"]) in html and f">{escape(typed)}</textarea>" in html
    assert 'name="waiting_on_customer" value="1" checked' in html and 'aria-invalid="true"' in html
    # The API applies the same rule.
    api = await client.post(f"/api/v1/tickets/{ticket.id}/answer", json={"body": typed},
                            headers={"X-CSRF-Token": _csrf(html)})
    assert api.status == 400 and (await api.json())["error"] == "text_finglish"
    async with site["sm"]() as s:
        assert (await s.get(Ticket, ticket.id)).first_response_at is None
        assert (await s.execute(TicketMessage.__table__.select())).first() is None


async def test_assign_lower_priority_and_close_through_the_forms(site):
    client, ticket = site["client"], site["urgent"]
    await _login(client, "tara", "tara-pass-1")
    status, html = await _page(client, f"/desk/tickets/{ticket.id}")
    csrf = _csrf(html)
    resp = await client.post(f"/desk/tickets/{ticket.id}/assign", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=assigned")
    status, html = await _page(client, resp.headers["Location"])
    assert "تیکت به شما سپرده شد" in html and re.search(r'class="assignee">tara<', html)
    assert f'action="/desk/tickets/{ticket.id}/assign"' not in html  # already mine
    resp = await client.post(f"/desk/tickets/{ticket.id}/priority", data={"csrf": csrf, "priority": "important"},
                             allow_redirects=False)
    assert resp.status == 303
    status, html = await _page(client, resp.headers["Location"])
    assert f'data-priority="important">{PRIORITY_FA["important"]}<' in html and "اولویت تغییر کرد" in html
    raised = await client.post(f"/desk/tickets/{ticket.id}/priority", data={"csrf": csrf, "priority": "urgent"},
                               headers=HTML)
    assert raised.status == 400 and "اولویت فقط پایین آورده می‌شود" in await raised.text()
    resp = await client.post(f"/desk/tickets/{ticket.id}/close", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303
    status, html = await _page(client, resp.headers["Location"])
    assert "تیکت بسته شد" in html and ">بسته<" in html and "/answer" not in html
    late = await client.post(f"/desk/tickets/{ticket.id}/answer", data={"csrf": csrf, "body": "پاسخ دیرهنگام"},
                             headers=HTML)
    text = await late.text()
    assert late.status == 400 and "دوباره باز نمی‌شود" in text and ">پاسخ دیرهنگام</textarea>" not in text
    async with site["sm"]() as s:
        t = await s.get(Ticket, ticket.id)
        assert (t.assignee_id, t.priority, t.status) == (site["tara"].user_id, "important", "closed")
    status, html = await _page(client, "/desk")
    assert ticket.id not in _rows(html)
    status, _ = await _page(client, "/desk/tickets/999999")
    assert status == 404


async def test_a_subject_with_markup_is_escaped_everywhere(site):
    client, ticket = site["client"], site["normal"]
    await _login(client, "tara", "tara-pass-1")
    for path in ("/desk", f"/desk/tickets/{ticket.id}"):
        status, html = await _page(client, path)
        assert status == 200 and XSS not in html and escape(XSS) in html, path
        # The only script is the vendored countdown, from a file (the CSP allows no inline script).
        assert set(re.findall(r"<script[^>]*>", html)) <= {'<script src="/static/countdown.js" defer>'}, path


async def test_staff_may_read_the_desk_in_english(site):
    client = site["client"]
    await _login(client, "nora", "nora-pass-1")
    status, html = await _page(client, "/desk")
    resp = await client.post("/lang", data={"lang": "en", "csrf": _csrf(html), "next": "/desk"},
                             allow_redirects=False)
    assert resp.status == 303
    status, html = await _page(client, "/desk")
    row = _rows(html)[site["urgent"].id]
    assert 'lang="en"' in html and "Ticket desk" in html and ">Urgent<" in row and ">Open<" in row
    status, html = await _page(client, f"/desk/tickets/{site['urgent'].id}")
    assert "Send answer" in html and "First response due" in html


# --- the story in a real browser --------------------------------------------------------------------------



@pytest.mark.integration
async def test_a_customers_ticket_is_answered_on_the_desk_and_read_in_the_portal(db, clock, chromium_path):
    from playwright.async_api import async_playwright, expect

    clock.set(NOW)
    ARTIFACTS.mkdir(exist_ok=True)
    world = await _world(db.sessionmaker)
    server, base = await start_site(db.sessionmaker, clock)
    violations: list[str] = []

    def watch(page):
        page.on("console", lambda m: violations.append(m.text)
                if m.type == "error" and "Content Security Policy" in m.text else None)
        return page

    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium_path, args=list(CHROMIUM_FLAGS))
            customer = watch(await (await browser.new_context()).new_page())
            await browser_login(customer, base, "alice", "alice-pass-1", "/portal")
            await customer.goto(f"{base}/portal/tickets/new")
            await customer.select_option("#f-department", "technical")
            await customer.select_option("#f-service_id", str(world["a"]))
            await customer.fill("#f-subject", "کندی وب‌سایت")
            await customer.fill("#f-server_address", "127.0.0.1")
            await customer.fill("#f-started_at", "امروز ساعت ۹ صبح")
            await customer.fill("#f-body", "صفحه‌های سایت از صبح خیلی کند باز می‌شوند")
            await customer.check("input[name=priority][value=important]")
            await customer.click("#submit-ticket")
            await customer.wait_for_url(re.compile(r"/portal/tickets/\d+$"))
            ticket_id = int(customer.url.rsplit("/", 1)[1])

            tech = watch(await (await browser.new_context()).new_page())
            await browser_login(tech, base, "tara", "tara-pass-1", "/desk")
            await tech.click("nav.top a[href='/desk']")
            await tech.wait_for_url(f"{base}/desk")
            row = tech.locator(f'tr.ticket[data-id="{ticket_id}"]')
            await expect(row.locator(".customer")).to_have_text("شرکت آکمه")
            await expect(row.locator(".priority")).to_have_text(PRIORITY_FA["important"])
            await tech.screenshot(path=str(ARTIFACTS / f"desk-queue-{db.kind}.png"), full_page=True)
            await row.locator(".subject a").click()
            await tech.wait_for_url(f"{base}/desk/tickets/{ticket_id}")
            await expect(tech.locator("h1 .subject")).to_have_text("کندی وب‌سایت")
            await tech.fill("#f-answer", "hello")  # not Persian: refused, the text kept
            await tech.click("#send-answer")
            await expect(tech.locator(".answer .refusal")).to_contain_text("به زبان فارسی")
            await expect(tech.locator("#f-answer")).to_have_value("hello")
            answer = "سلام، حافظهٔ نهان سایت پاک شد و اکنون سریع باز می‌شود"
            await tech.fill("#f-answer", answer)
            await tech.click("#send-answer")
            await tech.wait_for_url(f"{base}/desk/tickets/{ticket_id}?done=answered")
            await expect(tech.locator(".notice")).to_have_text("پاسخ برای مشتری فرستاده شد.")
            await expect(tech.locator(".thread .msg.staff p")).to_have_text(answer)
            await tech.screenshot(path=str(ARTIFACTS / f"desk-ticket-{db.kind}.png"), full_page=True)

            await customer.reload()
            await expect(customer.locator(".thread .msg.staff p")).to_have_text(answer)
            await expect(customer.locator(".status")).to_have_text("پاسخ داده شده")
            await browser.close()
    finally:
        await server.close()
    assert violations == [], violations
    async with db.sessionmaker() as s:
        assert (await s.get(Ticket, ticket_id)).first_response_at is not None


# --- the queue's new filters, band and countdown; the ticket page's new forms ---------------------------

async def test_the_queue_filters_by_department_overdue_mine_and_scope_like_the_json_queue(site):
    client, urgent, normal = site["client"], site["urgent"], site["normal"]
    await _login(client, "tara", "tara-pass-1")
    status, html = await _page(client, "/desk")
    csrf = _csrf(html)
    row = _rows(html)[urgent.id]
    assert 'data-band="office"' in row and "ساعت اداری" in row and "۱ ساعت" in row  # rule 17's band
    assert f'data-due="{urgent.first_response_due.isoformat()}"' in row and 'class="countdown"' in row
    assert '<script src="/static/countdown.js" defer></script>' in html
    await client.post(f"/desk/tickets/{normal.id}/assign", data={"csrf": csrf})
    await client.post(f"/desk/tickets/{urgent.id}/scope", data={"csrf": csrf, "scope": "out"})
    site["clock"].set(urgent.first_response_due + timedelta(minutes=1))  # urgent is overdue, normal not yet
    for query, expected in (("mine=1", [normal.id]), ("overdue=1", [urgent.id]), ("scope=out", [urgent.id]),
                            ("scope=undecided", [normal.id]), ("department=technical", [urgent.id, normal.id]),
                            ("department=sales", []), ("scope=in", []), ("mine=1&overdue=1", [])):
        status, html = await _page(client, f"/desk?{query}")
        api = await client.get(f"/api/v1/desk/queue?{query}")
        assert status == 200 and list(_rows(html)) == expected, query
        assert [t["id"] for t in await api.json()] == expected, query  # the same filter, the same service
    status, html = await _page(client, "/desk?mine=1&scope=undecided")
    assert 'name="mine" value="1" id="f-mine" checked' in html and '<option value="undecided" selected>' in html
    for query, field in (("scope=maybe", "scope"), ("overdue=perhaps", "overdue"), ("department=%3Cb%3E", "department")):
        status, html = await _page(client, f"/desk?{query}")
        assert status == 400 and f'<code dir="ltr">{field}</code>' in html, query
        api = await client.get(f"/api/v1/desk/queue?{query}")
        assert api.status == 400 and (await api.json())["field"] == field, query


async def test_the_countdown_script_is_served_under_the_pages_csp(site):
    client = site["client"]
    await _login(client, "tara", "tara-pass-1")
    resp = await client.get("/desk", headers=HTML)
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    script = await client.get("/static/countdown.js")
    assert script.status == 200 and "data-due" in (await script.text()) and "innerHTML" not in await script.text()


async def test_an_internal_note_is_shown_to_staff_and_never_to_the_customer(site):
    client, ticket = site["client"], site["urgent"]
    await _login(client, "tara", "tara-pass-1")
    status, html = await _page(client, f"/desk/tickets/{ticket.id}")
    note = "مشتری دو بار تماس گرفت؛ دیسک را بررسی کنید"
    resp = await client.post(f"/desk/tickets/{ticket.id}/note", data={"body": note, "csrf": _csrf(html)},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=note")
    status, html = await _page(client, resp.headers["Location"])
    assert 'class="msg internal"' in html and note in html and "مشتری آن را نمی‌بیند" in html
    empty = await client.post(f"/desk/tickets/{ticket.id}/note", data={"body": "  ", "csrf": _csrf(html)},
                              headers=HTML)
    assert empty.status == 400 and "متن یادداشت داخلی را بنویسید" in await empty.text()
    async with site["sm"]() as s:
        t = await s.get(Ticket, ticket.id)
        assert (t.status, t.first_response_at) == ("open", None)  # a note is no answer
    await _login(client, "alice", "alice-pass-1")
    status, html = await _page(client, f"/portal/tickets/{ticket.id}")
    assert status == 200 and note not in html and "یادداشت داخلی" not in html
    api = await client.get(f"/api/v1/tickets/{ticket.id}")
    assert note not in await api.text()


async def test_scope_misuse_violation_and_close_as_incomplete_through_the_forms(site):
    client, urgent, normal = site["client"], site["urgent"], site["normal"]
    await _login(client, "tara", "tara-pass-1")
    status, html = await _page(client, f"/desk/tickets/{urgent.id}")
    csrf = _csrf(html)
    assert 'data-scope="undecided"' in html and "رخداد بازی ندارد" in html
    resp = await client.post(f"/desk/tickets/{urgent.id}/scope", data={"csrf": csrf, "scope": "out"},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=scope_out")
    bad = await client.post(f"/desk/tickets/{urgent.id}/scope", data={"csrf": csrf, "scope": "maybe"}, headers=HTML)
    assert bad.status == 400 and "محدوده باید" in await bad.text()
    resp = await client.post(f"/desk/tickets/{urgent.id}/misuse", data={"csrf": csrf, "note": "پایش برقرار بود"},
                             allow_redirects=False)
    assert resp.status == 303
    status, html = await _page(client, resp.headers["Location"])
    assert 'data-scope="out"' in html and 'data-flag="urgent_but_service_up"' in html and 'data-rule="14"' in html
    assert f'action="/desk/tickets/{urgent.id}/misuse"' not in html  # once
    refused = await client.post(f"/desk/tickets/{normal.id}/misuse", data={"csrf": csrf, "note": "چرا"},
                                headers=HTML)
    assert refused.status == 400 and "فقط تیکتی که «ضروری»" in await refused.text()
    typed = "۲۵"
    bad = await client.post(f"/desk/tickets/{normal.id}/violation",
                            data={"csrf": csrf, "rule": typed, "note": "تکراری"}, headers=HTML)
    text = await bad.text()
    assert bad.status == 400 and "بین ۱ تا ۱۹" in text and f'value="{typed}"' in text and 'value="تکراری"' in text
    resp = await client.post(f"/desk/tickets/{normal.id}/violation", data={"csrf": csrf, "rule": "۱۶", "note": "تکراری"},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=violation")
    resp = await client.post(f"/desk/tickets/{normal.id}/close-incomplete", data={"csrf": csrf},
                             allow_redirects=False)
    assert resp.status == 303
    status, html = await _page(client, resp.headers["Location"])
    assert "اطلاعات ناقص" in html and 'data-rule="16"' in html and "/answer" not in html
    async with site["sm"]() as s:
        t = await s.get(Ticket, normal.id)
        assert (t.status, t.close_reason) == ("closed_without_answer", "incomplete_information")
        assert (await s.get(Ticket, urgent.id)).scope == "out"
    for path in ("note", "scope", "misuse", "violation", "close-incomplete"):
        forged = await client.post(f"/desk/tickets/{urgent.id}/{path}", data={"csrf": "forged"}, headers=HTML,
                                   allow_redirects=False)
        assert forged.status == 403, path


async def test_the_ticket_page_shows_the_services_monitors_and_incident(site):
    client, ticket = site["client"], site["urgent"]
    from incidents.models import Incident
    from monitor.models import Monitor, MonitorState
    async with site["sm"].begin() as s:
        mon = Monitor(name="acme-web-http", kind="http", target="http://127.0.0.1/", service_id=site["a"])
        s.add(mon)
        await s.flush()
        s.add(MonitorState(monitor_id=mon.id, state="DOWN", since=NOW))
        inc = Incident(dedup_key="k", open_key="k", source="monitor", severity="urgent", status="triggered",
                       title="قطعی وب آکمه", service_id=site["a"], opened_at=NOW)
        s.add(inc)
    await _login(client, "tara", "tara-pass-1")
    status, html = await _page(client, f"/desk/tickets/{ticket.id}")
    assert f'<a href="/monitors/{mon.id}">acme-web-http</a>' in html and 'data-state="DOWN"' in html and "قطع" in html
    assert f'<a href="/incidents/{inc.id}">{fa_digits(inc.id)}</a>' in html and "قطعی وب آکمه" in html


async def test_the_portal_ticket_list_pages_in_the_database(site):
    client = site["client"]
    extra = await intake.open_ticket(site["sm"], site["alice"], {
        "department": "sales", "subject": "خرید سرور مجازی", "body": "یک سرور مجازی با دو هسته می‌خواهم"},
        now=NOW + timedelta(minutes=30))
    await _login(client, "alice", "alice-pass-1")
    status, first = await _page(client, "/portal/tickets?limit=1")
    assert status == 200 and f'data-id="{extra.id}"' in first and f'data-id="{site["urgent"].id}"' not in first
    assert "صفحه ۱ / ۲" in first
    link = unescape(re.search(r'<a rel="next" href="([^"]+)"', first).group(1))
    status, second = await _page(client, "/portal/tickets" + link)
    assert status == 200 and f'data-id="{site["urgent"].id}"' in second and f'data-id="{extra.id}"' not in second
    status, html = await _page(client, "/portal/tickets?page=0")
    assert status == 400 and '<code dir="ltr">page</code>' in html
