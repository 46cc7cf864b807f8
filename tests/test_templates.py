"""The page layer: catalogs complete in both languages, autoescaping, the role's navigation, the staff language
choice, and Persian HTML error pages for browsers while API callers keep JSON."""

from __future__ import annotations

import re

import jinja2
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from dashboards.web.app import build_app
from dashboards.web.deps import WebDeps
from dashboards.web.templating import LANGUAGES, TEMPLATES, catalog, message_ids, render_string
from monitor.accounts import Role, create_user
from monitor.models import Customer

HTML = {"Accept": "text/html,application/xhtml+xml"}
LATIN = re.compile(r"[A-Za-z]{2,}")


def test_every_message_of_the_pages_is_in_both_catalogs():
    used = message_ids()
    assert {"Log out", "Ticket desk"} <= used  # the extractor reads templates and the NAV of the module
    for lang in LANGUAGES:
        missing = sorted(used - catalog(lang).keys())
        assert not missing, f"{lang}.po lacks {missing} (run python tools/catalogs.py and fill them in)"


def test_the_persian_catalog_is_persian():
    for mid, text in catalog("fa").items():
        if mid in {"NOC"}:
            continue
        assert not LATIN.search(text), f"fa.po: {mid!r} -> {text!r} has Latin words"


def test_templates_escape_what_they_are_given(tmp_path):
    (tmp_path / "t.html").write_text("<p>{{ v }}</p>")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(tmp_path)),
                             autoescape=jinja2.select_autoescape(default=True))
    from dashboards.web import templating
    templating._environment_setup(env)  # noqa: SLF001 - the same filters and escaping as the app's
    assert render_string("t.html", {"v": "<script>x</script>"}, env=env) == "<p>&lt;script&gt;x&lt;/script&gt;</p>"


def test_the_filters_write_persian_digits_and_rials():
    assert render_string("error.html", {"status": 404, "heading": "h", "text": "t", "lang": "fa", "dir": "rtl",
                                        "user": None, "csrf": None, "nav": [], "title": "h", "languages": ()},
                         lang="fa").count("۴۰۴") == 1
    env = jinja2.Environment(autoescape=True)
    from dashboards.web import templating
    templating._environment_setup(env)  # noqa: SLF001
    t = env.from_string("{{ n|rial }}")
    assert t.render(n=2**63 - 1) == "۹٬۲۲۳٬۳۷۲٬۰۳۶٬۸۵۴٬۷۷۵٬۸۰۷ ریال"
    assert t.render(n=-1500) == "\u2066-۱٬۵۰۰\u2069 ریال"  # the minus stays before the digits in RTL


def test_every_template_compiles():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)))
    from dashboards.web import templating
    templating._environment_setup(env)  # noqa: SLF001
    names = env.list_templates(extensions=["html", "txt"])
    assert "base.html" in names
    for name in names:
        env.get_template(name)


@pytest.fixture
async def site(db, clock):
    async with db.sessionmaker.begin() as s:
        c = Customer(name="cust-a", display_name="A", verified=True)
        s.add(c)
        await s.flush()
        await create_user(s, "alice", Role.CUSTOMER, customer_id=c.id, password="alice-pass-1")
        await create_user(s, "nora", Role.NOC, password="nora-pass-1")
        await create_user(s, "fred", Role.FINANCE, password="fred-pass-1")
    app = build_app(WebDeps(sessionmaker=db.sessionmaker, clock=clock, registry=CollectorRegistry(),
                            cookie_secure=False))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def _login(client, username, password):
    form = await (await client.get("/login")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    resp = await client.post("/login", data={"username": username, "password": password, "csrf": token,
                                             "next": ""}, cookies={"ngb_login_csrf": token}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    client.session.cookie_jar.update_cookies({"ngb_session": resp.cookies["ngb_session"].value})


async def test_a_browser_gets_a_persian_error_page_and_an_api_client_json(site):
    page = await site.get("/no/such/page", headers=HTML)
    assert page.status == 404 and page.content_type == "text/html"
    text = await page.text()
    assert 'dir="rtl"' in text and "صفحه پیدا نشد" in text and "Not Found" not in text
    api = await site.get("/api/v1/no/such", headers=HTML)
    assert api.status == 404 and api.content_type == "application/json"
    plain = await site.get("/no/such/page")
    assert plain.status == 404 and plain.content_type == "application/json"


async def test_a_role_that_may_not_see_a_page_is_told_so_in_persian(site):
    await _login(site, "alice", "alice-pass-1")
    resp = await site.get("/noc", headers=HTML)
    assert resp.status == 403 and "دسترسی ندارید" in await resp.text()


async def test_the_navigation_is_the_roles_and_links_only_to_existing_pages(site):
    await _login(site, "alice", "alice-pass-1")
    text = await (await site.get("/noc", headers=HTML)).text()  # a 403 page, in the customer's layout
    assert "alice" in text
    known = {r.resource.canonical for r in site.app.router.routes() if r.method == "GET"}
    links = re.findall(r'<li><a href="([^"]+)"', text)
    assert links and set(links) <= known
    assert "/noc" not in links and "/ledger" not in links and "/portal/tickets" in links


async def test_staff_may_read_english_and_customers_always_read_persian(site):
    await _login(site, "nora", "nora-pass-1")
    page = await (await site.get("/portal", headers=HTML)).text()
    assert 'lang="fa"' in page and "خروج" in page
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    resp = await site.post("/lang", data={"lang": "en", "csrf": csrf, "next": "/portal"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/portal"
    page = await (await site.get("/portal", headers=HTML)).text()
    assert 'lang="en"' in page and 'dir="ltr"' in page and "Log out" in page
    bad = await site.post("/lang", data={"lang": "de", "csrf": csrf}, allow_redirects=False)
    assert bad.status == 400
    forged = await site.post("/lang", data={"lang": "fa"}, allow_redirects=False)
    assert forged.status == 403
    site.session.cookie_jar.clear()
    await _login(site, "alice", "alice-pass-1")
    page = await (await site.get("/portal", headers=HTML, cookies={"ngb_lang": "en"})).text()
    assert 'lang="fa"' in page and "/lang" not in page and "alice" in page
    public = await (await site.get("/login", headers=HTML)).text()
    assert "alice" not in public and "csrf-token" not in public


async def test_the_font_is_served_when_debian_has_it(site):
    resp = await site.get("/fonts/sans-regular.ttf")
    assert resp.status == 200 and (await resp.read())[:4] == b"\x00\x01\x00\x00"
    hostile = await site.get("/fonts/..%2Fetc%2Fpasswd")
    assert hostile.status == 400 and "root:" not in await hostile.text()
