"""Finance's datacenter visits and monthly statements in the browser, through the real HTTP routes after
logging in through the login form (SQLite and PostgreSQL): the visits awaiting approval with their cause and
the charge approving would post; approve (billed once however often the form is sent, even ten times at once),
reject with a reason (refused in Persian without one); CSRF required; the statement page, its CSV (UTF-8 with
BOM, integer rials, Jalali dates) for finance and for the customer's own, another customer's refused."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import unicodedata
from datetime import timedelta
from pathlib import Path

import jdatetime
import pytest
from aiohttp.test_utils import TestClient, TestServer
from ledger_world import NOW, PER_TECH, PER_VISIT, entries, make_ledger_world
from prometheus_client import CollectorRegistry

from dashboards.pdf import CHROMIUM_FLAGS
from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from dashboards.web.html import TEHRAN, fa_digits
from monitor.accounts import Role, create_user
from tests.web_forms import HTML
from tests.web_forms import csrf as _csrf
from tests.web_forms import get_page as _page
from tests.web_forms import login as _login
from tickets import fines
from tickets.ledger.models import Cause, DatacenterVisit
from tickets.ledger.payments import record_payment
from tickets.ledger.visits import record_visit

TWO_TECHS = PER_VISIT + 2 * PER_TECH
USERS = {"fin": Role.FINANCE, "adm": Role.ADMIN, "tec": Role.TECHNICIAN, "noc": Role.NOC}
JY, JM = 1405, 9  # NOW is 1405/09/05 in Tehran


async def _visit(sm, w, cause=Cause.CUSTOMER_SERVER, **kw):
    departed = NOW - timedelta(hours=3)
    return await record_visit(sm, w.tech, datacenter_id=kw.pop("dc", w.dc), ticket_id=kw.pop("ticket_id", w.ticket_a),
                              technician_ids=[w.tech.user_id, w.tech2.user_id], departed_at=departed,
                              returned_at=departed + timedelta(hours=2), cause=cause, now=NOW, **kw)


@pytest.fixture
async def site(db, clock):
    clock.set(NOW + timedelta(hours=2))
    sm = db.sessionmaker
    w = await make_ledger_world(sm, secret="<script>alert(1)</script>beta")
    async with sm.begin() as s:
        for name, role in USERS.items():
            await create_user(s, name, role, password=f"{name}-pass-1")
        await create_user(s, "cus", Role.CUSTOMER, password="cus-pass-1", customer_id=w.customer_a)
        await create_user(s, "cub", Role.CUSTOMER, password="cub-pass-1", customer_id=w.customer_b)
    deps = WebDeps(sessionmaker=sm, clock=clock, registry=CollectorRegistry(), cookie_secure=False)
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        yield {"client": client, "sm": sm, "w": w, "clock": clock, "db": db}


def _visits(html: str) -> dict[int, str]:
    """Visit id -> cause, from the table of visits awaiting approval."""
    return {int(i): c for i, c in re.findall(r'<tr class="visit" data-id="(\d+)" data-cause="(\w+)">', html)}


async def _row(sm, visit_id) -> DatacenterVisit:
    async with sm() as s:
        return await s.get(DatacenterVisit, visit_id)


# --- visits awaiting approval -------------------------------------------------------------------------------

async def test_finance_sees_the_visits_awaiting_approval_with_cause_and_charge_and_approves_one(site):
    client, sm, w = site["client"], site["sm"], site["w"]
    billable = await _visit(sm, w)
    undecided = await _visit(sm, w, Cause.UNDETERMINED)
    company = await _visit(sm, w, Cause.COMPANY_NETWORK)
    await _login(client, "fin")
    status, html = await _page(client, "/ledger")
    assert status == 200 and _visits(html) == {billable.id: "customer_server", undecided.id: "undetermined"}
    assert company.id not in _visits(html)
    row = re.search(rf'<tr class="visit" data-id="{billable.id}".*?</tr>', html, re.S).group(0)
    assert "سرور مشتری" in row and f'data-rials="{TWO_TECHS}"' in row
    assert fa_digits(f"{TWO_TECHS:,}".replace(",", "٬")) + " ریال" in row and "approve-visit" in row
    undecided_row = re.search(rf'<tr class="visit" data-id="{undecided.id}".*?</tr>', html, re.S).group(0)
    assert "هنوز مشخص نشده" in undecided_row and "approve-visit" not in undecided_row

    resp = await client.post(f"/ledger/visits/{billable.id}/approve", data={"csrf": _csrf(html)},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ledger?done=approved"
    [charge] = await entries(sm, visit_id=billable.id)
    assert (charge.kind, charge.amount_rials, charge.customer_id) == ("visit", TWO_TECHS, w.customer_a)
    status, html = await _page(client, resp.headers["Location"])
    assert "مراجعه تأیید شد" in html and billable.id not in _visits(html)
    assert (await _row(sm, billable.id)).approved_by_id is not None

    # An undetermined cause is not approved here, even by a crafted POST: nothing is written.
    resp = await client.post(f"/ledger/visits/{undecided.id}/approve", data={"csrf": _csrf(html)}, headers=HTML)
    assert resp.status == 400 and "تکنسین‌ها باید علت را تعیین کنند" in await resp.text()
    assert (await _row(sm, undecided.id)).approved_at is None


async def test_ten_identical_approvals_at_once_post_one_charge(site):
    client, sm, w = site["client"], site["sm"], site["w"]
    visit = await _visit(sm, w)
    await _login(client, "fin")
    token = _csrf((await _page(client, "/ledger"))[1])
    results = await asyncio.gather(*(client.post(f"/ledger/visits/{visit.id}/approve", data={"csrf": token},
                                                 allow_redirects=False) for _ in range(10)))
    assert [r.status for r in results] == [303] * 10
    assert [e.amount_rials for e in await entries(sm, visit_id=visit.id)] == [TWO_TECHS]
    assert [e.amount_rials for e in await entries(sm, customer_id=w.customer_a)] == [TWO_TECHS]


async def test_a_rejection_needs_a_reason_in_persian_and_then_is_not_billed(site):
    client, sm, w = site["client"], site["sm"], site["w"]
    visit = await _visit(sm, w)
    await _login(client, "fin")
    token = _csrf((await _page(client, "/ledger"))[1])
    resp = await client.post(f"/ledger/visits/{visit.id}/reject", data={"csrf": token, "reason": "   "},
                             headers=HTML)
    text = await resp.text()
    assert resp.status == 400 and "بنویسید چرا این مراجعه رد می‌شود" in text
    assert re.search(r'name="reason"[^>]*aria-invalid="true"', text)
    assert (await _row(sm, visit.id)).rejected_at is None
    reason = "مشتری پیش از مراجعه خبر داده بود <b>x</b>"
    resp = await client.post(f"/ledger/visits/{visit.id}/reject", data={"csrf": token, "reason": reason},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ledger?done=rejected"
    row = await _row(sm, visit.id)
    assert row.rejection_reason == reason.strip() and row.rejected_at is not None
    resp = await client.post(f"/ledger/visits/{visit.id}/approve", data={"csrf": token}, headers=HTML)
    assert resp.status == 400 and "رد شده است" in await resp.text()
    assert await entries(sm) == []
    status, html = await _page(client, "/ledger")
    assert visit.id not in _visits(html) and "هیچ مراجعه‌ای در انتظار تأیید نیست" in html


async def test_visit_forms_need_the_csrf_token_and_the_finance_role(site):
    client, sm, w = site["client"], site["sm"], site["w"]
    visit = await _visit(sm, w)
    assert (await client.post(f"/ledger/visits/{visit.id}/approve", data={})).status == 401
    await _login(client, "fin")
    await _page(client, "/ledger")
    resp = await client.post(f"/ledger/visits/{visit.id}/approve", data={"csrf": "forged"}, headers=HTML)
    assert resp.status == 403
    resp = await client.post(f"/ledger/visits/{visit.id}/approve", data={}, headers=HTML)
    assert resp.status == 403
    for who in ("tec", "cus"):
        await _login(client, who)
        home = await _page(client, "/portal" if who == "cus" else "/desk")
        for action in ("approve", "reject"):
            resp = await client.post(f"/ledger/visits/{visit.id}/{action}", headers=HTML,
                                     data={"csrf": _csrf(home[1]), "reason": "x"})
            assert resp.status == 403, (who, action)
    await _login(client, "fin")
    token = _csrf((await _page(client, "/ledger"))[1])
    assert (await client.post(f"/ledger/visits/{2**63 - 1}/approve", data={"csrf": token}, headers=HTML)).status == 404
    assert (await client.post(f"/ledger/visits/{2**63}/approve", data={"csrf": token}, headers=HTML)).status in (400, 404)
    assert await entries(sm) == [] and (await _row(sm, visit.id)).approved_at is None


# --- the monthly statement ----------------------------------------------------------------------------------

async def _month_of_entries(sm, w):
    visit = await _visit(sm, w)
    from tickets.ledger.visits import approve_visit
    await approve_visit(sm, w.finance, visit.id, now=NOW)
    await fines.post_fine(sm, w.finance, w.ticket_a, amount_rials=1_200_000, due_at=NOW + timedelta(days=5),
                          now=NOW + timedelta(minutes=1))
    await record_payment(sm, w.finance, customer_id=w.customer_a, amount_rials=250_000, reference="bank-77",
                         now=NOW + timedelta(minutes=2))
    await fines.post_fine(sm, w.finance, w.ticket_b, amount_rials=9_000_000, due_at=NOW + timedelta(days=5),
                          now=NOW)  # the other customer's, never on customer A's statement
    return visit


def _parse_csv(body: bytes) -> list[dict[str, str]]:
    assert body.startswith(b"\xef\xbb\xbf"), body[:10]  # the BOM: Excel reads UTF-8
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def test_finance_reads_any_statement_as_a_page_and_a_csv(site):
    client, sm, w = site["client"], site["sm"], site["w"]
    visit = await _month_of_entries(sm, w)
    await _login(client, "fin")
    status, html = await _page(client, "/ledger")
    assert f'href="/ledger/statements/{w.customer_a}/{JY}/{JM}"' in html
    status, html = await _page(client, f"/ledger/statements/{w.customer_a}/{JY}/{JM}")
    assert status == 200 and 'dir="rtl"' in html and "صورت‌حساب آذر ۱۴۰۵" in html
    kinds = re.findall(r'<tr class="line" data-id="\d+" data-kind="(\w+)" data-rials="(-?\d+)">', html)
    assert kinds == [("visit", str(TWO_TECHS)), ("fine", "1200000"), ("payment", "-250000")]
    closing = TWO_TECHS + 1_200_000 - 250_000
    assert f'class="closing" data-rials="{closing}"' in html
    assert fa_digits(f"{closing:,}".replace(",", "٬")) + " ریال" in html and "۱۴۰۵/۰۹/۰۵" in html
    assert "9000000" not in html and 'href="/ledger/statements/' in html and "/csv" in html and "/pdf" in html

    resp = await client.get(f"/ledger/statements/{w.customer_a}/{JY}/{JM}/csv")
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = _parse_csv(await resp.read())
    lines, summary = rows[:3], {r["entry_id"]: r for r in rows[3:]}
    assert [(r["kind"], int(r["amount_rials"])) for r in lines] == [
        ("visit", TWO_TECHS), ("fine", 1_200_000), ("payment", -250_000)]
    assert lines[0]["kind_fa"] == "هزینهٔ مراجعه به دیتاسنتر" and lines[0]["visit_id"] == str(visit.id)
    for r in lines:
        d = jdatetime.date(*map(int, r["jalali_date"].split("/")))
        assert (d.year, d.month) == (JY, JM)
    assert lines[2]["reference"] == "bank-77"
    assert int(summary["closing"]["amount_rials"]) == closing and int(summary["opening"]["amount_rials"]) == 0
    assert sum(int(r["amount_rials"]) for r in lines) == int(summary["total"]["amount_rials"])

    # Another month of the same customer is empty; a customer that does not exist is missing.
    status, html = await _page(client, f"/ledger/statements/{w.customer_a}/{JY}/{JM - 1}")
    assert status == 200 and "line" not in re.findall(r'<tr class="(line)"', html)
    assert (await _page(client, f"/ledger/statements/{2**63 - 1}/{JY}/{JM}"))[0] == 404
    assert (await _page(client, f"/ledger/statements/{w.customer_a}/{JY}/13"))[0] in (400, 404)


async def test_a_customer_reads_only_their_own_statement(site):
    client, sm, w = site["client"], site["sm"], site["w"]
    await _month_of_entries(sm, w)
    await _login(client, "cus")
    status, html = await _page(client, f"/portal/statements/{w.customer_a}/{JY}/{JM}")
    assert status == 200 and "آذر ۱۴۰۵" in html and "تومان" in html
    assert "datacenter visit" not in html  # the ledger's internal description is finance's, not the customer's
    resp = await client.get(f"/portal/statements/{w.customer_a}/{JY}/{JM}/csv")
    rows = _parse_csv(await resp.read())
    assert resp.status == 200 and [r["kind"] for r in rows[:3]] == ["visit", "fine", "payment"]
    assert all(r["description"] in ("", "acme") for r in rows)
    for path in (f"/portal/statements/{w.customer_b}/{JY}/{JM}", f"/portal/statements/{w.customer_b}/{JY}/{JM}/csv",
                 f"/portal/statements/{w.customer_b}/{JY}/{JM}/pdf"):
        resp = await client.get(path, headers=HTML)
        body = await resp.text()
        assert resp.status == 404 and "9000000" not in body and "۹٬۰۰۰٬۰۰۰" not in body and "beta" not in body, path
    for path in (f"/ledger/statements/{w.customer_a}/{JY}/{JM}", f"/ledger/statements/{w.customer_b}/{JY}/{JM}/csv"):
        assert (await client.get(path, headers=HTML)).status == 403, path
    await _login(client, "tec")
    assert (await client.get(f"/ledger/statements/{w.customer_a}/{JY}/{JM}", headers=HTML)).status == 403


def test_jalali_month_of_now_is_the_one_the_tests_read():
    d = jdatetime.date.fromgregorian(date=NOW.astimezone(TEHRAN).date())
    assert (d.year, d.month) == (JY, JM)


# --- the stories in a real browser --------------------------------------------------------------------------

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _pdf_text(data: bytes) -> str:
    """The PDF's text with Chromium's shaped Arabic-script glyphs mapped back to letters (NFKC); the
    extractor writes digits of a right-to-left line in visual order, so callers accept either order."""
    from pypdf import PdfReader
    assert data.startswith(b"%PDF-")
    return unicodedata.normalize("NFKC", "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages))


def _read_bytes(path) -> bytes:
    return Path(path).read_bytes()


def _has(text: str, words: str) -> bool:
    return words in text or words[::-1] in text


@pytest.mark.integration
async def test_finance_approves_a_visit_sees_it_on_the_statement_and_a_fine_suspends_then_its_payment_lifts(
        db, clock, chromium_path):
    from playwright.async_api import async_playwright, expect

    clock.set(NOW + timedelta(hours=2))
    ARTIFACTS.mkdir(exist_ok=True)
    sm = db.sessionmaker
    w = await make_ledger_world(sm)
    async with sm.begin() as s:
        await create_user(s, "fin", Role.FINANCE, password="fin-pass-1")
        await create_user(s, "cub", Role.CUSTOMER, password="cub-pass-1", customer_id=w.customer_b)
    visit = await _visit(sm, w)
    fine = await fines.post_fine(sm, w.finance, w.ticket_b, amount_rials=3_400_000, due_at=NOW - timedelta(hours=1),
                                 now=NOW - timedelta(days=2))
    deps = WebDeps(sessionmaker=sm, clock=clock, registry=CollectorRegistry(), cookie_secure=False)
    server = TestServer(build_app(deps), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    errors: list[str] = []
    visited: list[str] = []
    shot = 0

    def watch(page, who):
        page.on("console", lambda m: errors.append(f"{who}: {m.text} {m.location}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"{who}: {e}"))
        page.on("response", lambda r: errors.append(f"{who}: {r.status} {r.url}") if r.status >= 400 else None)
        page.on("framenavigated", lambda f: visited.append(f.url) if f == page.main_frame else None)

    async def snap(page, name):
        nonlocal shot
        shot += 1
        await page.screenshot(path=str(ARTIFACTS / f"finance-{shot:02d}-{name}-{db.kind}.png"), full_page=True)

    async def login(page, user):
        await page.goto(f"{base}/login")
        await page.fill("input[name=username]", user)
        await page.fill("input[name=password]", f"{user}-pass-1")
        await page.click("button[type=submit]")
        await page.wait_for_url(re.compile(r"/(portal|ledger|noc)"))

    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium_path, args=list(CHROMIUM_FLAGS))
            fin = await (await browser.new_context(accept_downloads=True)).new_page()
            watch(fin, "finance")
            await login(fin, "fin")

            # 1. The visit awaiting approval, with its cause and the charge; approve it.
            await fin.goto(f"{base}/ledger")
            row = fin.locator(f'tr.visit[data-id="{visit.id}"]')
            await expect(row.locator(".cause")).to_have_text("سرور مشتری")
            await expect(row.locator(".charge")).to_have_attribute("data-rials", str(TWO_TECHS))
            await snap(fin, "ledger-visit-pending")
            await row.locator(".approve-visit button").click()
            await fin.wait_for_url(re.compile(r"done=approved"))
            await expect(fin.locator(".notice")).to_contain_text("مراجعه تأیید شد")
            await expect(fin.locator(f'tr.visit[data-id="{visit.id}"]')).to_have_count(0)
            await snap(fin, "ledger-visit-approved")

            # 2. The month's statement of the customer shows it.
            await fin.locator(f'tr.total[data-customer="{w.customer_a}"] a.statement-link').click()
            await fin.wait_for_url(re.compile(rf"/ledger/statements/{w.customer_a}/{JY}/{JM}$"))
            line = fin.locator('tr.line[data-kind="visit"]')
            await expect(line).to_have_attribute("data-rials", str(TWO_TECHS))
            await expect(line.locator(".amount")).to_have_text(fa_digits(f"{TWO_TECHS:,}".replace(",", "٬")) + " ریال")
            await expect(fin.locator("h1")).to_have_text("صورت‌حساب آذر ۱۴۰۵")
            await snap(fin, "statement")

            # 3. Its CSV and PDF, downloaded through the page's links, carry the visit.
            async with fin.expect_download() as caught:
                await fin.click("#download-csv")
            rows = _parse_csv(_read_bytes(await (await caught.value).path()))
            [charge] = [r for r in rows if r["kind"] == "visit"]
            assert (int(charge["amount_rials"]), charge["visit_id"], charge["jalali_date"]) == (
                TWO_TECHS, str(visit.id), "1405/09/05")
            async with fin.expect_download() as caught:
                await fin.click("#download-pdf")
            text = _pdf_text(_read_bytes(await (await caught.value).path()))
            assert "آذر" in text and "acme" in text and "مراجعه به مرکز داده" in text, text
            assert _has(text, fa_digits(f"{TWO_TECHS:,}".replace(",", "٬"))), text

            # 4. A customer suspended by an unpaid fine is told why, and cannot file a technical ticket.
            cust = await (await browser.new_context()).new_page()
            watch(cust, "customer")
            await login(cust, "cub")
            await cust.goto(f"{base}/portal/tickets/new")
            notice = cust.locator("#suspended")
            await expect(notice).to_contain_text("پشتیبانی شما معلق است")
            await expect(notice.locator(".fine-amount")).to_have_text("۳۴۰٬۰۰۰ تومان")
            await expect(notice).to_contain_text("فقط تیکت‌های واحد مالی")
            await snap(cust, "portal-suspended")
            await notice.locator("a.statement-link").click()
            await cust.wait_for_url(re.compile(rf"/portal/statements/{w.customer_b}/"))
            await expect(cust.locator('tr.line[data-kind="fine"]')).to_have_attribute("data-rials", "3400000")
            await snap(cust, "portal-statement")

            # 5. Finance records the payment on the ledger; the customer's block lifts.
            await fin.goto(f"{base}/ledger")
            await fin.locator(f'tr.fine[data-id="{fine.id}"] .mark-paid button').click()
            await fin.wait_for_url(re.compile(r"done=paid"))
            await expect(fin.locator(f'tr.fine[data-id="{fine.id}"]')).to_have_count(0)
            await snap(fin, "ledger-fine-paid")
            await cust.goto(f"{base}/portal/tickets/new")
            await expect(cust.locator("h1")).to_have_text("ثبت تیکت تازه")
            await expect(cust.locator("#suspended")).to_have_count(0)
            await snap(cust, "portal-unblocked")
            await browser.close()
    finally:
        await server.close()
    assert errors == [], errors
    assert len(visited) >= 8, visited
    assert [e.amount_rials for e in await entries(sm, visit_id=visit.id)] == [TWO_TECHS]
