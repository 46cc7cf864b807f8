"""Rule 17 through the pages only, in real Chromium: an admin closes the office on a working day through
/admin/calendar (a refused end before the start first, in Persian); a customer's ticket opened on that day,
through the portal's form, gets the 3-hour first-response target, which the technicians' desk shows. The
clock is the app's injected ``ManualClock``: the story moves it to the closed day instead of waiting."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dashboards.pdf import CHROMIUM_FLAGS
from dashboards.web.html import jalali
from monitor.accounts import Role, create_user
from monitor.models import Customer, Service
from tests.browser_watch import PageWatch, browser_login, start_site
from tickets.calendar import TEHRAN
from tickets.models import Ticket

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)  # Saturday 1405/09/07, 10:30 in Tehran
OPENED = datetime(2026, 11, 29, 10, 0, tzinfo=TEHRAN).astimezone(UTC)  # Sunday 1405/09/08, office hours


async def _world(sm) -> int:
    async with sm.begin() as s:
        a = Customer(name="acme", display_name="شرکت آکمه", verified=True)
        s.add(a)
        await s.flush()
        sa = Service(name="acme-web", display_name="وب آکمه", customer_id=a.id)
        s.add(sa)
        await s.flush()
        await create_user(s, "alice", Role.CUSTOMER, customer_id=a.id, password="alice-pass-1")
        await create_user(s, "tara", Role.TECHNICIAN, password="tara-pass-1")
        await create_user(s, "ada", Role.ADMIN, password="ada-pass-1")
        return sa.id


async def test_a_ticket_opened_on_a_day_an_admin_closed_gets_the_three_hour_target(db, clock, chromium_path):
    from playwright.async_api import async_playwright, expect

    clock.set(NOW)
    ARTIFACTS.mkdir(exist_ok=True)
    service_id = await _world(db.sessionmaker)
    server, base = await start_site(db.sessionmaker, clock)
    watches: list[PageWatch] = []
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium_path, args=list(CHROMIUM_FLAGS))

            async def page_of(username: str):
                context = await browser.new_context()
                watches.append(PageWatch(context, base))
                page = await context.new_page()
                await browser_login(page, base, username, f"{username}-pass-1")
                return page

            admin = await page_of("ada")
            await admin.click("nav.top a[href='/admin/calendar']")
            await admin.wait_for_url(f"{base}/admin/calendar")
            await admin.fill("#c-day", "۱۴۰۵/۰۹/۰۸")
            await admin.fill("#c-until", "۱۴۰۵/۰۹/۰۷")
            await admin.fill("#c-name", "قطعی برق ساختمان")
            await admin.click("#add-closure")
            await expect(admin.locator(".close-office .refusal")).to_contain_text("پیش از روز آغاز")
            await expect(admin.locator("#c-until")).to_have_attribute("aria-invalid", "true")
            await expect(admin.locator("#c-name")).to_have_value("قطعی برق ساختمان")
            await admin.fill("#c-until", "")
            await admin.click("#add-closure")
            await admin.wait_for_url(f"{base}/admin/calendar?done=closed")
            row = admin.locator('tr.day[data-day="2026-11-29"][data-kind="closure"]')
            await expect(row.locator(".date")).to_have_text("۱۴۰۵/۰۹/۰۸")
            await expect(row.locator(".name")).to_have_text("قطعی برق ساختمان")
            await admin.screenshot(path=str(ARTIFACTS / f"admin-calendar-closure-{db.kind}.png"), full_page=True)

            clock.set(OPENED)  # the closed Sunday, 10:00 in Tehran: office hours on any other Sunday
            customer = await page_of("alice")
            await customer.goto(f"{base}/portal/tickets/new")
            await customer.select_option("#f-department", "technical")
            await customer.select_option("#f-service_id", str(service_id))
            await customer.fill("#f-subject", "قطعی وب‌سایت")
            await customer.fill("#f-server_address", "127.0.0.1")
            await customer.fill("#f-started_at", "امروز ساعت ۹ صبح")
            await customer.fill("#f-body", "سایت از ساعت نه صبح باز نمی‌شود و خطا می‌دهد")
            await customer.check("input[name=priority][value=important]")
            await customer.click("#submit-ticket")
            await customer.wait_for_url(re.compile(r"/portal/tickets/\d+$"))
            ticket_id = int(customer.url.rsplit("/", 1)[1])

            tech = await page_of("tara")
            await tech.goto(f"{base}/desk")
            due = tech.locator(f'tr.ticket[data-id="{ticket_id}"] time.due')
            await expect(due).to_have_text(jalali(OPENED + timedelta(hours=3)))  # ۱۴۰۵/۰۹/۰۸ ۱۳:۰۰
            await tech.goto(f"{base}/desk/tickets/{ticket_id}")
            await expect(tech.locator("dd.sla")).to_have_text(jalali(OPENED + timedelta(hours=3)))
            await tech.screenshot(path=str(ARTIFACTS / f"desk-ticket-closed-day-{db.kind}.png"), full_page=True)
            await browser.close()
    finally:
        await server.close()
    problems = [p for w in watches for p in w.problems]
    assert problems == [], "\n".join(problems)
    async with db.sessionmaker() as s:
        t = await s.get(Ticket, ticket_id)
        assert (t.sla_band, t.first_response_due) == ("outside", OPENED + timedelta(hours=3))
