"""An admin's day with accounts, through the pages only, in real Chromium: from the admin's navigation to
"Users and roles", a new technician refused first for a short password (in Persian, the form as typed),
then created; the technician logs in with that password and reaches the ticket desk; the admin issues an API
token for them (shown once) and revokes it. No console errors on any page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dashboards.pdf import CHROMIUM_FLAGS
from monitor.accounts import ApiToken, Role, User, create_user, token_digest
from tests.browser_watch import PageWatch, browser_login, start_site

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


async def test_an_admin_creates_a_technician_who_then_logs_in(db, clock, chromium_path):
    from playwright.async_api import async_playwright, expect

    clock.set(NOW)
    ARTIFACTS.mkdir(exist_ok=True)
    async with db.sessionmaker.begin() as s:
        await create_user(s, "ada", Role.ADMIN, password="ada-pass-1")
    server, base = await start_site(db.sessionmaker, clock)
    watches: list[PageWatch] = []
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium_path, args=list(CHROMIUM_FLAGS))

            async def page_of(username: str, password: str):
                context = await browser.new_context()
                watches.append(PageWatch(context, base))
                page = await context.new_page()
                await browser_login(page, base, username, password)
                return page

            admin = await page_of("ada", "ada-pass-1")
            await admin.click("nav.top a[href='/admin/users']")
            await admin.wait_for_url(f"{base}/admin/users")
            await admin.fill("#u-username", "reza")
            await admin.select_option("#u-role", "technician")
            await admin.fill("#u-display", "رضا رضایی")
            await admin.fill("#u-password", "short")
            await admin.click("#create-user")
            await expect(admin.locator(".new-user .refusal")).to_contain_text("دست‌کم ۱۰ نویسه")
            await expect(admin.locator("#u-password")).to_have_attribute("aria-invalid", "true")
            await expect(admin.locator("#u-username")).to_have_value("reza")
            await expect(admin.locator("#u-display")).to_have_value("رضا رضایی")
            await admin.fill("#u-password", "reza-pass-10")
            await admin.click("#create-user")
            await admin.wait_for_url(re.compile(r"/admin/users/\d+\?done=created$"))
            await expect(admin.locator(".notice")).to_have_text("کاربر ساخته شد.")
            await expect(admin.locator("dd.role")).to_have_text("کارشناس فنی")

            tech = await page_of("reza", "reza-pass-10")
            await tech.goto(f"{base}/desk")
            await expect(tech.locator("span.who")).to_have_text("reza")
            await expect(tech.locator("nav.top a[href='/admin/users']")).to_have_count(0)

            await admin.fill("#t-name", "ci")
            await admin.click("#issue-token")
            token = (await admin.locator("code.secret").text_content()).strip()
            await expect(admin.locator("#shown-once .warning")).to_contain_text("فقط همین یک بار")
            await admin.screenshot(path=str(ARTIFACTS / f"admin-token-once-{db.kind}.png"), full_page=True)
            await admin.click("button.revoke")
            await expect(admin.locator(".notice")).to_have_text("توکن باطل شد.")
            await expect(admin.locator("code.secret")).to_have_count(0)
            await browser.close()
    finally:
        await server.close()
    problems = [p for w in watches for p in w.problems]
    assert problems == [], "\n".join(problems)
    async with db.sessionmaker() as s:
        user = (await s.execute(User.__table__.select().where(User.username == "reza"))).one()
        (row,) = (await s.execute(ApiToken.__table__.select().where(ApiToken.user_id == user.id))).all()
    assert user.role == "technician" and row.digest == token_digest(token) and row.revoked_at is not None
