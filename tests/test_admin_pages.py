"""The admin's pages (SQLite and PostgreSQL) through the real HTTP routes after logging in through the login
form: only admins see them (others 403); users are created, change role, are deactivated and reactivated
through the forms, with the last admin and self-deactivation refused in Persian; a generated password and a
new API token are shown once and only the token's SHA-256 is stored; a revoked token is 401 on the API;
channels are validated as the setting is, with secrets masked; the audit log filters by customer and kind
in Jalali dates, and a disclosure needs the judicial letter's reference. The story in real Chromium is in
``test_admin_users_story.py``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from incidents.escalation_policy import parse_escalation
from incidents.models import NotificationChannel
from monitor.accounts import ApiToken, Role, User, create_user, principal_of, token_digest
from monitor.models import Customer
from tests.web_forms import HTML
from tests.web_forms import csrf as _csrf
from tests.web_forms import get_page as _page
from tests.web_forms import login as _login
from tickets import audit
from tickets.models import AuditEntry

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)  # Saturday 1405/09/07, 10:30 in Tehran
PAGES = ("/admin", "/admin/users", "/admin/channels", "/admin/escalation", "/admin/audit")
ESCALATION = ("rotation noc: ali-sms reza-sms from 2026-11-21T09:00; "
              "urgent: noc-bale 5, oncall=noc 10 x2")


async def _world(sm):
    async with sm.begin() as s:
        a = Customer(name="acme", display_name="شرکت آکمه", verified=True)
        b = Customer(name="shady", display_name="ناشناس", verified=False)
        s.add_all([a, b])
        await s.flush()
        users = {name: await create_user(s, name, role, customer_id=a.id if role == Role.CUSTOMER else None,
                                         password=f"{name}-pass-1")
                 for name, role in (("alice", Role.CUSTOMER), ("tara", Role.TECHNICIAN), ("nora", Role.NOC),
                                    ("fred", Role.FINANCE), ("ada", Role.ADMIN))}
        return {"acme": a.id, "shady": b.id} | {k: principal_of(u) for k, u in users.items()}


@pytest.fixture
async def site(db, clock):
    clock.set(NOW)
    world = await _world(db.sessionmaker)
    deps = WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(), cookie_secure=False,
                   services={"escalation": parse_escalation(ESCALATION)})
    async with TestClient(TestServer(build_app(deps), host="127.0.0.1")) as client:
        world.update(client=client, sm=db.sessionmaker)
        yield world


async def _post(client, path: str, data: dict, html: str):
    return await client.post(path, data=data | {"csrf": _csrf(html)}, headers=HTML, allow_redirects=False)


def _text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


async def _user(sm, username: str) -> User | None:
    async with sm() as s:
        return (await s.execute(select(User).where(User.username == username))).scalar_one_or_none()


async def test_only_admins_see_the_admin_pages(site):
    client = site["client"]
    for who in ("alice", "tara", "nora", "fred"):
        await _login(client, who)
        for path in (*PAGES, f"/admin/users/{site['tara'].user_id}"):
            status, html = await _page(client, path)
            assert status == 403 and "دسترسی ندارید" in html, (who, path)
        resp = await _post(client, "/admin/users", {"username": "mallory", "role": "admin",
                                                    "password": "long-enough-1"}, html)
        assert resp.status == 403, who
    assert await _user(site["sm"], "mallory") is None
    await _login(client, "ada")
    status, html = await _page(client, "/admin")
    assert status == 200 and 'dir="rtl"' in html
    for path in PAGES[1:]:
        assert f'href="{path}"' in html  # the landing page and the navigation link every section
        status, page = await _page(client, path)
        assert status == 200 and 'lang="fa"' in page, path


async def test_a_form_without_the_csrf_token_changes_nothing(site):
    client = site["client"]
    await _login(client, "ada")
    resp = await client.post("/admin/users", data={"username": "reza", "role": "noc", "password": "long-enough-1"},
                             headers=HTML, allow_redirects=False)
    assert resp.status == 403
    assert await _user(site["sm"], "reza") is None


async def test_an_admin_creates_a_technician_who_can_log_in(site):
    client, sm = site["client"], site["sm"]
    await _login(client, "ada")
    _s, html = await _page(client, "/admin/users")
    resp = await _post(client, "/admin/users", {"username": "reza", "role": "technician",
                                                "password": "reza-pass-10", "display_name": "رضا"}, html)
    user = await _user(sm, "reza")
    assert resp.status == 303 and resp.headers["Location"] == f"/admin/users/{user.id}?done=created"
    assert (user.role, user.customer_id, user.active) == ("technician", None, True)
    status, html = await _page(client, "/admin/users")
    row = re.search(r'<tr class="user" data-username="reza" data-role="technician" data-active="yes">(.*?)</tr>',
                    html, re.S)
    assert status == 200 and row and "کارشناس فنی" in row.group(1)
    await _login(client, "reza", "reza-pass-10")
    status, html = await _page(client, "/desk")
    assert status == 200
    # The list shows the last login, in Jalali with Persian digits.
    await _login(client, "ada")
    _s, html = await _page(client, "/admin/users")
    row = re.search(r'data-username="reza"[^>]*>(.*?)</tr>', html, re.S).group(1)
    assert "۱۴۰۵/۰۹/۰۷" in _text(row)


async def test_a_generated_password_is_shown_once_and_works(site):
    client, sm = site["client"], site["sm"]
    await _login(client, "ada")
    _s, html = await _page(client, "/admin/users")
    resp = await _post(client, "/admin/users", {"username": "bob", "role": "customer", "customer": "acme"}, html)
    html = await resp.text()
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    secret = re.search(r'<code class="secret" dir="ltr">([^<]+)</code>', html).group(1)
    user = await _user(sm, "bob")
    assert user.customer_id == site["acme"] and secret not in (user.password_hash or "")
    _s, again = await _page(client, "/admin/users")
    assert secret not in again
    await _login(client, "bob", secret)
    assert (await _page(client, "/portal"))[0] == 200


@pytest.mark.parametrize("form, field, words", [
    ({"username": "bob", "role": "customer", "customer": "shady"}, "customer", "هویت این مشتری تأیید نشده"),
    ({"username": "bob", "role": "customer", "customer": ""}, "customer", "باید مشتری خود را نام ببرد"),
    ({"username": "bob", "role": "customer", "customer": "nobody"}, "customer", "مشتری‌ای با این نام نیست"),
    ({"username": "tara", "role": "noc"}, "username", "از پیش هست"),
    ({"username": "bob", "role": "noc", "password": "short"}, "password", "دست‌کم ۱۰ نویسه"),
    ({"username": "bob smith", "role": "noc"}, "username", "نام کاربری ۲ تا ۱۰۰ نویسه"),
])
async def test_a_bad_new_user_is_the_page_again_in_persian_with_the_form_as_typed(site, form, field, words):
    client = site["client"]
    await _login(client, "ada")
    _s, html = await _page(client, "/admin/users")
    resp = await _post(client, "/admin/users", form, html)
    html = await resp.text()
    assert resp.status == 400 and words in _text(html)
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', html), field
    assert f'value="{form["username"]}"' in html
    if form.get("password"):
        assert form["password"] not in html  # a password typed is never sent back
    async with site["sm"]() as s:
        assert len((await s.execute(select(User.id))).all()) == 5


async def test_role_changes_and_deactivation_never_lose_the_last_admin(site):
    client, sm = site["client"], site["sm"]
    ada, tara = site["ada"].user_id, site["tara"].user_id
    await _login(client, "ada")
    _s, html = await _page(client, f"/admin/users/{ada}")
    resp = await _post(client, f"/admin/users/{ada}/role", {"role": "noc"}, html)
    page = await resp.text()
    assert resp.status == 400 and "این آخرین مدیر فعال است" in _text(page)
    assert re.search(r'name="role"[^>]*aria-invalid="true"', page)
    resp = await _post(client, f"/admin/users/{ada}/active", {"active": "false"}, html)
    assert resp.status == 400 and "نمی‌توانید حساب خودتان را غیرفعال کنید" in _text(await resp.text())
    assert (await _user(sm, "ada")).role == "admin" and (await _user(sm, "ada")).active

    resp = await _post(client, f"/admin/users/{tara}/role", {"role": "customer", "customer": "shady"}, html)
    assert resp.status == 400 and 'value="shady"' in await resp.text()
    resp = await _post(client, f"/admin/users/{tara}/role", {"role": "admin"}, html)
    assert resp.status == 303 and resp.headers["Location"] == f"/admin/users/{tara}?done=role"
    assert (await _user(sm, "tara")).role == "admin"
    resp = await _post(client, f"/admin/users/{tara}/active", {"active": "false"}, html)
    assert resp.status == 303 and not (await _user(sm, "tara")).active
    status, _html = await _page(client, f"/admin/users/{tara}?done=deactivated")
    assert "کاربر غیرفعال شد" in _text(_html)
    client.session.cookie_jar.clear()
    form = await (await client.get("/login")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    resp = await client.post("/login", data={"username": "tara", "password": "tara-pass-1", "csrf": token},
                             cookies={"ngb_login_csrf": token}, allow_redirects=False)
    assert resp.status != 303  # a deactivated user cannot log in
    await _login(client, "ada")
    _s, html = await _page(client, f"/admin/users/{tara}")
    resp = await _post(client, f"/admin/users/{tara}/active", {"active": "true"}, html)
    assert resp.status == 303 and (await _user(sm, "tara")).active


async def test_a_token_is_shown_once_stored_as_its_hash_and_revoked_is_401(site):
    client, sm, tara = site["client"], site["sm"], site["tara"].user_id
    await _login(client, "ada")
    _s, html = await _page(client, f"/admin/users/{tara}")
    resp = await _post(client, f"/admin/users/{tara}/tokens", {"name": "   "}, html)
    assert resp.status == 400 and "برای توکن نامی" in _text(await resp.text())
    resp = await _post(client, f"/admin/users/{tara}/tokens", {"name": "ci-bot"}, html)
    page = await resp.text()
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    token = re.search(r'<code class="secret" dir="ltr">([^<]+)</code>', page).group(1)
    assert "فقط همین یک بار" in _text(page)
    async with sm() as s:
        (row,) = (await s.execute(select(ApiToken).where(ApiToken.user_id == tara))).scalars()
    assert row.digest == token_digest(token) and token not in row.digest and row.name == "ci-bot"
    _s, again = await _page(client, f"/admin/users/{tara}")
    assert token not in again and "ci-bot" in again and row.digest not in again

    api = {"Authorization": f"Bearer {token}"}
    resp = await client.get("/api/v1/me", headers=api)
    assert resp.status == 200 and (await resp.json())["username"] == "tara"
    resp = await _post(client, f"/admin/users/{tara}/tokens/{row.id}/revoke", {}, again)
    assert resp.status == 303 and resp.headers["Location"] == f"/admin/users/{tara}?done=revoked"
    assert (await client.get("/api/v1/me", headers=api)).status == 401
    # Someone else's token id under this user is not found, and nothing is revoked.
    resp = await _post(client, f"/admin/users/{site['ada'].user_id}/tokens/{row.id}/revoke", {}, again)
    assert resp.status == 404


@pytest.mark.parametrize("form, field, words", [
    ({"name": "hook", "kind": "webhook", "audience": "noc", "address": "ftp://example.net/x"}, "address",
     "اچ‌تی‌تی‌پی"),
    ({"name": "hook", "kind": "fax", "audience": "noc", "address": "123"}, "kind", "گونه‌های کانال"),
    ({"name": "hook", "kind": "sms", "audience": "everyone", "address": "0912"}, "audience", "مخاطب را"),
    ({"name": "hook", "kind": "sms", "audience": "customer", "customer": "nobody", "address": "0912"}, "customer",
     "مشتری‌ای با این نام نیست"),
    ({"name": "noc-bale", "kind": "bale", "audience": "noc", "address": "1"}, "name", "نامی تازه"),
    ({"name": "a:b", "kind": "bale", "audience": "noc", "address": "1"}, "name", "نامی تازه"),
])
async def test_a_bad_channel_is_refused_as_the_setting_would_be(site, form, field, words):
    client, sm = site["client"], site["sm"]
    async with sm.begin() as s:
        s.add(NotificationChannel(name="noc-bale", kind="bale", address="4528861", audience="noc"))
    await _login(client, "ada")
    _s, html = await _page(client, "/admin/channels")
    resp = await _post(client, "/admin/channels", form, html)
    page = await resp.text()
    assert resp.status == 400 and words in _text(page)
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', page), field
    assert f'value="{form["name"]}"' in page
    async with sm() as s:
        assert len((await s.execute(select(NotificationChannel.id))).all()) == 1


async def test_channels_are_listed_with_secrets_masked_added_and_disabled(site):
    client, sm = site["client"], site["sm"]
    await _login(client, "ada")
    _s, html = await _page(client, "/admin/channels")
    for form in ({"name": "noc-pd", "kind": "pagerduty", "audience": "noc", "address": "R0UT1NGKEYSECRET42"},
                 {"name": "acme-sms", "kind": "kavenegar", "audience": "customer", "customer": "acme",
                  "address": "09121234567"},
                 {"name": "hook", "kind": "webhook", "audience": "escalation",
                  "address": "https://hooks.example.net/services/T0/B0/sekrit?x=1"}):
        resp = await _post(client, "/admin/channels", form, html)
        assert resp.status == 303 and resp.headers["Location"] == "/admin/channels?done=added", form
    async with sm() as s:
        rows = {c.name: c for c in (await s.execute(select(NotificationChannel))).scalars()}
    assert rows["acme-sms"].customer_id == site["acme"] and rows["noc-pd"].address == "R0UT1NGKEYSECRET42"
    _s, html = await _page(client, "/admin/channels")
    assert "R0UT1NGKEYSECRET42" not in html and "sekrit" not in html
    assert "R0UT…" in html and "https://hooks.example.net/…" in html and "09121234567" in html

    resp = await _post(client, f"/admin/channels/{rows['noc-pd'].id}/enabled", {"enabled": "false"}, html)
    assert resp.status == 303
    async with sm() as s:
        row = await s.get(NotificationChannel, rows["noc-pd"].id)
        assert (row.enabled, row.disabled_reason) == (False, "disabled by admin ada")
    _s, html = await _page(client, "/admin/channels")
    assert 'data-name="noc-pd" data-enabled="no"' in html and "disabled by admin ada" in html
    resp = await _post(client, f"/admin/channels/{rows['noc-pd'].id}/enabled", {"enabled": "true"}, html)
    async with sm() as s:
        row = await s.get(NotificationChannel, rows["noc-pd"].id)
        assert (row.enabled, row.disabled_reason, row.disabled_at) == (True, "", None)


async def test_the_escalation_page_shows_the_policies_and_who_is_on_call_now(site, clock):
    client = site["client"]
    await _login(client, "ada")
    status, html = await _page(client, "/admin/escalation")
    # From 1405/08/30 09:00 weekly: ali the first week, reza the second (from 2026-11-28 09:00 Tehran).
    assert status == 200 and 'data-rotation="noc" data-on-call="reza-sms"' in html
    assert 'data-severity="urgent"' in html and "noc-bale" in html and "oncall=noc" in html
    assert "۱۰ دقیقه" in html and "× ۲" in html
    clock.set(NOW + timedelta(days=7))
    await _login(client, "ada")  # the session has expired meanwhile
    _s, html = await _page(client, "/admin/escalation")
    assert 'data-on-call="ali-sms"' in html


async def _audit_world(site):
    sm, tara = site["sm"], site["tara"]
    async with sm.begin() as s:
        other = Customer(name="beta", verified=True)
        s.add(other)
        await s.flush()
        for i in range(60):
            await audit.record(s, tara, audit.READ_TICKET, customer_id=site["acme"], subject=f"ticket {i}",
                               now=NOW - timedelta(hours=i))
        await audit.record(s, tara, audit.READ_STATEMENT, customer_id=other.id, subject="statement 1405/08",
                           now=NOW)
    return other.id


async def test_the_audit_log_pages_and_filters_by_customer_and_kind_in_jalali(site):
    client = site["client"]
    await _audit_world(site)
    await _login(client, "ada")
    status, html = await _page(client, "/admin/audit")
    rows = re.findall(r'<tr class="entry [^"]*" data-action="([^"]+)">(.*?)</tr>', html, re.S)
    assert status == 200 and len(rows) == 50 and 'rel="next" href="?page=2"' in html
    assert "۱۴۰۵/۰۹/۰۷" in _text(rows[0][1]) and "tara" in rows[0][1]
    status, html = await _page(client, "/admin/audit?customer=acme&page=2")
    rows = re.findall(r'data-action="([^"]+)">(.*?)</tr>', html, re.S)
    assert len(rows) == 10 and {a for a, _r in rows} == {"read_ticket"}
    assert 'rel="prev" href="?customer=acme&amp;page=1"' in html
    status, html = await _page(client, "/admin/audit?kind=read_statement")
    rows = re.findall(r'data-action="([^"]+)">(.*?)</tr>', html, re.S)
    assert [a for a, _r in rows] == ["read_statement"] and "beta" in rows[0][1] and "خواندن صورت‌حساب" in html
    status, html = await _page(client, "/admin/audit?customer=nobody")
    assert status == 400 and "مشتری‌ای با این نام نیست" in _text(html) and 'value="nobody"' in html


async def test_a_disclosure_needs_the_judicial_letters_reference(site):
    client, sm = site["client"], site["sm"]
    await _login(client, "ada")
    _s, html = await _page(client, "/admin/audit")
    form = {"customer": "acme", "recipient": "دادسرای ناحیهٔ ۳", "letter_reference": " ", "subject": "تیکت‌ها"}
    resp = await _post(client, "/admin/audit/disclosures", form, html)
    page = await resp.text()
    assert resp.status == 400 and "فقط با نامهٔ مرجع قضایی" in _text(page)
    assert re.search(r'name="letter_reference"[^>]*aria-invalid="true"', page)
    assert "دادسرای ناحیهٔ ۳" in page
    resp = await _post(client, "/admin/audit/disclosures", form | {"customer": "nobody", "letter_reference": "۱۲۳"},
                       html)
    assert resp.status == 400 and re.search(r'name="customer"[^>]*aria-invalid="true"', await resp.text())
    async with sm() as s:
        assert (await s.execute(select(AuditEntry.id))).first() is None
    resp = await _post(client, "/admin/audit/disclosures", form | {"letter_reference": "۹۸۷/ق/۱۴۰۵"}, html)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/audit?done=disclosed"
    async with sm() as s:
        (entry,) = (await s.execute(select(AuditEntry))).scalars()
    assert (entry.action, entry.letter_reference, entry.customer_id) == ("disclosure", "۹۸۷/ق/۱۴۰۵", site["acme"])
    _s, html = await _page(client, "/admin/audit?done=disclosed&kind=disclosure")
    assert "افشا ثبت شد" in html and "۹۸۷/ق/۱۴۰۵" in html


async def test_staff_may_read_the_admin_pages_in_english(site):
    client = site["client"]
    await _login(client, "ada")
    _s, html = await _page(client, "/admin/users")
    resp = await client.post("/lang", data={"lang": "en", "next": "/admin/users", "csrf": _csrf(html)},
                             headers=HTML, allow_redirects=False)
    assert resp.status == 303
    for path, words in (("/admin/users", "Users and roles"), ("/admin/channels", "Add a channel"),
                        ("/admin/audit", "Record a disclosure"), ("/admin/escalation", "On-call rotations")):
        status, html = await _page(client, path)
        assert status == 200 and 'lang="en"' in html and words in html, path
