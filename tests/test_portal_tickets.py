"""The customer's ticket desk in the portal, through the real HTTP routes after logging in through the login
form: file a ticket (seeing the matching article first), see it listed, reply, close; refusals shown on the
form in Persian with what was typed kept; another customer's ticket is 404; a form without CSRF is 403."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import escape, unescape

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from monitor.accounts import Role, create_user, principal_of
from monitor.models import Customer, Service
from tickets import intake
from tickets.fines import post_fine
from tickets.models import KbArticle, Ticket
from tickets.persian import MESSAGES, fa_digits

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)  # Saturday 10:30 in Tehran
# Reason codes and internal names a customer must never see.
INTERNAL = ("missing_fields", "duplicate", "text_finglish", "support_suspended", "server_address", "technical",
            "zz-secret", "invalid_field", "Traceback")


async def _world(sm):
    async with sm.begin() as s:
        a = Customer(name="acme", display_name="شرکت آکمه", verified=True)
        b = Customer(name="beta", display_name="zz-secret-beta", verified=True)
        s.add_all([a, b])
        await s.flush()
        sa = Service(name="acme-web", display_name="وب آکمه", customer_id=a.id)
        sb = Service(name="beta-db", display_name="zz-secret-db", customer_id=b.id)
        s.add_all([sa, sb])
        await s.flush()
        s.add(KbArticle(title="راهنمای رفع قطعی سرور", body="اگر سرور قطع است ابتدا دیواره آتش را بررسی کنید",
                        published=True, updated_at=NOW))
        alice = await create_user(s, "alice", Role.CUSTOMER, customer_id=a.id, password="alice-pass-1")
        bob = await create_user(s, "bob", Role.CUSTOMER, customer_id=b.id, password="bob-pass-1")
        fara = await create_user(s, "fara", Role.FINANCE)
        return {"a": sa.id, "b": sb.id, "alice": principal_of(alice), "bob": principal_of(bob),
                "fara": principal_of(fara)}


@pytest.fixture
async def site(db, clock):
    clock.set(NOW)
    world = await _world(db.sessionmaker)
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False)
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        world.update(client=client, sm=db.sessionmaker, clock=clock)
        yield world


async def _login(client, username, password):
    form = await (await client.get("/login")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    resp = await client.post("/login", data={"username": username, "password": password, "csrf": token},
                             cookies={"ngb_login_csrf": token}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    client.session.cookie_jar.update_cookies({"ngb_session": resp.cookies["ngb_session"].value})


async def _csrf(client, path="/portal/tickets/new") -> str:
    html = await (await client.get(path)).text()
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def _form(service_id, **over) -> dict:
    form = {"department": "technical", "service_id": str(service_id), "subject": "قطعی سرور",
            "body": "سرور من از صبح قطع است و سایت بالا نمی‌آید", "server_address": "192.0.2.10",
            "started_at": "امروز ساعت ۸ صبح", "priority": "important", "action": "submit"}
    return form | over


def _customer_safe(html: str) -> None:
    """What the customer reads (the page's text, not its markup) names no reason code or internal name."""
    text = unescape(re.sub(r"<[^>]+>", " ", html))
    for word in INTERNAL:
        assert word not in text, word


async def _file(client, csrf, form) -> str:
    """Submit the form, seeing the matching articles first when there are any (rule 12); the ticket's path."""
    resp = await client.post("/portal/tickets/new", data=form | {"csrf": csrf}, allow_redirects=False)
    if resp.status == 200:  # the articles were shown; the shown ids come back in the form
        html = await resp.text()
        shown = re.search(r'name="shown_article_ids" value="([^"]*)"', html).group(1)
        resp = await client.post("/portal/tickets/new", data=form | {"csrf": csrf, "shown_article_ids": shown},
                                 allow_redirects=False)
    assert resp.status == 303, await resp.text()
    return resp.headers["Location"]


async def test_a_customer_files_a_ticket_sees_it_listed_replies_and_closes_it(site):
    client = site["client"]
    await _login(client, "alice", "alice-pass-1")
    new = await (await client.get("/portal/tickets/new")).text()
    assert 'dir="rtl"' in new and "وب آکمه" in new and "zz-secret" not in new
    assert "نشانی سرور" in new and "ضروری" in new and "سرور یا سرویس از دسترس خارج شده است" in new  # rule 14
    csrf = await _csrf(client)
    # The first submit shows the matching article instead of opening the ticket (rule 12).
    first = await client.post("/portal/tickets/new", data=_form(site["a"]) | {"csrf": csrf}, allow_redirects=False)
    html = await first.text()
    assert first.status == 200 and "راهنمای رفع قطعی سرور" in html
    async with site["sm"]() as s:
        assert (await s.execute(Ticket.__table__.select())).first() is None
    location = await _file(client, csrf, _form(site["a"]))
    ticket_id = int(location.rsplit("/", 1)[1])
    async with site["sm"]() as s:
        ticket = await s.get(Ticket, ticket_id)
        assert ticket.service_id == site["a"] and ticket.shown_article_ids  # intake recorded the articles seen
    listing = await (await client.get("/portal/tickets")).text()
    row = re.search(rf'<tr class="ticket" data-id="{ticket_id}">(.*?)</tr>', listing).group(1)
    assert "قطعی سرور" in row and "باز" in row and "فنی" in row
    assert "۱۴۰۵/۰۹/۰۷" in row  # 2026-11-28 in Jalali, Persian digits
    _customer_safe(listing)

    assert "پشتیبانی تلفنی هم‌اکنون باز است" in listing  # Saturday 10:30 in Tehran (rule 2)
    latin = await client.post(f"/portal/tickets/{ticket_id}/reply", data={"body": "still down", "csrf": csrf})
    html = await latin.text()
    assert latin.status == 400 and escape(MESSAGES["finglish"]) in html and ">still down</textarea>" in html
    reply = "هنوز قطع است، لطفاً بررسی کنید"
    resp = await client.post(f"/portal/tickets/{ticket_id}/reply", data={"body": reply, "csrf": csrf},
                             allow_redirects=False)
    assert resp.status == 303
    thread = await (await client.get(location)).text()
    assert reply in thread and "سرور من از صبح قطع است" in thread
    resp = await client.post(f"/portal/tickets/{ticket_id}/close", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303
    closed = await (await client.get(location)).text()
    assert '<b class="status">بسته</b>' in closed and "/reply" not in closed
    assert f"/portal/tickets/new?references={ticket_id}" in closed
    refused = await client.post(f"/portal/tickets/{ticket_id}/reply", data={"body": reply, "csrf": csrf})
    assert refused.status == 400 and "دوباره باز نمی‌شود" in await refused.text()


async def test_latin_text_is_refused_in_persian_and_the_input_is_kept(site):
    client = site["client"]
    await _login(client, "alice", "alice-pass-1")
    csrf = await _csrf(client)
    body = "server is down since morning, please check"
    resp = await client.post("/portal/tickets/new", data=_form(site["a"], body=body, shown_article_ids="1") |
                             {"csrf": csrf})
    html = await resp.text()
    assert resp.status == 400 and resp.content_type == "text/html"
    assert escape(MESSAGES["finglish"]) in html
    assert f">{body}</textarea>" in html and 'value="192.0.2.10"' in html and 'value="قطعی سرور"' in html
    _customer_safe(html)


async def test_a_duplicate_is_refused_with_a_link_to_the_first(site):
    client = site["client"]
    await _login(client, "alice", "alice-pass-1")
    csrf = await _csrf(client)
    first = int((await _file(client, csrf, _form(site["a"]))).rsplit("/", 1)[1])
    resp = await client.post("/portal/tickets/new", data=_form(site["a"], shown_article_ids="1") | {"csrf": csrf})
    html = await resp.text()
    assert resp.status == 400 and f"تیکت بازِ شمارهٔ {fa_digits(first)}" in html
    assert f'href="/portal/tickets/{first}"' in html
    _customer_safe(html)
    async with site["sm"]() as s:
        assert len((await s.execute(Ticket.__table__.select())).all()) == 1


async def test_a_missing_required_field_is_named_and_marked(site):
    client = site["client"]
    await _login(client, "alice", "alice-pass-1")
    csrf = await _csrf(client)
    resp = await client.post("/portal/tickets/new", data=_form(site["a"], server_address="", shown_article_ids="1")
                             | {"csrf": csrf})
    html = await resp.text()
    assert resp.status == 400
    assert "این موارد را کامل کنید: نشانی سرور (نشانی آی‌پی یا نام میزبان)." in unescape(html)
    assert re.search(r'<label class="bad" for="f-server_address">', html)
    assert "امروز ساعت ۸ صبح" in html  # the rest of the input kept
    # The check step names it too, before submitting.
    check = await client.post("/portal/tickets/new", data=_form(site["a"], server_address="", action="check")
                              | {"csrf": csrf})
    assert check.status == 200 and "نشانی سرور" in unescape(await check.text())
    _customer_safe(html)


async def test_a_suspended_customer_is_told_to_pay_and_may_still_ask_finance(site):
    earlier = await intake.open_ticket(site["sm"], site["alice"], {
        "department": "sales", "subject": "پرسش دربارهٔ تمدید", "body": "تمدید سرویس چگونه است"},
        now=NOW - timedelta(days=5))
    await post_fine(site["sm"], site["fara"], earlier.id, amount_rials=5_000_000, due_at=NOW - timedelta(days=1),
                    now=NOW - timedelta(days=5))
    client = site["client"]
    await _login(client, "alice", "alice-pass-1")
    csrf = await _csrf(client)
    resp = await client.post("/portal/tickets/new", data=_form(site["a"], shown_article_ids="1") | {"csrf": csrf})
    html = await resp.text()
    assert resp.status == 400 and "پشتیبانی شما معلق است" in html and "پرداخت جریمه" in html
    _customer_safe(html)


async def test_the_portal_shows_the_suspension_before_any_submit_and_finance_lifts_it_on_the_ledger(site):
    sm, client = site["sm"], site["client"]
    earlier = await intake.open_ticket(sm, site["alice"], {
        "department": "sales", "subject": "پرسش دربارهٔ تمدید", "body": "تمدید سرویس چگونه است"},
        now=NOW - timedelta(days=5))
    fine = await post_fine(sm, site["fara"], earlier.id, amount_rials=5_000_000, due_at=NOW - timedelta(days=1),
                           now=NOW - timedelta(days=5))
    async with sm.begin() as s:
        await create_user(s, "fin", Role.FINANCE, password="fin-pass-1")
    await _login(client, "alice", "alice-pass-1")
    for path in ("/portal/tickets/new", "/portal/tickets", "/portal"):
        html = await (await client.get(path)).text()
        notice = re.search(r'<section class="card suspended".*?</section>', html, re.S)
        assert notice, path
        text = unescape(re.sub(r"<[^>]+>", " ", notice.group(0)))
        assert "پشتیبانی شما معلق است" in text and "۵۰۰٬۰۰۰ تومان" in text and "۱۴۰۵/۰۹/۰۶" in text, path
        assert "فقط تیکت‌های واحد مالی" in text and fa_digits(str(earlier.id)) in text
        assert 'href="/portal/statements/' in notice.group(0)
        _customer_safe(html)
    csrf = await _csrf(client)
    refused = await client.post("/portal/tickets/new", data=_form(site["a"], shown_article_ids="1") | {"csrf": csrf})
    assert refused.status == 400
    # The statement the notice links to shows the fine.
    link = re.search(r'class="statement-link" href="([^"]+)"', html).group(1)
    statement = await (await client.get(link)).text()
    assert 'data-kind="fine" data-rials="5000000"' in statement

    await _login(client, "fin", "fin-pass-1")
    ledger = await (await client.get("/ledger")).text()
    assert f'<tr class="fine overdue" data-id="{fine.id}">' in ledger
    token = re.search(r'name="csrf-token" content="([^"]+)"', ledger).group(1)
    paid = await client.post(f"/ledger/fines/{fine.id}/paid", data={"csrf": token}, allow_redirects=False)
    assert paid.status == 303

    await _login(client, "alice", "alice-pass-1")
    for path in ("/portal/tickets/new", "/portal/tickets", "/portal"):
        assert 'class="card suspended"' not in await (await client.get(path)).text(), path
    assert (await _file(client, await _csrf(client), _form(site["a"]))).startswith("/portal/tickets/")


async def test_another_customers_ticket_is_404_and_forms_need_the_csrf_token(site):
    bob_ticket = await intake.open_ticket(site["sm"], site["bob"], {
        "department": "sales", "subject": "zz-secret پرسش فروش", "body": "قیمت سرور اختصاصی چند است"}, now=NOW)
    client = site["client"]
    await _login(client, "alice", "alice-pass-1")
    csrf = await _csrf(client)
    for resp in (await client.get(f"/portal/tickets/{bob_ticket.id}"),
                 await client.post(f"/portal/tickets/{bob_ticket.id}/reply", data={"body": "سلام", "csrf": csrf}),
                 await client.post(f"/portal/tickets/{bob_ticket.id}/close", data={"csrf": csrf})):
        assert resp.status == 404 and "zz-secret" not in await resp.text()
    assert "zz-secret" not in await (await client.get("/portal/tickets")).text()
    async with site["sm"]() as s:
        assert (await s.get(Ticket, bob_ticket.id)).status == "open"
    no_csrf = await client.post("/portal/tickets/new", data=_form(site["a"], shown_article_ids="1"))
    assert no_csrf.status == 403
    mine = int((await _file(client, csrf, _form(site["a"]))).rsplit("/", 1)[1])
    for path in (f"/portal/tickets/{mine}/reply", f"/portal/tickets/{mine}/close"):
        assert (await client.post(path, data={"body": "سلام"})).status == 403
    async with site["sm"]() as s:
        assert (await s.get(Ticket, mine)).status == "open"
